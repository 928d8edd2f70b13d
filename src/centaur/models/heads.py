"""Classifier heads that go on a pretrained body, and the body+head model itself."""
import torch
from torch import nn


class ConcatPool(nn.Module):
    """Average and max pooling side by side: twice the features, both summaries (fastai)."""

    def forward(self, x):  # (B, C, H, W) -> (B, 2C)
        return torch.cat([x.mean((2, 3)), x.amax((2, 3))], dim=1)


def create_head(num_features, num_outputs, hidden=512, dropout=0.5):
    """fastai's head: concat pool, BN, dropout, linear, ReLU, BN, dropout, linear.

    >>> create_head(1280, 6)(torch.randn(2, 1280, 4, 4)).shape
    torch.Size([2, 6])
    """
    return nn.Sequential(
        ConcatPool(),
        nn.BatchNorm1d(2 * num_features), nn.Dropout(dropout / 2), nn.Linear(2 * num_features, hidden, bias=False),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(hidden), nn.Dropout(dropout), nn.Linear(hidden, num_outputs, bias=False),
    )


class BodyHead(nn.Module):
    """A pretrained body (feature maps) followed by a new head; the two are the param groups.

    While `frozen`, the body runs without autograd: nothing flows back through it, so a
    frozen-body epoch costs a forward pass of the body and a little work for the head.
    (fastai keeps BatchNorm layers of a frozen body training, which forces a backward pass
    through the whole body; the head has its own BatchNorm to adapt to the new data.) As its
    weights cannot change then, the body runs with BatchNorm folded into the convolutions.
    """

    frozen_bf16 = "auto"  # True, False, or "auto": where the CPU or GPU computes bfloat16 natively

    def __init__(self, body, head):
        super().__init__()
        self.body, self.head = body, head
        self._frozen = False
        self._folded = {}  # a plain dict, so the folded copy is not part of state_dict

    @property
    def frozen(self):
        return self._frozen

    @frozen.setter
    def frozen(self, value):
        self._frozen = bool(value)
        self._folded.clear()

    def train(self, mode=True):
        super().train(mode)
        self.body.train(mode and not self._frozen)
        self._folded.clear()  # weights may have been loaded since: fold again when needed
        return self

    def load_state_dict(self, *args, **kwargs):
        self._folded.clear()
        return super().load_state_dict(*args, **kwargs)

    def forward(self, x):  # (B, 3, H, W) -> (B, num_outputs)
        if self._frozen:
            # A frozen body only extracts features, so it may run in bfloat16 where the CPU computes
            # it natively (AVX512-BF16 or AMX): 2.3x faster here on EfficientNet-Lite0 at 128 px,
            # features within cosine 0.998 of float32. The head and every unfrozen step stay float32.
            with torch.no_grad(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self._bf16(x)):
                if "body" not in self._folded:
                    from .fuse import fold_batchnorm
                    self.body.eval()
                    self._folded["body"] = fold_batchnorm(self.body, x[:1].float())
                features = self._folded["body"](x).float()  # (B, C, h, w)
            return self.head(features)
        return self.head(self.body(x))

    def _bf16(self, x):
        if self.frozen_bf16 == "auto":
            # On CUDA the same rule: GPUs with bf16 tensor cores (Ampere and later) compute it
            # natively, at a multiple of their float32 rate, for the same small change in the
            # features; older ones would emulate it, slower than float32, so they stay float32.
            # (Not measured here: the tests and benchmarks run without a GPU.)
            if x.device.type == "cuda":
                return torch.cuda.is_bf16_supported(including_emulation=False)
            return x.device.type == "cpu" and _native_bf16()
        return bool(self.frozen_bf16)


def _native_bf16():
    """Whether this CPU multiplies bfloat16 in hardware (else autocast would emulate it, slowly)."""
    cpu = torch.cpu
    return bool(getattr(cpu, "_is_avx512_bf16_supported", lambda: False)()
                or getattr(cpu, "_is_amx_tile_supported", lambda: False)())


def body_of(model):
    """Strip a timm classifier model to its feature extractor (B, 3, H, W) -> (B, C, h, w)."""
    model.reset_classifier(0, global_pool="")
    return model
