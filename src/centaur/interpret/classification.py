"""Interpreting a classifier: confusion matrix, most confused pairs, per-class scores, top losses.

Predictions are computed once (the constructor's probabilities) and every view reuses them.
"""
from html import escape

import numpy as np
import torch

from ..core.errors import CentaurError
from ..core.words import named


class ClassificationInterpretation:
    """What a single-label classifier got right and wrong on a set of items.

    probs: (N, K) probabilities; targets: (N,) class indices; items: N names (file paths).

    >>> interp = ClassificationInterpretation.from_model_dir("models/emoji")  # doctest: +SKIP
    >>> interp.most_confused()[:3]                                           # doctest: +SKIP
    """

    def __init__(self, probs, targets, classes, items=None, train_targets=None):
        self.probs, self.targets = torch.as_tensor(probs).float(), torch.as_tensor(targets).long()
        self.classes = list(classes)
        self.items = list(items) if items is not None else [str(i) for i in range(len(self.targets))]
        self.train_targets = train_targets
        if len(self.targets) == 0:
            raise CentaurError("nothing to interpret: no items were predicted.")
        if self.probs.ndim != 2 or self.probs.shape != (len(self.targets), len(self.classes)):
            raise CentaurError(f"probs should be (items, classes) = ({len(self.targets)}, {len(self.classes)}), got "
                               f"shape {tuple(self.probs.shape)}; one row per item, one column per class.")
        if (self.probs < 0).any() or not torch.allclose(self.probs.sum(1), torch.ones(len(self.probs)), atol=1e-3):
            raise CentaurError("probs are not probabilities (rows must be non-negative and sum to 1); raw model "
                               "outputs, as learn.get_preds() returns them, need .softmax(-1) first, or use "
                               "ClassificationInterpretation.from_learner(learn).")
        self.preds = self.probs.argmax(-1)  # (N,)
        p_true = self.probs.gather(1, self.targets[:, None])[:, 0].clamp(min=1e-12)
        self.losses = -p_true.log()  # (N,) cross-entropy of each item

    @classmethod
    def from_learner(cls, learn, dl=None):
        """Interpret a Learner's predictions on its validation set (or another DataLoader), as fastai does.

        >>> interp = ClassificationInterpretation.from_learner(learn)  # doctest: +SKIP
        """
        outputs, targets = learn.get_preds(dl)
        ds = (dl or learn.dls.valid).dataset
        train = torch.as_tensor([learn.dls.y_block.encode(y) for y in learn.dls.train_ds.ys]).long()
        interp = cls(outputs.softmax(-1), targets, learn.dls.vocab, [str(x) for x in ds.xs], train)
        interp.learn, interp.dl = learn, dl or learn.dls.valid  # for plot_top_losses: images and model
        return interp

    @classmethod
    def from_model_dir(cls, model_dir, root=None, predictor=None):
        """Predict the model's recorded validation files (split.json) and interpret them."""
        from ..inference import Predictor
        from .predictions import predict_files, read_split
        predictor = predictor or Predictor(model_dir)
        if predictor.task != "single_label":
            raise CentaurError(f"this interpretation is for single-label classifiers; the model's task is "
                               f"{predictor.task!r}.")
        root, split = read_split(model_dir, root)
        index = {c: i for i, c in enumerate(predictor.classes)}
        valid = [(f, y) for f, y in split["valid"] if y in index]
        probs, kept, errors = predict_files(predictor, [root / f for f, _ in valid])
        interp = cls(probs, [index[valid[i][1]] for i in kept], predictor.classes, [valid[i][0] for i in kept],
                     torch.tensor([index[y] for _, y in split["train"] if y in index], dtype=torch.long))
        interp.root, interp.unreadable = root, {valid[i][0]: e for i, e in errors.items()}
        interp.predictor = predictor  # for plot_top_losses: images prepared as in prediction, and the model
        return interp

    def __repr__(self):
        """'<ClassificationInterpretation: 36 items, 3 classes (animal, face, food), accuracy 0.861>'"""
        acc = (self.preds == self.targets).double().mean().item()
        classes = named("class", self.classes, plural_form="classes")
        return (f"<{type(self).__name__}: {len(self.targets):,} items, {classes}, "
                f"accuracy {acc:.3f}>")

    def confusion_matrix(self):
        """(K, K) counts: row = actual class, column = predicted class."""
        k = len(self.classes)
        return torch.bincount(self.targets * k + self.preds, minlength=k * k).view(k, k).numpy()

    def most_confused(self, min_count=1):
        """[(actual, predicted, count)] of the off-diagonal cells, most frequent first."""
        cm = self.confusion_matrix()
        pairs = [(self.classes[i], self.classes[j], int(cm[i, j])) for i in range(len(cm)) for j in range(len(cm))
                 if i != j and cm[i, j] >= min_count]
        return sorted(pairs, key=lambda p: (-p[2], p[0], p[1]))

    def per_class(self):
        """[{class, precision, recall, f1, support}] from the confusion matrix."""
        cm = self.confusion_matrix().astype(np.float64)
        rows = []
        for i, name in enumerate(self.classes):
            tp, predicted, actual = cm[i, i], cm[:, i].sum(), cm[i].sum()
            precision = tp / predicted if predicted else 0.0
            recall = tp / actual if actual else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            # plain Python numbers: they print as 0.62, not np.float64(0.62), and go to JSON as they are
            rows.append({"class": name, "precision": float(precision), "recall": float(recall), "f1": float(f1),
                         "support": int(actual)})
        return rows

    def top_losses(self, k=9):
        """The k items the model got most wrong: [{item, actual, predicted, loss, probability}].

        probability is what the model gave its own prediction; p_actual what it gave the truth.
        """
        order = self.losses.argsort(descending=True)[:k]
        return [{"item": self.items[i], "actual": self.classes[self.targets[i]],
                 "predicted": self.classes[self.preds[i]], "loss": self.losses[i].item(),
                 "probability": self.probs[i, self.preds[i]].item(),
                 "p_actual": self.probs[i, self.targets[i]].item()} for i in order.tolist()]

    def plot_top_losses(self, k=9, heatmap=True, cols=3, path=None):
        """The k items the model got most wrong in a grid, each titled with its actual class, the
        prediction, the loss and the probability given to the prediction; PNG bytes (a notebook shows
        them), also written to `path` when one is given.

        heatmap: overlay Grad-CAM (Selvaraju et al. 2017) for the predicted class, to show what the
        model looked at when it went wrong. The images are prepared as for validation (resized, not
        augmented), so this needs an interpretation that can reach them and the model:
        from_learner or from_model_dir.

        >>> ClassificationInterpretation.from_learner(learn).plot_top_losses(6)  # doctest: +SKIP
        <PNG 648x480, 212 KB>
        """
        from .plots import image_grid_png
        top = self.top_losses(k)
        order = self.losses.argsort(descending=True)[:k].tolist()  # the same items as top, in its order
        pictures, titles = [], []
        for i, t in zip(order, top):
            image = self._image(i)  # (3, H, W) uint8
            pictures.append(self._overlay(image) if heatmap else image.permute(1, 2, 0).numpy())
            name = _short_name(t["item"])
            titles.append((f"{name}\n" if name else "") + f"actual {t['actual']}, predicted {t['predicted']}\n"
                          f"loss {t['loss']:.2f}, probability {t['probability']:.2f}")
        return image_grid_png(pictures, titles, cols=min(cols, max(1, len(pictures))), path=path)

    def _image(self, i):
        """Item i as the model saw it in validation: uint8 (3, H, W)."""
        dl = getattr(self, "dl", None)
        if dl is not None and hasattr(dl.dataset, "load_x"):
            return dl.dataset.load_x(i).cpu()
        predictor = getattr(self, "predictor", None)
        if predictor is not None:
            return predictor.preprocess(self.root / self.items[i])
        raise CentaurError("this interpretation has no images to show: it was made from predictions alone (or from "
                           "a table's rows). For images, make it with ClassificationInterpretation.from_learner(learn) "
                           "or .from_model_dir(MODEL_DIR); interp.top_losses(k) lists the items either way.")

    def _overlay(self, image):
        """uint8 (3, H, W) -> (H, W, 3) uint8 with the Grad-CAM heatmap of the predicted class over it."""
        from ..models.cam import grad_cam, overlay
        predictor = getattr(self, "predictor", None)
        if predictor is not None:
            maps, _ = grad_cam(predictor.torch_model, predictor.normalize(image[None]))
            return overlay(image, maps[0])
        model, training = self.learn.model, self.learn.model.training
        x = self.dl.process(image[None], augment=False)  # normalized as in validation, on the loader's device
        x = x.to(next(model.parameters()).device)
        try:
            model.eval()  # batch norm with its running statistics, as in validation; a batch of 1 is no batch
            maps, _ = grad_cam(model, x)
        finally:
            model.train(training)
        return overlay(image, maps[0].float().cpu())

    def plot_confusion(self, path=None):
        """The confusion matrix as a PNG (bytes, or written to `path`)."""
        from .plots import confusion_png
        return confusion_png(self.confusion_matrix(), self.classes, path)

    def _repr_html_(self):
        rows = "".join(f"<tr><td>{escape(a)}</td><td>{escape(p)}</td><td>{n}</td></tr>"
                       for a, p, n in self.most_confused()[:10])
        acc = (self.preds == self.targets).double().mean().item()
        return (f"<p>{len(self.targets)} items, accuracy {acc:.3f}</p>"
                f"<img src='data:image/png;base64,{_b64(self.plot_confusion())}'>"
                f"<table><tr><th>actual</th><th>predicted</th><th>count</th></tr>{rows}</table>")


def _short_name(item):
    """A file's name for a title ('cat.jpg' of 'data/animal/cat.jpg'); '' for items that are not paths."""
    from pathlib import PurePath
    text = str(item)
    return PurePath(text).name if len(text) < 300 and "\n" not in text else ""


def _b64(png):
    import base64
    return base64.b64encode(png).decode()
