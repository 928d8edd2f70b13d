"""vision_learner: a pretrained classifier for the data, ready for fine_tune."""
from ..core.errors import CentaurError
from ..models.classifier import create_classifier
from ..train.learner import Learner


def default_metrics(kind):
    return {"single_label": ["accuracy", "f1_macro"], "multi_label": ["accuracy_multi"],
            "regression": ["rmse", "mae"]}[kind]


def vision_learner(dls, arch="lite0", pretrained=True, weights=None, metrics=None, hidden=512, dropout=0.5,
                   **kwargs):
    """A Learner with a pretrained body and a new head sized for dls; the body starts frozen.

    Inputs are normalized with the statistics the weights were trained with (from the
    model's own configuration, never hard-coded here).

    >>> learn = vision_learner(dls, "lite0")   # doctest: +SKIP
    >>> learn.fine_tune(3)                      # doctest: +SKIP
    """
    from ..train.learner import check_dataloaders
    check_dataloaders(dls)
    y_block = dls.y_block
    if y_block is None:
        raise CentaurError("the DataBlock has no y block; a classifier needs labels (for example CategoryBlock).")
    model, prep = create_classifier(arch, y_block.num_outputs, pretrained=pretrained, weights=weights,
                                    hidden=hidden, dropout=dropout)
    dls.set_normalization(prep["mean"], prep["std"])
    metrics = default_metrics(y_block.kind) if metrics is None else metrics
    learn = Learner(dls, model, metrics=metrics,
                    param_groups=[list(model.body.parameters()), list(model.head.parameters())], **kwargs)
    learn.preprocessing = prep
    if pretrained or weights is not None:
        learn.freeze()
    return learn
