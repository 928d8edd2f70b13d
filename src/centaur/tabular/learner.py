"""tabular_learner: an entity-embedding TabularModel sized for a table's DataLoaders, in a Learner."""
import torch

from ..core.errors import CentaurError, did_you_mean
from ..models.tabular import TabularModel
from ..train.learner import Learner

# Metrics shown after each epoch when none are given; all are names in train.metrics.METRICS.
DEFAULT_METRICS = {"regression": ["rmse", "mae"], "single_label": ["accuracy"], "multi_label": ["accuracy_multi"]}


def default_metrics(kind):
    """The metrics tabular_learner reports for a task ('regression', 'single_label', 'multi_label').

    >>> default_metrics("regression")
    ['rmse', 'mae']
    """
    if kind not in DEFAULT_METRICS:
        raise CentaurError(f"unknown task {kind!r}; expected one of {', '.join(map(repr, DEFAULT_METRICS))}."
                           + did_you_mean(kind, DEFAULT_METRICS))
    return list(DEFAULT_METRICS[kind])


def tabular_learner(dls, layers=(200, 100), ps=0.0, embed_p=0.0, y_range=None, emb_szs=None, metrics=None,
                    bn_cont=True, act="relu", **kwargs):
    """A Learner with a fresh TabularModel sized for dls: one embedding per categorical column.

    The embedding sizes follow fastai's rule from each column's number of levels (the
    processor's cardinalities_, '#na#' included); emb_szs overrides them by column name
    ({"store": 10}) or position. The model has one parameter group, since nothing in it is
    pretrained: train it with fit_one_cycle rather than fine_tune. y_range=(low, high)
    squashes a regression output into that range; without it, a regression model's first
    predictions have the training targets' mean and standard deviation (see
    _start_at_target_scale). Other keyword arguments (wd, wd_bn_bias,
    cbs, path, progress, loss_func) go to Learner.

    learn.preprocessing holds the model's config, so an exported model directory can be
    rebuilt with TabularModel.from_config.

    >>> learn = tabular_learner(dls, layers=[200, 100], y_range=(0, 1.2 * y_max))  # doctest: +SKIP
    >>> learn.fit_one_cycle(5, 1e-2)                                                # doctest: +SKIP
    """
    y_block = getattr(dls, "y_block", None)
    if y_block is None:
        raise CentaurError("these DataLoaders have no target (y_block); a tabular model needs a target column.")
    processor = getattr(dls, "processor", None)
    if processor is None or getattr(processor, "cardinalities_", None) is None:
        raise CentaurError("tabular_learner needs DataLoaders from a table (TabularDataLoaders), whose fitted "
                           "processor says how many levels each categorical column has; got "
                           f"{type(dls).__name__} without one.")
    if y_range is not None and y_block.kind != "regression":
        raise CentaurError(f"y_range={y_range!r} only applies to a regression target; this target is "
                           f"{y_block.kind.replace('_', '-')} classification. Leave y_range out.")
    cat_names = list(getattr(processor, "cat_names_", None) or [])
    cont_names = list(getattr(processor, "cont_names_", None) or [])
    cardinalities = list(processor.cardinalities_)
    if cat_names and len(cat_names) != len(cardinalities):
        raise CentaurError(f"the processor lists {len(cat_names)} categorical columns but {len(cardinalities)} "
                           "cardinalities; it is damaged, fit it again.")
    model = TabularModel(cardinalities, len(cont_names), y_block.num_outputs, layers=layers, ps=ps,
                         embed_p=embed_p, y_range=y_range, bn_cont=bn_cont, act=act,
                         emb_szs=_emb_szs_by_position(emb_szs, cat_names))
    if y_block.kind == "regression" and y_range is None:
        _start_at_target_scale(model, dls.train)
    metrics = default_metrics(y_block.kind) if metrics is None else metrics
    learn = Learner(dls, model, metrics=metrics, param_groups=[list(model.parameters())], **kwargs)
    learn.preprocessing = {"kind": "tabular", "model": model.config()}
    return learn


def _start_at_target_scale(model, train, n_rows=4096):
    """Start the last layer at the target's scale: predictions with the training targets' mean and std.

    A freshly initialized network predicts numbers near 0 that barely vary (std about 0.6);
    a price around 100 with a spread of 50 is far from there, and Adam moves each weight by
    about the learning rate per step, so learning the level and the spread takes many steps.
    fastai's model starts at 0 and, on hotel_rates at batch 1024 x 5 epochs (65 steps),
    ends at RMSE 111, worse than predicting the mean. Setting only the bias to the mean
    fixed the level but left the spread tiny (RMSE 49 there; on a random split 27.7 against
    18.7 and below with a larger last layer). So the last layer's weights are scaled, output by
    output, until the predictions on up to n_rows evenly spaced training rows (batch-norm in
    training mode, as in a training step) have the targets' standard deviation, and the bias
    moves them to the targets' mean: a data-dependent initialization of the output layer
    (as LSUV, Mishkin & Matas 2016, does for every layer), in the target's own units.
    Unlike predicting the standardized target (TabularModel's y_scale) the last layer's steps
    stay in the target's units. The rows are taken in order, not drawn, so the loader's
    shuffling is unchanged, and the batch norm running statistics are left as they were.
    """
    import copy
    n = len(train.y)
    rows = torch.linspace(0, n - 1, min(n, n_rows)).round().long()  # (R,) evenly spaced, no random draw
    y = train.y.double().reshape(n, -1)  # (N, k)
    probe = copy.deepcopy(model).eval()  # a copy: its forward updates batch-norm running statistics
    for module in probe.modules():  # batch norm as in a training step; dropout off (no random draws)
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.train()
    with torch.no_grad():
        out = probe(train.x_cat.index_select(0, rows), train.x_cont.index_select(0, rows)).double()  # (R, k)
        out = out.reshape(len(rows), -1)
        last = model.layers[-1]
        y_std, out_std = y.std(0), out.std(0)  # (k,), (k,)
        scale = torch.where((out_std > 1e-12) & (y_std > 0), y_std / out_std.clamp_min(1e-12),
                            torch.ones_like(y_std))  # (k,)
        last.weight.mul_(scale.to(last.weight.dtype).unsqueeze(1))
        # the bias moves the scaled predictions' mean onto the target's mean
        shift = y.mean(0) - (out - last.bias.double()).mean(0) * scale  # (k,)
        last.bias.copy_(shift.to(last.bias.dtype))


def _emb_szs_by_position(emb_szs, cat_names):
    """A dict keyed by column names becomes one keyed by position, so the model needs no names."""
    if not isinstance(emb_szs, dict):
        return emb_szs
    by_position = {}
    for key, width in emb_szs.items():
        if isinstance(key, str):
            if key not in cat_names:
                raise CentaurError(f"emb_szs names column {key!r}, which is not a categorical column; categorical "
                                   f"columns: {', '.join(map(repr, cat_names)) or 'none'}."
                                   + did_you_mean(key, cat_names))
            key = cat_names.index(key)
        by_position[key] = width
    return by_position
