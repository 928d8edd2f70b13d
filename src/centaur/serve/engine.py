"""What the service runs: an image or table model behind one interface for the batcher.

An engine prepares one request's input (decoding an image or checking a row, in a thread
pool), runs a list of prepared inputs as one batch, and checks the answers people give when
they contest a prediction.
"""
import math
import os

import torch

from ..core.errors import CentaurError, did_you_mean
from ..core.images import ImageError
from ..inference import Predictor, TabularPredictor
from ..models.model_dir import model_version, read_meta
from .errors import InputError

FLOAT32_MAX = 3.4028234663852886e38


def load_engine(settings):
    """The engine for the model directory in `settings` (image or table)."""
    _, meta = read_meta(settings.model_dir)
    engine = TableEngine if meta.get("kind") == "tabular" else ImageEngine
    return engine(settings)


class ImageEngine:
    kind = "image"

    def __init__(self, settings):
        self.predictor = Predictor(settings.model_dir, threads=settings.threads, max_pixels=settings.max_pixels,
                                   runtime=settings.runtime)
        self.meta, self.version = self.predictor.meta, self.predictor.version
        self.threads = settings.threads or os.cpu_count() or 1
        self.lone_threads = settings.lone_threads or self.threads

    def prepare(self, data, name=None):
        """Upload bytes -> uint8 tensor (3, H, W), or InputError."""
        try:
            return self.predictor.preprocess(bytes(data), name=name or "upload")
        except ImageError as e:
            message = f"cannot use image {e.source!r}: {e.reason}."
            if "pixels" in e.reason:
                raise InputError("image too large", message) from None
            raise InputError("image unreadable", message) from None

    def run(self, items):
        # A lone image runs on lone_threads (1): between requests the other threads fall asleep,
        # and waking them costs more than they save on one small image (one-client p50 on 2
        # cores: 12-14 ms on one thread, 18-20 ms on two; bench/serve_load.py). Batches use all.
        torch.set_num_threads(self.lone_threads if len(items) == 1 else self.threads)
        probs = self.predictor.forward(torch.stack(items))  # (B, K)
        return [self.predictor.result(p) for p in probs]

    def explain(self, data, name=None, target=None):
        """(result, PNG heatmap bytes) for one upload."""
        self.prepare(data, name)  # the same errors as /predict
        if target is not None and self.predictor.classes and target not in self.predictor.classes:
            raise InputError("unknown label", f"{target!r} is not one of the model's classes."
                                              f"{did_you_mean(target, self.predictor.classes)}")
        return self.predictor.explain(bytes(data), target=target)

    def warm_up(self):
        size = next((t.size for t in self.predictor.item_tfms if hasattr(t, "size")), (224, 224))
        for n in (1, 2):
            self.run([torch.zeros(3, *size, dtype=torch.uint8)] * n)

    def describe(self):
        return {"kind": "image", "task": self.meta["task"], "classes": self.meta.get("classes"),
                "arch": self.meta["arch"], "version": self.version, "runtime": self.predictor.runtime,
                "preprocessing": self.meta["preprocessing"], "metrics": self.meta.get("metrics"),
                "provenance": self.meta.get("provenance")}

    def check_correct(self, value):
        return _check_answer(self.meta["task"], self.meta.get("classes"), value)


class TableEngine:
    kind = "tabular"

    def __init__(self, settings):
        if settings.runtime != "torch":
            raise CentaurError("table models run with --runtime torch; ONNX export is for image models.")
        self.predictor = TabularPredictor(settings.model_dir, threads=settings.threads)
        self.meta, self.version = self.predictor.meta, model_version(settings.model_dir)
        proc = self.predictor.processor
        self.date = self.predictor.prep.get("date")
        derived = _date_columns(self.date, self.predictor.prep.get("holidays")) if self.date else set()
        # what a person gives: the date itself, not the parts the model computes from it
        self.cat_names = [c for c in proc.input_cat_names_ if c not in derived]
        self.cont_names = [c for c in proc.cont_names_ if c not in derived]
        self.columns = ([self.date] if self.date else []) + self.cat_names + self.cont_names

    def prepare(self, row, name=None):
        """Check a row (a JSON object) against the model's columns; returns it as a dict."""
        if not isinstance(row, dict):
            raise InputError("row must be an object", f"a row is a JSON object of column: value, got "
                                                      f"{type(row).__name__}.")
        missing = [c for c in self.columns if c not in row]
        if missing:
            extra = [c for c in row if c not in self.columns]
            hints = "".join(f" For {m!r}:{did_you_mean(m, extra)}" for m in missing if did_you_mean(m, extra))
            raise InputError("missing columns", f"the row lacks {len(missing)} column(s) the model needs: "
                                                f"{', '.join(map(repr, missing))}.{hints}")
        for col in self.cont_names:
            value = row[col]
            if value is None or value == "":
                continue  # missing: filled as in training
            try:
                if isinstance(value, bool) or not math.isfinite(float(value)):
                    raise ValueError
            except (TypeError, ValueError):
                raise InputError("wrong type", f"column {col!r} takes a number (or null for missing), got "
                                               f"{value!r}.") from None
            if abs(float(value)) > FLOAT32_MAX:  # the model computes in float32: this would be infinite
                raise InputError("wrong type", f"column {col!r} takes a number of at most {FLOAT32_MAX:.3g} in size, "
                                               f"got {value!r}.")
        for col in self.cat_names:
            if isinstance(row[col], (dict, list)):
                raise InputError("wrong type", f"column {col!r} takes one value (text or number), got "
                                               f"{type(row[col]).__name__}.")
        return {c: row[c] for c in self.columns}

    def run(self, items):
        import pandas as pd
        try:
            table = self.predictor.predict_table(pd.DataFrame(items))
        except CentaurError as e:
            if len(items) == 1:
                raise InputError("row unusable", str(e)) from None
            return [self._run_one(item) for item in items]  # find the row at fault, keep the rest
        return [_row_result(r, self.meta["task"]) for r in table.to_dict("records")]

    def _run_one(self, item):
        try:
            return self.run([item])[0]
        except InputError as e:
            return e

    def warm_up(self):
        pass  # a table model is a few matrix products: nothing to warm

    def describe(self):
        proc = self.predictor.processor
        categories = {c: [str(v) for v in proc.categorify_.classes_[c][1:201]] for c in self.cat_names}
        return {"kind": "tabular", "task": self.meta["task"], "classes": self.meta.get("classes"),
                "arch": self.meta["arch"], "version": self.version, "runtime": "torch",
                "columns": {"date": self.date, "categorical": self.cat_names, "continuous": self.cont_names},
                "categories": categories, "target": self.predictor.prep.get("target"),
                "metrics": self.meta.get("metrics"), "provenance": self.meta.get("provenance")}

    def check_correct(self, value):
        return _check_answer(self.meta["task"], self.meta.get("classes"), value)


def _date_columns(date, holidays):
    """The columns that preparing a table adds from its date column (parts, holidays)."""
    import pandas as pd

    from ..data.dates import add_date_parts, add_holidays
    probe, _ = add_date_parts(pd.DataFrame({date: ["2020-06-15"]}), date, drop=True)
    if holidays:
        probe[date] = pd.to_datetime(["2020-06-15"])
        probe, _ = add_holidays(probe, date, holidays)
    return set(probe.columns) - {date}


def _row_result(row, task):
    """The answer for one predicted row, or an InputError (returned, for the batcher to raise for
    this row alone) when the model's numbers are not finite: inputs far outside what it learned on."""
    numbers = [v for k, v in row.items() if k == "prediction" and task == "regression" or k.startswith("p_")
               or k == "probability"]
    if not all(math.isfinite(float(v)) for v in numbers):
        return InputError("row unusable", "the model's answer for this row is not a finite number: its values lie "
                                          "far outside those it was trained on; check them.")
    if task == "regression":
        return {"value": float(row["prediction"])}
    if task == "single_label":
        return {"label": str(row["prediction"]), "probability": round(float(row["probability"]), 6)}
    probs = {k[2:]: round(float(v), 6) for k, v in row.items() if k.startswith("p_")}
    return {"labels": [c for c, p in probs.items() if p >= 0.5], "probabilities": probs}


def _check_answer(task, classes, value):
    """The answer a person gives when contesting, checked against what the model can say."""
    if task == "regression":
        try:
            if isinstance(value, bool) or not math.isfinite(float(value)):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise InputError("wrong type", f"the correct value must be a number, got {value!r}.") from None
    labels = value if task == "multi_label" and isinstance(value, list) else [value]
    for label in labels:
        if not isinstance(label, str) or label not in classes:
            raise InputError("unknown label", f"{label!r} is not one of the model's classes ({', '.join(classes)})."
                                              f"{did_you_mean(label, classes)}")
    return labels if task == "multi_label" else value
