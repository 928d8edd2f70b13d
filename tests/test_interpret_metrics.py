"""Interpretation and evaluation against scikit-learn, and heatmaps on a model whose answer is known."""
import numpy as np
import json
from pathlib import Path

import pytest
import torch
from sklearn import metrics as skm
from torch import nn

from centaur.core.errors import CentaurError
from centaur.interpret.classification import ClassificationInterpretation
from centaur.interpret.evaluation import auc, calibration, evaluate_classification, precision_at_top
from centaur.interpret.heatmap import Hook, class_activation_map, grad_cam


def random_predictions(n=200, k=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, k, (n,), generator=g)
    logits = torch.randn(n, k, generator=g) + 2.0 * nn.functional.one_hot(targets, k)  # better than chance
    return logits.softmax(-1), targets


def test_confusion_per_class_and_top_losses_match_scikit_learn():
    probs, targets = random_predictions()
    classes = ["cat", "dog", "cow", "goat"]
    interp = ClassificationInterpretation(probs, targets, classes)
    preds = probs.argmax(-1).numpy()
    assert (interp.confusion_matrix() == skm.confusion_matrix(targets.numpy(), preds, labels=range(4))).all()
    p, r, f, s = skm.precision_recall_fscore_support(targets.numpy(), preds, labels=range(4), zero_division=0)
    rows = interp.per_class()
    assert np.allclose([x["precision"] for x in rows], p) and np.allclose([x["recall"] for x in rows], r)
    assert np.allclose([x["f1"] for x in rows], f) and [x["support"] for x in rows] == list(s)
    top = interp.top_losses(5)
    losses = -np.log(probs[torch.arange(200), targets].numpy())
    assert [t["loss"] for t in top] == pytest.approx(sorted(losses, reverse=True)[:5], rel=1e-5)
    cm = interp.confusion_matrix()
    first = interp.most_confused()[0]
    assert first[2] == max(cm[i, j] for i in range(4) for j in range(4) if i != j)


def test_evaluation_metrics_match_scikit_learn_and_auc_is_called_auc():
    probs, targets = random_predictions(k=2, seed=1)
    assert auc(probs, targets) == pytest.approx(skm.roc_auc_score(targets.numpy(), probs[:, 1].numpy()))
    report = evaluate_classification(probs, targets, ["healthy", "mastitis"])
    assert report["accuracy"]["value"] == pytest.approx(skm.accuracy_score(targets, probs.argmax(-1)))
    assert report["f1_macro"]["value"] == pytest.approx(skm.f1_score(targets, probs.argmax(-1), average="macro"))
    low, high = report["accuracy"]["ci95"]
    assert low < report["accuracy"]["value"] < high
    assert "auc" in report and report["auc"]["value"] != report["accuracy"]["value"]
    order = probs[:, 1].argsort(descending=True)[:20]
    assert precision_at_top(probs, targets, 0.1) == pytest.approx((targets[order] == 1).float().mean().item())
    four = evaluate_classification(*random_predictions(), ["a", "b", "c", "d"])
    assert "auc" not in four  # AUC only where it is defined as reported
    healthy_only = evaluate_classification(probs, torch.zeros_like(targets), ["healthy", "mastitis"])
    assert "auc" not in healthy_only  # one class validating: no AUC, not 'nan (95% CI nan to nan)'


def test_expected_calibration_error_by_hand():
    probs = torch.tensor([[0.95, 0.05], [0.9, 0.1], [0.6, 0.4], [0.55, 0.45]])
    targets = torch.tensor([0, 1, 0, 0])
    c = calibration(probs, targets, n_bins=2)  # bins (0, 0.5] empty, (0.5, 1]: all four
    assert len(c["bins"]) == 1 and c["bins"][0]["count"] == 4
    assert c["ece"] == pytest.approx(abs(0.75 - np.mean([0.95, 0.9, 0.6, 0.55])))


class RedDetector(nn.Module):
    """Scores 'red' by the mean redness of the image: the only evidence is where red pixels are."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -0.5, -0.5]).view(1, 3, 1, 1))
            self.conv.bias.zero_()
        self.head = nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2))
        with torch.no_grad():
            self.head[-1].weight.copy_(torch.tensor([[1.0], [-1.0]]))
            self.head[-1].bias.zero_()

    def forward(self, x):
        return self.head(self.conv(x))


def red_corner_image():
    x = torch.zeros(1, 3, 32, 32)
    x[:, 0, :8, :8] = 1.0  # red only in the top-left corner
    return x


@pytest.mark.parametrize("method", [class_activation_map, grad_cam])
def test_heatmap_points_at_the_only_evidence(method):
    model = RedDetector().eval()
    maps, logits = method(model, red_corner_image(), target=torch.tensor([0]), layer=model.conv)
    assert logits.argmax(-1).item() == 0 and maps.shape == (1, 32, 32)
    m = maps[0]
    assert m[:8, :8].mean() > 10 * m[16:, 16:].mean() + 1e-6
    y, x = divmod(int(m.argmax()), 32)
    assert y < 10 and x < 10
    assert not model.conv._forward_hooks  # hooks removed


def test_hooks_remove_themselves_even_after_an_error():
    model = RedDetector()
    with pytest.raises(RuntimeError):
        with Hook(model.conv, backward=True):
            model(torch.zeros(1, 5, 8, 8))  # wrong channel count
    assert not model.conv._forward_hooks and not model.conv._backward_hooks


def _small_learner():
    from torch import nn

    from centaur.models.heads import BodyHead, create_head
    from centaur.train.learner import Learner
    from conftest import two_colour_dls
    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
    return Learner(two_colour_dls(), BodyHead(body, create_head(4, 2, hidden=8)), progress=False)


def test_interpretation_from_a_learner_and_refusing_raw_outputs():
    learn = _small_learner()
    learn.fit(2, 1e-2)
    outputs, targets = learn.get_preds()  # raw outputs (logits), as fastai's get_preds(with_act=False)
    with pytest.raises(CentaurError, match="not probabilities.*softmax"):
        ClassificationInterpretation(outputs, targets, learn.dls.vocab)
    interp = ClassificationInterpretation.from_learner(learn)
    assert len(interp.items) == len(learn.dls.valid_ds) and (interp.losses >= 0).all()
    assert torch.allclose(interp.probs, outputs.softmax(-1))
    with pytest.raises(CentaurError, match=r"should be \(items, classes\)"):
        ClassificationInterpretation(outputs.softmax(-1), targets, ["a", "b", "c"])


def test_export_refuses_a_model_trained_without_the_normalization_it_would_serve_with(tmp_path):
    from centaur.train.export import export
    learn = _small_learner()
    learn.preprocessing = {"kind": "image", "arch": "tiny", "mean": [0.5] * 3, "std": [0.5] * 3}
    learn.fit(1, 1e-2)  # its loaders never normalized: predictions would see other pixels
    with pytest.raises(CentaurError, match="trained on unnormalized pixels.*set_normalization"):
        export(learn, tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_a_model_exported_from_python_can_be_interpreted_from_its_directory(tmp_path):
    from conftest import copy_emoji
    from centaur.data.block import DataBlock
    from centaur.data.blocks import CategoryBlock, ImageBlock
    from centaur.data.getters import get_image_files, parent_label
    from centaur.data.transforms import Resize
    from centaur.train.export import export
    from centaur.vision.learner import vision_learner
    data = copy_emoji(tmp_path / "data", per_class=6)
    dls = DataBlock(blocks=(ImageBlock, CategoryBlock), get_items=get_image_files, get_y=parent_label,
                    item_tfms=Resize(32)).dataloaders(data, bs=8, seed=0)
    learn = vision_learner(dls, "lite0", progress=False)
    learn.fit_one_cycle(1, 1e-3)
    export(learn, tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert "accuracy" in meta["metrics"]["last_epoch"]
    interp = ClassificationInterpretation.from_model_dir(tmp_path / "m")  # its split was written with it
    assert sorted(interp.items) == sorted(f.relative_to(data).as_posix() for f in map(Path, dls.valid_ds.xs))
