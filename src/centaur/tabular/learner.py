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
    squashes a regression output into that range; without it, a regression model starts
    out predicting the training mean (its last bias). Other keyword arguments (wd, wd_bn_bias,
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
        # Start at the training mean: the last layer's bias is the mean target, so the first
        # predictions are the baseline's rather than 0 (a price around 100 would otherwise take
        # many steps just to reach its level). Only the start is moved: unlike predicting the
        # standardized target (TabularModel's y_scale), the last layer's steps stay in the
        # target's units, which on hotel_rates at batch 256 gave a validation RMSE of about 40
        # instead of 44 (fastai, starting at 0: 36; see docs/benchmarks_tabular.md).
        y = dls.train.y.double().reshape(len(dls.train.y), -1)  # (N, k)
        with torch.no_grad():
            model.layers[-1].bias.copy_(y.mean(0).to(model.layers[-1].bias.dtype))
    metrics = default_metrics(y_block.kind) if metrics is None else metrics
    learn = Learner(dls, model, metrics=metrics, param_groups=[list(model.parameters())], **kwargs)
    learn.preprocessing = {"kind": "tabular", "model": model.config()}
    return learn


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
