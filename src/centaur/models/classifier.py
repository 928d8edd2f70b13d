"""An image classifier: a timm body (pretrained or not) with a new head."""
from .backbones import create_backbone
from .heads import BodyHead, body_of, create_head


def create_classifier(arch="lite0", num_outputs=2, pretrained=True, weights=None, hidden=512, dropout=0.5):
    """(BodyHead model, preprocessing dict) for `num_outputs` outputs.

    >>> model, prep = create_classifier("lite0", 6)  # doctest: +SKIP
    """
    backbone, prep = create_backbone(arch, pretrained=pretrained, weights=weights)
    num_features = backbone.num_features
    model = BodyHead(body_of(backbone), create_head(num_features, num_outputs, hidden, dropout))
    prep.update(num_features=num_features, hidden=hidden, dropout=dropout)
    return model, prep
