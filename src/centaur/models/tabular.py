"""The tabular model: an embedding per categorical column, batch-normed continuous inputs, an MLP."""
import math
import numbers

import torch
from torch import nn

from ..core.errors import CentaurError, did_you_mean

# Activations by name, so a model's config stays plain JSON.
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}


def emb_sz_rule(n_cat):
    """fastai's embedding width for a column with n_cat levels: min(600, round(1.6 * n_cat**0.56)).

    An empirical rule (fastai, from Jeremy Howard's experiments): wider for more levels,
    growing slower than the number of levels, capped so one column cannot dominate.

    >>> emb_sz_rule(2), emb_sz_rule(10), emb_sz_rule(1000), emb_sz_rule(10**8)
    (2, 6, 77, 600)
    """
    if not _is_int(n_cat) or n_cat < 1:
        raise CentaurError(f"a categorical column needs at least 1 level, got {n_cat!r}.")
    return min(600, round(1.6 * n_cat ** 0.56))


class SigmoidRange(nn.Module):
    """Squash outputs into (low, high) through a sigmoid (fastai's SigmoidRange).

    For a target known to lie in a range (sales >= 0, a rating 0..5), the network need not
    learn the bounds; fastai suggests a `high` a little above the largest target, since a
    sigmoid only reaches its ends at infinity.

    >>> SigmoidRange(0, 5)(torch.tensor([-100.0, 0.0, 100.0]))
    tensor([0.0000, 2.5000, 5.0000])
    """

    def __init__(self, low, high):
        super().__init__()
        self.low, self.high = float(low), float(high)

    def forward(self, x):
        return torch.sigmoid(x) * (self.high - self.low) + self.low

    def extra_repr(self):
        return f"low={self.low}, high={self.high}"


class TabularModel(nn.Module):
    """Entity embeddings for categories plus batch-normed numbers, then Linear-act-BN-dropout blocks.

    Each categorical column gets its own learned embedding (Guo & Berkhahn 2016, "Entity
    Embeddings of Categorical Variables", arXiv:1604.06737): similar stores or days end up
    near each other, which a one-hot encoding cannot express. The layout follows fastai's
    TabularModel: embedding dropout on the concatenated embeddings, BatchNorm1d on the
    continuous columns, then per hidden layer Linear (no bias: BN follows) -> activation ->
    BatchNorm1d -> Dropout (fastai's LinBnDrop with lin_first=True), and a final Linear.

    cardinalities: levels per categorical column, the reserved '#na#' level included.
    n_cont: number of continuous columns. n_out: outputs (1 for one regression target,
        the number of classes otherwise).
    layers: hidden widths. ps: dropout after each hidden layer, one float or one per layer.
    embed_p: dropout on the embeddings. y_range: (low, high) squashes outputs into that range.
    y_scale: (mean, std) of a regression target: the last layer predicts the standardized
        target and the model returns it on the original scale. A network starts out predicting
        numbers near 0; a target around 100 (a room price) would take many epochs of training
        just to reach its level. tabular_learner now starts the last layer at the target's mean
        and spread instead (it generalized better on hotel_rates); y_scale stays for models saved with it.
    bn_cont: batch norm on the continuous inputs. act: 'relu', 'gelu', 'silu', 'leaky_relu', 'tanh'.
    emb_szs: embedding widths overriding emb_sz_rule: a list (one per column, None keeps the
        rule) or a dict {column position: width}.

    >>> model = TabularModel([5, 12], n_cont=3, n_out=1, layers=(32, 16))
    >>> model(torch.randint(0, 5, (4, 2)), torch.randn(4, 3)).shape
    torch.Size([4, 1])
    """

    def __init__(self, cardinalities, n_cont, n_out, layers=(200, 100), ps=0.0, embed_p=0.0, y_range=None,
                 bn_cont=True, emb_szs=None, act="relu", y_scale=None):
        super().__init__()
        self.cardinalities = _check_cardinalities(cardinalities)
        self.n_cont = _check_count("n_cont", n_cont, minimum=0)
        self.n_out = _check_count("n_out", n_out, minimum=1)
        self.layers_sizes = _check_layers(layers)
        self.ps = _check_ps(ps, len(self.layers_sizes))
        self.embed_p = _check_probability("embed_p", embed_p)
        self.y_range = _check_y_range(y_range)
        if y_scale is not None:
            if not (isinstance(y_scale, (list, tuple)) and len(y_scale) == 2 and all(_is_number(v) for v in y_scale)
                    and float(y_scale[1]) > 0):
                raise CentaurError(f"y_scale should be (mean, std) with std > 0, got {y_scale!r}.")
            if self.y_range is not None:
                raise CentaurError("give y_range or y_scale, not both: y_range already sets the output's scale.")
            y_scale = (float(y_scale[0]), float(y_scale[1]))
        self.y_scale = y_scale
        if not isinstance(bn_cont, bool):
            raise CentaurError(f"bn_cont should be True or False, got {bn_cont!r}.")
        self.bn_cont_on = bn_cont
        if act not in ACTIVATIONS:
            raise CentaurError(f"unknown activation {act!r}; expected one of {', '.join(map(repr, ACTIVATIONS))}."
                               + did_you_mean(act, ACTIVATIONS))
        self.act = act
        self.emb_szs = _resolve_emb_szs(emb_szs, self.cardinalities)
        if not self.cardinalities and self.n_cont == 0:
            raise CentaurError("a tabular model needs at least one categorical or continuous column; got none.")

        self.embeds = nn.ModuleList([nn.Embedding(n, d) for n, d in zip(self.cardinalities, self.emb_szs)])
        for e in self.embeds:
            # small initial embeddings, as fastai's Embedding (truncated normal, std 0.01): every
            # level starts near the others, and training pulls apart the ones that differ
            nn.init.trunc_normal_(e.weight, std=0.01, a=-0.02, b=0.02)
        self.emb_drop = nn.Dropout(self.embed_p)
        self._init_flat_lookup()
        self.bn_cont = nn.BatchNorm1d(self.n_cont) if bn_cont and self.n_cont else None
        self.n_emb = sum(self.emb_szs)

        sizes = [self.n_emb + self.n_cont, *self.layers_sizes]
        blocks = []
        for n_in, n_hidden, p in zip(sizes[:-1], sizes[1:], self.ps):
            # fastai's LinBnDrop(lin_first=True): BN after the activation normalizes what the
            # next layer sees; the Linear has no bias because BN's shift makes it redundant
            # (Identity for p = 0 keeps the state_dict's key names the same whatever ps is)
            blocks += [nn.Linear(n_in, n_hidden, bias=False), ACTIVATIONS[act](), nn.BatchNorm1d(n_hidden),
                       nn.Dropout(p) if p > 0 else nn.Identity()]
        blocks.append(nn.Linear(sizes[-1], self.n_out))
        if self.y_range is not None:
            blocks.append(SigmoidRange(*self.y_range))
        self.layers = nn.Sequential(*blocks)

    def _init_flat_lookup(self):
        """Index buffers that turn all embedding lookups into one gather from the tables laid end to end.

        Output feature j of the concatenated embeddings comes from column col_of[j], at
        position j - start of that column's row: in the flat vector of every table's weights
        (table i's (n_i, d_i) rows after those of tables 0..i-1) that is
        base[j] + code * stride[j], with stride = d_i and base = table offset + position.
        One gather forward and one scatter-add backward replace n_cat embedding calls and
        n_cat sparse-to-dense gradient kernels (fastai issue 3949: tabular speed is per-call
        overhead); in training this took the embeddings' share of a step from about 1.3 to
        0.9 ms (batch 1024, 13 columns, bench/tabular_step_profile.py). Prediction, with no
        gradient to scatter, keeps the per-column lookups. The weights stay one nn.Embedding per column, so state dicts and
        model.embeds[i] read as before. Buffers are not persistent: not saved, rebuilt here.
        """
        dims = torch.tensor(self.emb_szs, dtype=torch.long)  # (n_cat,)
        sizes = torch.tensor([n * d for n, d in zip(self.cardinalities, self.emb_szs)], dtype=torch.long)
        offsets = torch.cumsum(sizes, 0) - sizes  # (n_cat,) start of each table in the flat vector
        col_of = torch.repeat_interleave(torch.arange(len(self.emb_szs)), dims)  # (n_emb,)
        within = torch.cat([torch.arange(d) for d in self.emb_szs]) if self.emb_szs else torch.zeros(0, dtype=torch.long)
        self.register_buffer("_col_of", col_of, persistent=False)
        self.register_buffer("_stride", dims[col_of], persistent=False)  # (n_emb,)
        self.register_buffer("_base", offsets[col_of] + within, persistent=False)  # (n_emb,)
        self.register_buffer("_cards", torch.tensor(self.cardinalities, dtype=torch.long), persistent=False)

    def embed(self, x_cat):  # x_cat (B, n_cat) int64 -> (B, n_emb)
        """The concatenated embeddings of every categorical column, before embedding dropout."""
        # an out-of-range code would read a neighbouring table here (nn.Embedding would fail): refuse it
        if x_cat.numel() and (bool((x_cat < 0).any()) or bool((x_cat >= self._cards).any())):
            bad = [i for i in range(x_cat.shape[1]) if int(x_cat[:, i].min()) < 0
                   or int(x_cat[:, i].max()) >= self.cardinalities[i]]
            raise CentaurError(f"categorical column {bad[0]} has codes outside 0..{self.cardinalities[bad[0]] - 1} "
                               f"(min {int(x_cat[:, bad[0]].min())}, max {int(x_cat[:, bad[0]].max())}); codes come "
                               "from the processor the model was trained with.")
        if not self.embeds:
            return torch.zeros(x_cat.shape[0], 0)  # (B, 0)
        if not (torch.is_grad_enabled() and self.embeds[0].weight.requires_grad):
            # without gradients (prediction) the per-column row lookups are cheaper: they copy
            # whole rows, where the flat gather computes an index per element
            return torch.cat([e(x_cat[:, i]) for i, e in enumerate(self.embeds)], dim=1)  # (B, n_emb)
        flat = torch.cat([e.weight.reshape(-1) for e in self.embeds])  # (sum n_i * d_i,)
        idx = x_cat.index_select(1, self._col_of) * self._stride + self._base  # (B, n_emb)
        return flat.index_select(0, idx.reshape(-1)).view(x_cat.shape[0], -1)  # (B, n_emb)

    def forward(self, x_cat, x_cont):  # x_cat (B, n_cat) int64, x_cont (B, n_cont) float -> (B, n_out)
        if x_cat.shape[-1] != len(self.embeds) or x_cont.shape[-1] != self.n_cont:
            raise CentaurError(f"this model takes {len(self.embeds)} categorical and {self.n_cont} continuous "
                               f"columns, got {x_cat.shape[-1]} and {x_cont.shape[-1]}; the table's columns "
                               "must match the ones it was trained on.")
        parts = []
        if self.embeds:
            parts.append(self.emb_drop(self.embed(x_cat)))  # (B, n_emb)
        if self.n_cont:
            parts.append(self.bn_cont(x_cont) if self.bn_cont is not None else x_cont)  # (B, n_cont)
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]  # (B, n_emb + n_cont)
        out = self.layers(x)  # (B, n_out)
        if self.y_scale is not None:
            out = out * self.y_scale[1] + self.y_scale[0]
        return out

    def config(self):
        """Everything needed to rebuild this model, as a JSON-able dict (see from_config).

        >>> TabularModel([3], 1, 2, layers=[4]).config()["emb_szs"]
        [3]
        """
        return {"cardinalities": list(self.cardinalities), "n_cont": self.n_cont, "n_out": self.n_out,
                "layers": list(self.layers_sizes), "ps": list(self.ps), "embed_p": self.embed_p,
                "y_range": list(self.y_range) if self.y_range is not None else None,
                "bn_cont": self.bn_cont_on, "emb_szs": list(self.emb_szs), "act": self.act,
                "y_scale": list(self.y_scale) if self.y_scale is not None else None}

    @classmethod
    def from_config(cls, config):
        """Rebuild a model from config(); the weights then come from its state_dict.

        A damaged or foreign dict is refused with a CentaurError naming the field.

        >>> d = TabularModel([3], 1, 2, layers=[4]).config()
        >>> TabularModel.from_config(d).config() == d
        True
        """
        if not isinstance(config, dict):
            raise CentaurError(f"a tabular model config should be a dict, got {type(config).__name__}.")
        known = set(CONFIG_FIELDS)
        unknown = [k for k in config if k not in known]
        if unknown:
            raise CentaurError(f"unknown field {unknown[0]!r} in the tabular model config; expected only "
                               f"{', '.join(CONFIG_FIELDS)}.{did_you_mean(unknown[0], CONFIG_FIELDS)}")
        missing = [k for k in REQUIRED_FIELDS if k not in config]
        if missing:
            raise CentaurError(f"the tabular model config lacks {', '.join(map(repr, missing))}; "
                               "it should come from TabularModel.config().")
        return cls(**config)


CONFIG_FIELDS = ("cardinalities", "n_cont", "n_out", "layers", "ps", "embed_p", "y_range", "bn_cont", "emb_szs",
                 "act", "y_scale")
REQUIRED_FIELDS = ("cardinalities", "n_cont", "n_out")


# --- validation: constructor arguments may come from a user or from a model.json on disk ---

def _is_int(x):
    # bool is an int in Python, but `"n_out": true` is a mistake, not 1
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_number(x):
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(float(x))


def _check_count(name, value, minimum):
    if not _is_int(value) or value < minimum:
        raise CentaurError(f"{name} should be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _check_cardinalities(cardinalities):
    if isinstance(cardinalities, (str, bytes)) or not hasattr(cardinalities, "__iter__"):
        raise CentaurError(f"cardinalities should be a list of level counts, one per categorical column, "
                           f"got {cardinalities!r}.")
    cardinalities = list(cardinalities)
    for i, n in enumerate(cardinalities):
        if not _is_int(n) or n < 1:
            raise CentaurError(f"cardinalities[{i}] should be a positive integer (the number of levels of "
                               f"categorical column {i}, '#na#' included), got {n!r}.")
    return [int(n) for n in cardinalities]


def _check_layers(layers):
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise CentaurError(f"layers should be a list of hidden layer widths such as [200, 100], got {layers!r}.")
    layers = list(layers)
    for i, n in enumerate(layers):
        if not _is_int(n) or n < 1:
            raise CentaurError(f"layers[{i}] should be a positive integer (a hidden layer's width), got {n!r}.")
    return [int(n) for n in layers]


def _check_probability(name, p):
    if not _is_number(p) or not 0 <= p < 1:
        raise CentaurError(f"{name} should be a dropout probability from 0 up to (not including) 1, got {p!r}.")
    return float(p)


def _check_ps(ps, n_layers):
    if _is_number(ps) or isinstance(ps, bool):
        return [_check_probability("ps", ps)] * n_layers
    if isinstance(ps, (str, bytes)) or not hasattr(ps, "__iter__"):
        raise CentaurError(f"ps should be one dropout probability or one per hidden layer, got {ps!r}.")
    ps = list(ps)
    if len(ps) != n_layers:
        raise CentaurError(f"ps has {len(ps)} dropout probabilities for {n_layers} hidden layers; give one "
                           "number for all layers, or one per layer.")
    return [_check_probability(f"ps[{i}]", p) for i, p in enumerate(ps)]


def _check_y_range(y_range):
    if y_range is None:
        return None
    if isinstance(y_range, (str, bytes)) or not hasattr(y_range, "__len__") or len(y_range) != 2 \
            or not all(_is_number(v) for v in y_range):
        raise CentaurError(f"y_range should be (low, high), two finite numbers, got {y_range!r}.")
    low, high = float(y_range[0]), float(y_range[1])
    if not low < high:
        raise CentaurError(f"y_range should be (low, high) with low < high, got ({low}, {high}).")
    return (low, high)


def _resolve_emb_szs(emb_szs, cardinalities):
    sizes = [emb_sz_rule(n) for n in cardinalities]
    if emb_szs is None:
        return sizes
    if isinstance(emb_szs, dict):
        for key, width in emb_szs.items():
            if not _is_int(key) or not 0 <= key < len(cardinalities):
                raise CentaurError(f"emb_szs key {key!r} is not a categorical column position (0 to "
                                   f"{len(cardinalities) - 1}); tabular_learner also takes column names.")
            sizes[key] = width
    elif isinstance(emb_szs, (list, tuple)):
        if len(emb_szs) != len(cardinalities):
            raise CentaurError(f"emb_szs has {len(emb_szs)} widths for {len(cardinalities)} categorical columns; "
                               "give one per column (None keeps the default), or a dict {column: width}.")
        sizes = [s if w is None else w for s, w in zip(sizes, emb_szs)]
    else:
        raise CentaurError(f"emb_szs should be a list (one width per categorical column) or a dict "
                           f"{{column: width}}, got {type(emb_szs).__name__}.")
    for i, width in enumerate(sizes):
        if not _is_int(width) or width < 1:
            raise CentaurError(f"the embedding width of categorical column {i} should be a positive integer, "
                               f"got {width!r}.")
    return [int(w) for w in sizes]
