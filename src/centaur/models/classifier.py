"""An image classifier: a timm body (pretrained or not) with a new head."""
from torch import nn

from ..core.errors import check_choice
from .backbones import create_backbone
from .heads import BodyHead, body_of, create_head

# "fastai": the trainable head `centaur train` fine-tunes (concat pool, BN, dropout, two linears).
# "linear": average pool and one linear layer, the head the labeling workbench fits in seconds on
# cached pooled features (a logistic regression), written out as a model directory.
HEADS = ("fastai", "linear")


def create_linear_head(num_features, num_outputs):
    """Average pool, flatten and one linear layer (with bias): (B, C, H, W) -> (B, num_outputs).

    >>> create_linear_head(1280, 3)(torch.randn(2, 1280, 5, 5)).shape  # doctest: +SKIP
    torch.Size([2, 3])
    """
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(num_features, num_outputs))


def create_classifier(arch="lite0", num_outputs=2, pretrained=True, weights=None, hidden=512, dropout=0.5,
                      head="fastai"):
    """(BodyHead model, preprocessing dict) for `num_outputs` outputs.

    head: "fastai" (the default, see create_head) or "linear" (average pool + one nn.Linear);
    the choice is recorded as preprocessing["head"] so a model directory rebuilds the same model.

    >>> model, prep = create_classifier("lite0", 6)  # doctest: +SKIP
    >>> model, prep = create_classifier("lite0", 3, head="linear")  # doctest: +SKIP
    """
    check_choice("head", head, HEADS)
    backbone, prep = create_backbone(arch, pretrained=pretrained, weights=weights)
    num_features = backbone.num_features
    if head == "linear":
        model = BodyHead(body_of(backbone), create_linear_head(num_features, num_outputs))
        prep.update(num_features=num_features, head=head)
    else:
        model = BodyHead(body_of(backbone), create_head(num_features, num_outputs, hidden, dropout))
        prep.update(num_features=num_features, hidden=hidden, dropout=dropout, head=head)
    return model, prep
