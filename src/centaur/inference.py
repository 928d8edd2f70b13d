"""Predictor: load a model directory and predict images, one, many (batched) or a folder.

It imports nothing from train/: a server or a script that only predicts stays small.
"""
import os
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .core.errors import CentaurError, check_choice
from .core.words import named
from .core.images import MAX_PIXELS, ImageError, open_image
from .data.blocks import ImageBlock
from .data.getters import image_paths
from .data.transforms import transform_from_dict
from .models.fuse import fold_batchnorm
from .models.model_dir import load_model_dir, model_version
from .models.outputs import activate, check_top_k, describe


class Predictor:
    """Predicts with a saved model, preprocessing inputs exactly as its model.json says.

    >>> p = Predictor("models/emoji")                 # doctest: +SKIP
    >>> p.predict("cat.jpg")["label"]                 # doctest: +SKIP
    'animal'
    """

    def __init__(self, model_dir, threads=None, max_pixels=MAX_PIXELS, batch_size=32, runtime="torch"):
        check_choice("runtime", runtime, ["torch", "onnx"])
        if threads:
            torch.set_num_threads(threads)
        model, self.meta = load_model_dir(model_dir)
        self.model_dir, self.runtime = Path(model_dir), runtime
        self.version = model_version(model_dir)
        if self.meta.get("kind") == "tabular":
            raise CentaurError(f"{str(model_dir)!r} holds a table model; use TabularPredictor, or `centaur "
                               "predict MODEL TABLE.csv`.")
        prep = self.meta["preprocessing"]
        self.item_tfms = [transform_from_dict(d) for d in prep.get("item_tfms", [])]
        size = next((t.size for t in self.item_tfms if hasattr(t, "size")), (64, 64))
        # weights never change here: fold BatchNorm into the convolutions once, and use the
        # channels_last layout that CPU convolutions prefer
        self.model = fold_batchnorm(model, torch.zeros(1, 3, *size)).to(memory_format=torch.channels_last)
        if runtime == "onnx":
            from .models.onnx import ONNX_FILE, OnnxModel
            self.model, self.torch_model = OnnxModel(self.model_dir / ONNX_FILE, threads,
                                                                 self.meta.get("weights_sha256")), self.model
        else:
            self.torch_model = self.model
        self.mean = torch.tensor(prep["mean"]).view(1, -1, 1, 1)
        self.std = torch.tensor(prep["std"]).view(1, -1, 1, 1)
        self.classes = self.meta.get("classes")
        self.task = self.meta["task"]
        self.max_pixels, self.batch_size = max_pixels, batch_size

    def __repr__(self):
        extra = "; ONNX runtime" if self.runtime == "onnx" else ""
        return _describe(self, self.classes, None, extra)

    def preprocess(self, source, name=None):
        """A path or bytes -> uint8 tensor (3, H, W), as validation data was prepared.

        name: what to call bytes in error messages (an upload's file name)."""
        img = open_image(source, max_pixels=self.max_pixels, name=name)
        for tfm in self.item_tfms:
            img = tfm(img, train=False)
        return ImageBlock.to_tensor(img)

    def normalize(self, xb):
        """uint8 (B, 3, H, W) -> normalized float (B, 3, H, W), channels_last."""
        return ((xb.float().div_(255) - self.mean) / self.std).contiguous(memory_format=torch.channels_last)

    def activate(self, out):
        """Model outputs -> probabilities (or values for regression)."""
        return activate(out, self.task)

    @torch.inference_mode()
    def forward(self, xb):
        """uint8 (B, 3, H, W) -> probabilities (B, num_outputs) (or values for regression)."""
        return self.activate(self.model(self.normalize(xb)))

    def result(self, probs, top_k=3):
        """One row of forward's output as the dict that predict returns."""
        return self._result(probs, top_k)

    def explain(self, source, top_k=3, target=None):
        """Predict one image and show why: (result dict, Grad-CAM heatmap overlay as PNG).

        The PNG is bytes (write it to a file, or base64 it) that a notebook shows as the picture.
        The heatmap is for `target` (a class name), by default the predicted class. It always
        uses the PyTorch model, also when predictions come from ONNX.

        >>> result, png = Predictor("models/emoji").explain("cat.jpg")  # doctest: +SKIP
        >>> png                                                         # doctest: +SKIP
        <PNG 128x128, 31 KB>
        """
        from .models.cam import grad_cam, overlay, to_png
        image = self.preprocess(source)  # (3, H, W) uint8
        idx = None
        if target is not None and self.classes:
            check_choice("class", target, self.classes)
            idx = torch.tensor([self.classes.index(target)])
        if self.task == "regression":
            idx = torch.tensor([0])
        cam, logits = grad_cam(self.torch_model, self.normalize(image[None]), idx)
        return self._result(self.activate(logits)[0], top_k), to_png(overlay(image, cam[0]))

    def _result(self, probs, top_k):
        return describe(probs, self.task, self.classes, top_k)

    def predict(self, source, top_k=3):
        """Predict one image (a path, bytes, a Pillow image or an array): {'label', 'probability', 'top_k'}."""
        return self._result(self.forward(self.preprocess(source)[None])[0], top_k)

    def predict_many(self, sources, top_k=3):
        """Predict many images in batches; yields one dict per input in order, with 'file'.

        An unreadable image yields {'file', 'error'} in its place instead of stopping the
        others. The next batch is decoded in a thread while the model runs on this one
        (Pillow releases the GIL while decoding), so decoding hides behind the forward pass.
        """
        if isinstance(sources, (str, os.PathLike, bytes, bytearray)) or not hasattr(sources, "__iter__"):
            raise TypeError(f"predict_many takes a list of images, not a {type(sources).__name__}; for one image "
                            "use predict, for a folder predict_paths.")
        check_top_k(top_k)  # now, not at the first image
        return self._predict_many(sources, top_k)

    def _predict_many(self, sources, top_k):
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for chunk in _chunks(sources, self.batch_size):
                ready, pending = pending, pool.submit(self._prepare, chunk)
                if ready is not None:
                    yield from self._run(ready.result(), top_k)
            if pending is not None:
                yield from self._run(pending.result(), top_k)

    def _prepare(self, chunk):
        """[(name, uint8 tensor or None, error or None)] for a list of sources."""
        out = []
        for src in chunk:
            name = (str(src) if isinstance(src, (str, os.PathLike)) else "<bytes>" if isinstance(src, (bytes, bytearray))
                    else f"<{type(src).__name__}>")
            try:
                out.append((name, self.preprocess(src), None))
            except ImageError as e:
                out.append((name, None, str(e)))
        return out

    def _run(self, prepared, top_k):
        good = [t for _, t, _ in prepared if t is not None]
        probs = iter(self.forward(torch.stack(good))) if good else iter(())
        for name, t, error in prepared:
            yield {"file": name, "error": error} if t is None else {"file": name, **self._result(next(probs), top_k)}

    def predict_paths(self, paths, top_k=3):
        """Predict files and folders (folders are searched for images recursively)."""
        return self.predict_many(image_paths(paths), top_k)


def _describe(predictor, classes, target, extra=""):
    """"<Predictor 'models/emoji': single_label, 3 classes (animal, face, food); version 3f2a1b0c9d8e>"."""
    what = predictor.task + (f" of {target!r}" if target is not None else "")
    if classes:
        what += ", " + named("class", classes, plural_form="classes")
    return f"<{type(predictor).__name__} {str(predictor.model_dir)!r}: {what}; version {predictor.version}{extra}>"


def _check_unambiguous(series, name):
    """Refuse dates that read as month first and day first alike, for a model trained on ISO dates."""
    from .data.dates import read_dates, refuse_ambiguous
    dates, how = read_dates(series, name)
    if how["ambiguous"]:
        refuse_ambiguous(series, dates, name, ", and the model was trained on ISO dates, so nothing says which is "
                         "meant. Give them as yyyy-mm-dd.")


def _chunks(items, size):
    items = iter(items)
    while chunk := list(islice(items, size)):
        yield chunk


class TabularPredictor:
    """Predicts rows of a table with a saved table model, preparing them as in training.

    >>> p = TabularPredictor("models/hotels")            # doctest: +SKIP
    >>> p.predict_table("new_bookings.csv").head()       # doctest: +SKIP
    """

    def __init__(self, model_dir, threads=None, batch_size=65536):
        from .data.processors import TabularProcessor
        if threads:
            torch.set_num_threads(threads)
        self.model, self.meta = load_model_dir(model_dir)
        if self.meta.get("kind") != "tabular":
            raise CentaurError(f"{str(model_dir)!r} holds an image model; use Predictor, or `centaur predict "
                               "MODEL IMAGE...`.")
        prep = self.meta["preprocessing"]
        self.processor = TabularProcessor.from_dict(prep["processor"])
        self.prep, self.task, self.classes = prep, self.meta["task"], self.meta.get("classes")
        self.model_dir, self.version = Path(model_dir), model_version(model_dir)
        self.batch_size = batch_size
        self.unseen_ = {}

    def __repr__(self):
        return _describe(self, self.classes, self.prep.get("target"))

    def required_columns(self):
        """The columns a table must have: the date (whose parts are made here) and the other inputs."""
        from .data.dates import add_date_parts, add_holidays
        date = self.prep.get("date")
        made = set()
        if date:
            # the columns made from the date, found by making them for one made-up day
            one = pd.DataFrame({date: pd.to_datetime(["2020-01-01"])})
            _, parts = add_date_parts(one, date, drop=False)
            made |= set(parts)
            if self.prep.get("holidays"):
                _, hol = add_holidays(one, date, self.prep["holidays"])
                made |= set(hol)
        names = [c for c in self.processor.input_cat_names_ + self.processor.cont_names_ if c not in made]
        return ([date] if date else []) + names

    def _prepare(self, df):
        from .data.dates import add_date_parts, add_holidays, dayfirst_of
        from .data.processors import check_columns
        # every missing column at once (the date included), not one error per attempt
        check_columns(df, self.required_columns())
        date = self.prep.get("date")
        if date:
            keep = df[date]
            # read as the training dates were: new rows whose days are all 12 or under would read
            # month-first otherwise, for a model trained on day-first dates
            dayfirst = dayfirst_of(self.prep.get("date_format"))
            if dayfirst is None:  # trained on ISO dates: nothing says how to read 01/08/2017
                _check_unambiguous(df[date], date)
            df, _ = add_date_parts(df, date, drop=True, dayfirst=dayfirst)
            if self.prep.get("holidays"):
                df[date] = keep
                df, _ = add_holidays(df, date, self.prep["holidays"])
        self.processor.check_columns(df)
        return self.processor.transform(df)

    @torch.inference_mode()
    def predict_table(self, table):
        """A DataFrame with one prediction per row ('prediction'; 'probability' for classes) and
        'n_unseen', how many of the row's categories were never seen in training.

        table: a DataFrame, a CSV or Parquet path, or rows given directly (a dict, a list of
        dicts, a pandas Series). Unseen categories map to the reserved 'unknown' index; their
        counts per column are in self.unseen_ afterwards.

        >>> TabularPredictor("models/hotels").predict_table({"adults": 2, "country": "PRT"})  # doctest: +SKIP
        """
        from .data.getters import read_table, text_column_names
        from .data.tabular import rows_frame
        table = rows_frame(table)
        if not isinstance(table, (str, os.PathLike, pd.DataFrame)):
            raise TypeError(f"predict_table takes a DataFrame, a CSV or Parquet path, or rows (a dict, a list of "
                            f"dicts, a Series), not a {type(table).__name__}.")
        df = text_column_names(read_table(table))  # as in training: names are text
        cat, cont = self._prepare(df)
        self.unseen_ = {k: v for k, v in getattr(self.processor, "unseen_", {}).items() if v}
        # (N,) per row: categories given but never seen in training (code 0 is both missing and unseen)
        self.unseen_rows_ = np.zeros(len(df), dtype=np.int64)
        date = self.prep.get("date")
        for j, col in enumerate(self.processor.cat_names_):
            if not self.unseen_.get(col):
                continue
            # a column made from the date (arrival_Year, ...) is given wherever the date is
            given = df[col] if col in df.columns else df[date] if date in df.columns else None
            if given is not None:
                self.unseen_rows_ += (cat[:, j] == 0) & given.notna().to_numpy()
        x_cat, x_cont = torch.from_numpy(cat), torch.from_numpy(cont)
        outs = [self.model(x_cat[i:i + self.batch_size], x_cont[i:i + self.batch_size])
                for i in range(0, len(x_cat), self.batch_size)]
        out = torch.cat(outs) if outs else torch.zeros(0, self.meta["num_outputs"])
        result = pd.DataFrame(index=df.index)
        if self.task == "regression":
            values = out[:, 0].double()
            if self.prep.get("log_target"):
                values = values.exp()
            result["prediction"] = values.numpy()
        elif self.task == "single_label":
            probs = out.softmax(-1)
            p, idx = probs.max(-1)
            result["prediction"] = np.asarray(self.classes, dtype=object)[idx.numpy()]
            result["probability"] = p.numpy()
        else:
            probs = out.sigmoid().numpy()
            # the labels themselves (probability 0.5 or more), joined as the training table wrote them
            delim = self.prep.get("label_delim") or " "
            chosen = probs >= 0.5
            result["prediction"] = [delim.join(c for c, keep in zip(self.classes, row) if keep) for row in chosen]
            for j, c in enumerate(self.classes):
                result[f"p_{c}"] = probs[:, j]
        result["n_unseen"] = self.unseen_rows_
        return result
