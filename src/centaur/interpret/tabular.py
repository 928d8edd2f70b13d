"""Interpreting a table model on its recorded validation rows: metrics, residuals and worst errors,
permutation importance, a column's learned embedding, subgroups, and the report's table sections.

The validation rows are predicted once (the constructor) and every view reuses them;
permutation importance re-runs the model on shuffled copies of the whole validation tensors.
"""
from html import escape, unescape
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.errors import CentaurError, did_you_mean
from ..core.log import warn
from .card import _todo

MAX_GROUP_VALUES = 20  # a numeric group column with more values is cut into quartiles


class TabularInterpretation:
    """What a regression or single-label table model got right and wrong on its validation rows.

    >>> interp = TabularInterpretation.from_model_dir("models/hotels", "hotel_rates.csv")  # doctest: +SKIP
    >>> interp.permutation_importance()[:3]                                                 # doctest: +SKIP
    """

    def __init__(self, predictor, df, rows, train_rows, record=None):
        from ..data.tabular import _label_codes
        self.predictor, self.df, self.record = predictor, df, record or {}
        self.rows, self.train_rows = np.asarray(rows, dtype=np.int64), np.asarray(train_rows, dtype=np.int64)
        self.task, self.classes, prep = predictor.task, predictor.classes, predictor.prep
        self.target, self.log_target = prep["target"], bool(prep.get("log_target"))
        if self.task not in ("regression", "single_label"):
            raise CentaurError(f"the table report covers regression and single-label models; this one is "
                               f"{self.task!r}. Its validation metrics with intervals are in its report.json.")
        if len(self.rows) == 0:
            raise CentaurError("nothing to interpret: the model recorded no validation rows.")
        valid = df.iloc[self.rows]
        cat, cont = predictor._prepare(valid)
        self.unseen = {k: v for k, v in predictor.processor.unseen_.items() if v}
        self.x_cat, self.x_cont = torch.from_numpy(cat), torch.from_numpy(cont)  # (N, n_cat), (N, n_cont)
        self.outputs = self._forward(self.x_cat, self.x_cont)  # (N, n_out) raw model outputs
        y, y_train = valid[self.target], df[self.target].iloc[self.train_rows]
        if self.task == "regression":
            self.targets = torch.tensor(pd.to_numeric(y, errors="coerce").to_numpy(np.float64))  # (N,)
            self.train_targets = torch.tensor(pd.to_numeric(y_train, errors="coerce").to_numpy(np.float64))
            self.preds = self._predictions(self.outputs)  # (N,) on the target's scale
        else:
            self.targets = torch.from_numpy(_label_codes(y, self.classes)).long()  # (N,)
            codes = _label_codes(y_train, self.classes)
            self.train_targets = torch.from_numpy(codes[codes >= 0]).long()
            self.probs = self.outputs.softmax(-1)  # (N, K)
            self.preds = self.probs.argmax(-1)  # (N,)

    def __repr__(self):
        """'<TabularInterpretation of 'models/hotels': regression of 'price', 3,081 validation rows, RMSE 21.4>'"""
        where = getattr(self.predictor, "model_dir", None)
        head = f"<{type(self).__name__}" + (f" of {str(where)!r}" if where is not None else "")
        if self.task == "regression":
            known = ~self.targets.isnan()
            score = f"RMSE {((self.preds - self.targets)[known] ** 2).mean().sqrt().item():.4g}"
        else:
            score = f"accuracy {(self.preds == self.targets).double().mean().item():.3f}"
        return f"{head}: {self.task} of {self.target!r}, {len(self.rows):,} validation rows, {score}>"

    @classmethod
    def from_model_dir(cls, model_dir, table=None, predictor=None):
        """Find the model's validation rows in `table` (default: the file it trained on) and predict them."""
        from ..data.getters import read_table, text_column_names
        from ..inference import TabularPredictor
        from ..tabular.split import read_table_split, validation_rows
        record = read_table_split(model_dir)
        predictor = predictor or TabularPredictor(model_dir)
        if predictor.task not in ("regression", "single_label"):
            raise CentaurError(f"the table report covers regression and single-label models; this one is "
                               f"{predictor.task!r}. Its validation metrics with intervals are in its report.json.")
        if table is None:
            source = record.get("source")
            if not source or source == "DataFrame":
                raise CentaurError(f"{str(model_dir)!r} was trained on a DataFrame: give the table (a CSV or Parquet "
                                   "file, or the DataFrame) to find its validation rows in.")
            table = source
        df = text_column_names(read_table(table))
        rows = validation_rows(record, df)
        # training rows: every other row with a target (and, for a time split, a date), as train_tabular kept them
        keep = np.ones(len(df), dtype=bool)
        keep[rows] = False
        keep &= df[predictor.prep["target"]].notna().to_numpy()
        if predictor.task == "single_label":  # validation labels never seen in training were dropped, not trained on
            from ..data.tabular import _label_codes
            keep &= _label_codes(df[predictor.prep["target"]], predictor.classes) >= 0
        rule = record["rule"]
        if rule.get("type") == "time":
            from ..data.dates import parse_dates
            keep &= parse_dates(df[rule["column"]], rule["column"]).notna().to_numpy()
        interp = cls(predictor, df, rows, np.flatnonzero(keep), record)
        interp.source = table if not isinstance(table, pd.DataFrame) else "DataFrame"
        return interp

    # --- predictions ---

    @torch.inference_mode()
    def _forward(self, x_cat, x_cont):
        bs, model = self.predictor.batch_size, self.predictor.model
        outs = [model(x_cat[i:i + bs], x_cont[i:i + bs]) for i in range(0, len(x_cat), bs)]
        return torch.cat(outs) if outs else torch.zeros(0, self.predictor.meta["num_outputs"])

    def _predictions(self, outputs):
        values = outputs[:, 0].double()
        return values.exp() if self.log_target else values

    def evaluate(self):
        """Metrics with 95% bootstrap intervals beside the baseline's.

        Regression: RMSE, MAE, RMSPE, R2 beside always predicting the training mean (train_tabular's
        report); classification: accuracy, error rate, macro F1, calibration, and AUC for two classes.
        """
        if self.task == "regression":
            from ..tabular.recipes import score_table
            if self.log_target:  # as the model learned it: metrics back on the original scale, rmse_log kept
                out, y, y_train = self.outputs, self.targets.log(), self.train_targets.log()
            else:
                out, y, y_train = self.outputs, self.targets, self.train_targets
            return score_table(out.double(), y[:, None], "regression", y_train[:, None], log_target=self.log_target)
        from .evaluation import evaluate_classification
        return evaluate_classification(self.probs, self.targets, self.classes, self.train_targets)

    def classification(self):
        """The image tools' ClassificationInterpretation on these rows (items are 'row 17', 0-based)."""
        if self.task != "single_label":
            raise CentaurError("confusion and per-class scores are for classifiers; this model is a regression.")
        from .classification import ClassificationInterpretation
        return ClassificationInterpretation(self.probs, self.targets, self.classes, [f"row {r}" for r in self.rows],
                                            self.train_targets)

    def errors(self):
        """(N,) per validation row: absolute error (regression) or 1 for a wrong class."""
        if self.task == "regression":
            return (self.preds - self.targets).abs()
        return (self.preds != self.targets).double()

    def worst(self, k=10, columns=8):
        """The k validation rows with the largest absolute error: a DataFrame with the row number
        (0-based in the table), actual, predicted, error and the row's first input columns."""
        if self.task != "regression":
            raise CentaurError("worst errors are for a regression; a classifier's are its top losses "
                               "(interp.classification().top_losses()).")
        err = self.errors()
        order = err.argsort(descending=True)[:k].numpy()
        inputs = [c for c in self.predictor.required_columns() if c in self.df.columns][:columns]
        table = self.df.iloc[self.rows[order]][inputs].reset_index(drop=True)
        table.insert(0, "row", self.rows[order])
        table.insert(1, "actual", self.targets[order].numpy())
        table.insert(2, "predicted", self.preds[order].numpy())
        table.insert(3, "error", (self.preds - self.targets)[order].numpy())
        return table

    def plot_residuals(self, path=None):
        """Residual (actual - predicted) against the prediction, as PNG bytes (or written to path)."""
        from .plots import residual_png
        if self.task != "regression":
            raise CentaurError("a residual plot is for a regression; use interp.classification().plot_confusion().")
        return residual_png(self.preds.numpy(), self.targets.numpy(), self.target, path)

    # --- permutation importance ---

    def input_columns(self):
        """{input column of the table: ([categorical positions], [continuous positions])} in the model's
        tensors. A number's missing-value flag ('x_na') counts with the number, and every part made
        from the date (weekday, month, elapsed, holidays) with the date, so each is shuffled as one."""
        proc, date = self.predictor.processor, self.predictor.prep.get("date")
        required = set(self.predictor.required_columns())  # what the table gives; the rest is made from the date

        def source(name):
            if name.endswith("_na") and name[:-3] in proc.cont_names_:
                name = name[:-3]
            return name if name in required or not date else date

        groups = {}
        for j, name in enumerate(proc.cat_names_):
            groups.setdefault(source(name), ([], []))[0].append(j)
        for j, name in enumerate(proc.cont_names_):
            groups.setdefault(source(name), ([], []))[1].append(j)
        return groups

    def _metric(self, outputs, targets):
        """(name, value, higher_is_better) of the metric importance is measured in."""
        if self.task == "regression":
            d = self._predictions(outputs) - targets
            return "RMSE", float(d.pow(2).mean().sqrt()), False
        return "accuracy", float((outputs.argmax(-1) == targets).double().mean()), True

    def permutation_importance(self, n_repeats=5, seed=0, max_rows=100_000):
        """How much worse the model does when one input column's values are shuffled among the
        validation rows (Breiman 2001; Fisher et al. 2019), n_repeats times: sorted [{column,
        importance, std, repeats, metric}], importance being the mean rise in RMSE (regression) or
        drop in accuracy (classification). Shuffling breaks the column's link to the target but
        keeps its distribution; a column the model ignores scores about 0.

        The shuffles act on the processed tensors of all rows at once (no per-row Python); at most
        max_rows validation rows (a seeded sample) are used.

        >>> interp.permutation_importance(n_repeats=3)[0]["column"]  # doctest: +SKIP
        'store'
        """
        gen = torch.Generator().manual_seed(seed)
        keep = torch.arange(len(self.rows))
        if len(keep) > max_rows:
            keep = torch.randperm(len(keep), generator=gen)[:max_rows].sort().values
        x_cat, x_cont, targets = self.x_cat[keep], self.x_cont[keep], self.targets[keep]  # (n, .)
        name, base, higher = self._metric(self._forward(x_cat, x_cont), targets)
        sign = 1.0 if higher else -1.0
        rows = []
        for column, (cats, conts) in self.input_columns().items():
            drops = []
            for _ in range(n_repeats):
                perm = torch.randperm(len(keep), generator=gen)  # (n,) one shuffle for all the column's tensors
                xc, xn = x_cat, x_cont
                if cats:
                    xc = x_cat.clone()
                    xc[:, cats] = x_cat[:, cats][perm]
                if conts:
                    xn = x_cont.clone()
                    xn[:, conts] = x_cont[:, conts][perm]
                drops.append(sign * (base - self._metric(self._forward(xc, xn), targets)[1]))
            rows.append({"column": column, "importance": float(np.mean(drops)),
                         "std": float(np.std(drops)), "repeats": drops, "metric": name})
        rows.sort(key=lambda r: -r["importance"])
        return rows

    def plot_importance(self, rows=None, path=None):
        """Bars of permutation importance with the spread over repeats, as PNG bytes."""
        from .plots import importance_png
        rows = rows if rows is not None else self.permutation_importance()
        metric = rows[0]["metric"] if rows else "metric"
        what = f"rise in {metric}" if metric == "RMSE" else f"drop in {metric}"
        return importance_png(rows, what, path)

    # --- embeddings ---

    def embedding(self, column=None):
        """(points (K, 2), categories (K,), column): PCA of one categorical column's learned embedding.

        column: default the table's column with the most categories. Categories the model treats
        alike lie close together (Guo and Berkhahn 2016).
        """
        from sklearn.decomposition import PCA
        proc = self.predictor.processor
        names = list(proc.input_cat_names_)
        if not names:
            raise CentaurError("this model has no categorical column, so no embedding to show.")
        if column is None:  # the table's own columns before the parts made from a date (31 days of the month)
            given = [c for c in names if c in self.predictor.required_columns()] or names
            column = max(given, key=lambda c: len(proc.categorify_.classes_[c]))
        elif column not in names:
            raise CentaurError(f"{column!r} is not a categorical input of this model; its categorical columns are "
                               f"{names}.{did_you_mean(column, names)}")
        weight = self.predictor.model.embeds[proc.cat_names_.index(column)].weight.detach().double().numpy()  # (K, d)
        labels = list(proc.categorify_.classes_[column])
        if weight.shape[1] >= 2 and weight.shape[0] >= 2:
            points = PCA(n_components=2, random_state=0).fit_transform(weight)  # (K, 2)
        else:  # one dimension (or one category): lay it along x
            points = np.column_stack([weight[:, 0] - weight[:, 0].mean(), np.zeros(len(weight))])
        return points, labels, column

    def plot_embedding(self, column=None, path=None):
        """The embedding of `column` in 2D, each point labelled with its category, as PNG bytes."""
        from .plots import embedding_png
        points, labels, column = self.embedding(column)
        # the first category is the one kept for missing and unseen values (stored as '#na#')
        return embedding_png(points, ["(unknown)"] + list(labels[1:]), column, path=path)

    # --- subgroups ---

    def groups(self, spec):
        """A DataFrame of group columns aligned with the validation rows, from `spec`: a column of the
        table (or several, comma-separated), or a CSV with a 'row' column (0-based row of the table, as
        `centaur predict` writes) and one column per grouping."""
        from .subgroups import drop_single_valued
        if isinstance(spec, pd.DataFrame):
            aligned = spec.reset_index(drop=True)
            if len(aligned) != len(self.rows):
                raise CentaurError(f"the groups DataFrame has {len(aligned)} rows; expected one per validation row "
                                   f"({len(self.rows)}).")
            return drop_single_valued(aligned, "the groups", "validation rows")
        spec = str(spec)
        names = [s.strip() for s in spec.split(",")]
        if all(n in self.df.columns for n in names):
            aligned = self.df.iloc[self.rows][names].reset_index(drop=True)
            for n in names:
                col = aligned[n]
                if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col) \
                        and col.nunique() > MAX_GROUP_VALUES:
                    aligned[n] = pd.qcut(col, 4, duplicates="drop").astype(str).where(col.notna())
                    warn(f"group column {n!r} holds {col.nunique()} different numbers: it is cut into quartiles.")
            return drop_single_valued(aligned, f"column(s) {names}", "validation rows")
        path = Path(spec)
        if not path.is_file():
            raise CentaurError(f"--groups {spec!r} is neither a column of the table nor a CSV file; give a column "
                               f"(the table has {list(self.df.columns)[:20]}) or a CSV with a 'row' column."
                               + did_you_mean(spec, self.df.columns))
        return self._groups_csv(path)

    def _groups_csv(self, path):
        from .subgroups import drop_single_valued
        try:
            table = pd.read_csv(path, dtype=str, keep_default_na=False)
        except Exception as e:
            raise CentaurError(f"could not read groups file {str(path)!r}: {e}") from None
        if "row" not in table.columns:
            raise CentaurError(f"groups file {str(path)!r} has no column 'row' (the 0-based row of the table); its "
                               f"columns are {list(table.columns)}.{did_you_mean('row', table.columns)}")
        columns = [c for c in table.columns if c != "row"]
        if not columns:
            raise CentaurError(f"groups file {str(path)!r} has only the 'row' column; add one column per grouping.")
        numbers = pd.to_numeric(table["row"].str.strip(), errors="coerce")
        bad = numbers.isna() | (numbers < 0) | (numbers >= len(self.df)) | (numbers != numbers.round())
        if bad.any():
            lines = ", ".join(f"line {i + 2} ({v!r})" for i, v in zip(np.flatnonzero(bad)[:5], table["row"][bad][:5]))
            raise CentaurError(f"{int(bad.sum())} row(s) of {str(path)!r} name no row of the table (0 to "
                               f"{len(self.df) - 1}): {lines}.")
        table = table.assign(row=numbers.astype(np.int64)).drop_duplicates("row", keep="last").set_index("row")
        if not np.isin(self.rows, table.index.to_numpy()).any():
            raise CentaurError(f"no row of {str(path)!r} is a validation row (the first are "
                               f"{self.rows[:5].tolist()}); key the file by the table's 0-based row number.")
        aligned = table.reindex(self.rows)[columns].reset_index(drop=True)
        aligned = aligned.mask(aligned == "")  # an empty cell is no group
        return drop_single_valued(aligned, f"{str(path)!r}", "validation rows")

    def audit(self, groups, min_size=None):
        """Subgroup audit on these rows: accuracy per group for a classifier, mean absolute error
        (lower is better) for a regression. groups: as for groups()."""
        from .subgroups import MIN_SIZE, audit
        table = self.groups(groups)
        kwargs = {"min_size": min_size or MIN_SIZE}
        if self.task == "regression":
            return audit(self.errors().numpy(), table, metric="mae", higher_is_better=False, **kwargs)
        return audit((self.preds == self.targets).numpy(), table, **kwargs)


# --- the report's sections for a table model ---

def describe_split(record):
    """One line on how the validation rows were chosen, from split.json's rule."""
    rule = record.get("rule", {})
    if rule.get("type") == "time":
        return f"time split: rows with {rule['column']!r} on or after {rule.get('cutoff')} validate"
    if rule.get("type") == "group":
        return f"group split: whole groups of {rule['column']!r} validate (seed {rule.get('seed')})"
    return f"random split (seed {rule.get('seed')})"


def _date_like(df, sample=50):
    """Columns that hold dates: datetime columns, names ending in 'date' (as split_table's warning),
    and text columns whose first `sample` values all read as ISO dates."""
    found = []
    for c in df.columns:
        col = df[c]
        if pd.api.types.is_datetime64_any_dtype(col) or str(c).lower().endswith("date"):
            found.append(str(c))
        elif not pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            head = col.dropna().head(sample)
            if len(head) and pd.to_datetime(head.astype(str), errors="coerce", format="ISO8601").notna().all():
                found.append(str(c))
    return found


def _fmt(v, pct):
    return f"{100 * v:.1f}%" if pct else f"{v:.4g}"


def _audit_html(audit, unit):
    metric, pct = audit["metric"], audit["metric"] == "accuracy"
    name = "accuracy" if pct else "mean absolute error"
    rows = [[escape(" x ".join(r["columns"])), escape(" & ".join(r["values"])), r["n"], _fmt(r[metric], pct),
             f"{_fmt(r['ci95'][0], pct)} to {_fmt(r['ci95'][1], pct)}",
             "<strong>too small to judge</strong>" if r["too_small"] else ""] for r in audit["rows"]]
    from .report import _table
    gaps = "".join(f"<p class='warn'>Largest gap in {escape(' x '.join(g['columns']))}: {_fmt(g['gap'], pct)}"
                   f"{' points of accuracy' if pct else f' in mean absolute error ({escape(unit)})'} between {escape(' & '.join(g['best']))} "
                   f"(best) and {escape(' & '.join(g['worst']))} (worst) (95% CI {_fmt(g['ci95'][0], pct)} to "
                   f"{_fmt(g['ci95'][1], pct)}).</p>" for g in audit["gaps"][:1])
    better = "higher" if audit["higher_is_better"] else "lower"
    return (gaps + f"<p>{escape(name.capitalize())} per group ({better} is better). Groups with fewer than "
            f"{audit['min_size']} validation rows are marked, not hidden: their intervals are too wide to judge.</p>"
            + _table(["grouping", "group", "n", name, "95% CI", ""], rows))


def _learning_rate(plan):
    """The learning rate a training plan records: fit_one_cycle's lr_max (one per group, or one for all)."""
    lr = plan.get("lr_max", plan.get("base_lr", plan.get("lr")))
    if lr is None:
        return "?"
    return ", ".join(f"{v:g}" for v in lr) if isinstance(lr, (list, tuple)) else f"{lr:g}"


def clearly_important(row, z=2.0):
    """Whether a permutation_importance row is clearly above zero: positive, and more than z
    standard errors of its mean over the shuffles (std / sqrt(repeats - 1), the spread being
    np.std's). A column the model ignores scores about 0, above or below it by chance.

    >>> clearly_important({"importance": 0.5, "std": 0.2, "repeats": [0.3, 0.5, 0.7, 0.4, 0.6]})
    True
    >>> clearly_important({"importance": 0.01, "std": 0.05, "repeats": [0.0] * 5})
    False
    """
    n = len(row.get("repeats") or [0, 0])
    return row["importance"] > 0 and row["importance"] > z * row.get("std", 0.0) / max(n - 1, 1) ** 0.5


def table_model_card(meta, version, evaluation, interp, audit=None, importance=None):
    """HTML of a table model's card: details, intended use, data, metrics, subgroups, failure cases.

    It opens with a warning when the model does worse than its baseline; it names the columns
    whose permutation importance is clearly above zero (clearly_important), at most three."""
    from ..tabular.recipes import baseline_warning
    prov, prep = meta.get("provenance", {}), meta["preprocessing"]
    train = prov.get("training", {}) or {}
    model = prep.get("model", {})
    proc = interp.predictor.processor
    warning = baseline_warning(evaluation, prov.get("batch_size"))
    parts = [f"<p class='warn'><strong>WARNING:</strong> {escape(warning)}</p>" if warning else "",
             "<h3>Model details</h3><ul>",
             f"<li>Architecture: entity-embedding network, hidden layers {escape(str(model.get('layers')))}, "
             f"embedding widths {escape(str(model.get('emb_szs')))}</li>",
             f"<li>Task: {escape(meta['task'])} of {escape(interp.target)!s}"
             + (f", {len(interp.classes)} classes: {escape(', '.join(map(str, interp.classes)))}" if interp.classes
                else "") + (" (learned on log scale)" if interp.log_target else "") + "</li>",
             f"<li>Inputs: {len(proc.input_cat_names_)} categorical {escape(str(proc.input_cat_names_))}; "
             f"{len(proc.cont_names_)} continuous {escape(str(proc.cont_names_))}"
             + (f"; dropped {escape(str(proc.dropped_))}" if proc.dropped_ else "") + "</li>",
             f"<li>Version (weights SHA-256 prefix): {escape(version)}; created {escape(str(prov.get('created')))}</li>",
             f"<li>Training: {escape(str(train.get('method', '?')))}, {escape(str(train.get('epochs', '?')))} epochs, "
             f"learning rate {escape(_learning_rate(train))}, batch size {escape(str(prov.get('batch_size', '?')))}, "
             f"seed {escape(str(prov.get('seed', '?')))}</li>",
             f"<li>Software: {escape(', '.join(f'{k} {v}' for k, v in (prov.get('versions') or {}).items()))}</li></ul>",
             "<h3>Intended use</h3>", _todo("who uses it, for which decisions, and which uses are out of scope."),
             "<h3>Data</h3><ul>", f"<li>Source: {escape(str(prov.get('data')))}</li>",
             f"<li>{len(interp.train_rows)} training and {len(interp.rows)} validation rows; "
             f"{escape(describe_split(interp.record))}</li></ul>", "<h3>Metrics</h3>"]
    if interp.task == "regression":
        r, b = evaluation["rmse"], evaluation["baseline"]
        parts.append(f"<p>RMSE {r['value']:.4g} (95% CI {r['ci95'][0]:.4g} to {r['ci95'][1]:.4g}) on "
                     f"{evaluation['n_valid']} validation rows, against {b['rmse']:.4g} for always predicting the "
                     f"training mean {b['value']:.4g}; MAE {evaluation['mae']['value']:.4g}, "
                     f"R² {evaluation['r2']['value']:.3f}.</p>")
    else:
        acc, base = evaluation["accuracy"], evaluation["baseline"]
        parts.append(f"<p>Accuracy {_fmt(acc['value'], True)} (95% CI {_fmt(acc['ci95'][0], True)} to "
                     f"{_fmt(acc['ci95'][1], True)}) on {evaluation['n']} validation rows, against "
                     f"{_fmt(base['accuracy'], True)} for always answering '{escape(str(base['class']))}'.</p>")
        if "auc" in evaluation:
            a = evaluation["auc"]
            parts.append(f"<p>AUC {a['value']:.3f} (95% CI {a['ci95'][0]:.3f} to {a['ci95'][1]:.3f}).</p>")
    if importance:
        relied = [r for r in importance if clearly_important(r)][:3]
        if relied:
            top = ", ".join(escape(r["column"]) for r in relied)
            parts.append(f"<p>The columns it relies on most (permutation importance): {top}.</p>")
        else:
            parts.append("<p>No column stands out: shuffling any one of them changes the "
                         f"{escape(importance[0]['metric'])} by no more than chance (permutation importance).</p>")
    parts.append("<h3>Subgroups</h3>")
    if audit and audit["gaps"]:
        g, pct = audit["gaps"][0], audit["metric"] == "accuracy"
        parts.append(f"<p>Largest gap: {_fmt(g['gap'], pct)} in {escape(audit['metric'])} between "
                     f"{escape(' & '.join(g['best']))} and {escape(' & '.join(g['worst']))} "
                     f"({escape(' x '.join(g['columns']))}; 95% CI of the gap {_fmt(g['ci95'][0], pct)} to "
                     f"{_fmt(g['ci95'][1], pct)}). See the subgroup table.</p>")
    elif audit:
        parts.append(f"<p>No two groups have {audit['min_size']} or more validation rows: no gap can be measured.</p>")
    else:
        parts.append("<p>No subgroup audit was run: give <code>--groups COLUMN</code> (a column of the table) or "
                     "<code>--groups groups.csv</code> (row, group columns) to measure the model for every group "
                     "it serves.</p>")
    parts.append("<h3>Known failure cases</h3><ul>")
    if interp.task == "regression":
        for _, w in interp.worst(3).iterrows():
            parts.append(f"<li>row {int(w['row'])}: actual {w['actual']:.4g}, predicted {w['predicted']:.4g}</li>")
    else:
        parts += [f"<li>{escape(str(a))} taken for {escape(str(p))}: {n} validation rows</li>"
                  for a, p, n in interp.classification().most_confused()[:3]]
    parts += ["</ul><h3>Limitations and ethical considerations</h3>",
              _todo("where it fails or was never tested (periods, places, groups missing from the table), who could "
                    "be harmed by a wrong answer, and how a person can contest a decision.")]
    return "".join(parts)


def table_datasheet(meta, interp):
    """HTML of a table's datasheet: composition (rows, columns, target on each side), process."""
    prov = meta.get("provenance", {})
    df = interp.df
    parts = ["<h3>Motivation</h3>", _todo("why the data was collected, by whom, and who funded it."),
             "<h3>Composition</h3>",
             f"<p>{len(df)} rows and {df.shape[1]} columns from {escape(str(prov.get('data')))}: "
             f"{len(interp.train_rows)} trained, {len(interp.rows)} validated "
             f"({escape(describe_split(interp.record))}), {len(df) - len(interp.train_rows) - len(interp.rows)} "
             "used by neither (no target, or no date for a time split).</p>"]
    y = df[interp.target]
    if interp.task == "regression":
        sides = {"train": interp.train_targets.numpy(), "valid": interp.targets.numpy()}
        rows = "".join(f"<tr><td>{s}</td><td>{np.nanmean(v):.4g}</td><td>{np.nanstd(v):.4g}</td>"
                       f"<td>{np.nanmin(v):.4g}</td><td>{np.nanmax(v):.4g}</td></tr>" for s, v in sides.items())
        parts.append(f"<table><tr><th>{escape(interp.target)}</th><th>mean</th><th>std</th><th>min</th><th>max</th>"
                     f"</tr>{rows}</table>")
    else:
        k = len(interp.classes)
        train, valid = (torch.bincount(t, minlength=k).tolist() for t in (interp.train_targets, interp.targets))
        rows = "".join(f"<tr><td>{escape(str(c))}</td><td>{a}</td><td>{b}</td></tr>"
                       for c, a, b in zip(interp.classes, train, valid))
        parts.append(f"<table><tr><th>class</th><th>train</th><th>valid</th></tr>{rows}</table>")
    missing = {c: int(n) for c, n in df.isna().sum().items() if n}
    parts.append(f"<p>Missing values: {escape(str(missing)) if missing else 'none'}; rows without a target: "
                 f"{int(y.isna().sum())}.</p>")
    parts += ["<h3>Collection and labelling</h3>",
              _todo("how the rows were gathered, over which period and places, by whom, with what consent."),
              "<h3>Preprocessing</h3>",
              f"<p>Dates expanded into parts ({escape(str(interp.predictor.prep.get('date')))}); categories coded from "
              "the training rows (missing and unseen ones as unknown); missing numbers filled with the training "
              "median and flagged; numbers standardized with training statistics.</p>",
              "<h3>Uses and distribution</h3>", _todo("what the data may and may not be used for, and its licence.")]
    return "".join(parts)


def build_table_report(model_dir, table=None, groups=None, top_k=10, n_repeats=5, embedding=None):
    """The report for a table model on its recorded validation rows; returns a Report.

    table: the CSV or Parquet file (or DataFrame) it trained on (default: the recorded file);
    groups: a column of the table (or 'a,b'), or a CSV with a 'row' column and group columns.

    >>> build_table_report("models/hotels", "hotel_rates.csv", groups="country").save("r.html")  # doctest: +SKIP
    """
    import datetime

    from ..models.model_dir import model_version
    from ..tabular.recipes import baseline_warning
    from .plots import reliability_png
    from .report import Report, _ci, _img, _table
    interp = TabularInterpretation.from_model_dir(model_dir, table)
    meta, version = interp.predictor.meta, model_version(model_dir)
    evaluation = interp.evaluate()
    sections, warnings = [], []
    worse = baseline_warning(evaluation, meta.get("provenance", {}).get("batch_size"))
    if worse:
        warnings.append(escape(worse[0].upper() + worse[1:]))  # first: the report's top line
    split_line = describe_split(interp.record)
    if interp.record["rule"].get("type") == "random":
        dated = _date_like(interp.df)
        if dated or groups is not None:
            why = (f"the table has date column(s) {dated}" if dated else "") + \
                  (" and " if dated and groups is not None else "") + ("the data has groups" if groups is not None else "")
            warnings.append(f"The validation rows were drawn at random, but {escape(why)}: rows from the same dates or "
                            "groups on both sides flatter the score. Validate on the latest rows (--date COLUMN) or on "
                            "whole groups (--group COLUMN).")
    if interp.unseen:
        warnings.append("Validation rows have categories never seen in training; the model treats them as unknown, "
                        f"the category it keeps for missing and unseen values: {escape(str(interp.unseen))}.")
    intro = (f"<p>{len(interp.rows)} validation rows ({escape(split_line)}). Intervals are 95% percentile "
             "bootstraps over the validation rows.</p>")

    # evaluation, and what the model got wrong
    data = {"evaluation": evaluation}
    if interp.task == "regression":
        b = evaluation["baseline"]
        names = [("rmse", "RMSE"), ("mae", "MAE"), ("rmspe", "RMSPE"), ("r2", "R²"), ("rmse_log", "RMSE of the log")]
        rows = [[label, _ci(evaluation[k], pct=False)] for k, label in names if k in evaluation]
        rows.append([f"baseline RMSE: always the training mean {b['value']:.4g}",
                     _ci({"value": b["rmse"], "ci95": b["rmse_ci95"]}, pct=False)])
        sections.append(("Evaluation", intro + _table(["metric", "value"], rows)))
        worst = interp.worst(top_k)
        data["worst"] = worst.to_dict("records")
        cells = [[escape(f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)) for v in r]
                 for r in worst.itertuples(index=False)]
        sections.append(("Residuals", "<p>Residual (actual - predicted) against the prediction: a good model's "
                         "points lie evenly around zero at every level; a funnel or a curve says where it fails.</p>"
                         + _img(interp.plot_residuals(), alt="residual plot")
                         + f"<h3>Worst errors ({len(worst)})</h3><p>Row numbers are 0-based rows of the table.</p>"
                         + _table([str(c) for c in worst.columns], cells)))
    else:
        ci = interp.classification()
        rows = [["accuracy", _ci(evaluation["accuracy"])], ["error rate", _ci(evaluation["error_rate"])],
                ["F1 (macro)", _ci(evaluation["f1_macro"], pct=False)],
                ["baseline: always '" + escape(str(evaluation["baseline"]["class"])) + "'",
                 f"{100 * evaluation['baseline']['accuracy']:.1f}%"],
                ["expected calibration error", f"{evaluation['calibration']['ece']:.3f}"]]
        if "auc" in evaluation:
            rows.append(["AUC (not accuracy)", _ci(evaluation["auc"], pct=False)])
            rows += [[f"precision in the top {k}", f"{100 * v:.1f}%"]
                     for k, v in evaluation["precision_at_top"].items()]
        sections.append(("Evaluation", intro + _table(["metric", "value"], rows)
                         + _img(reliability_png(evaluation["calibration"]), alt="reliability plot")))
        per_class = [[escape(str(r["class"])), f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}",
                      r["support"]] for r in ci.per_class()]
        confused = [[escape(str(a)), escape(str(p)), n] for a, p, n in ci.most_confused()[:10]]
        top = ci.top_losses(top_k)
        losses = [[escape(t["item"]), escape(str(t["actual"])), escape(str(t["predicted"])), f"{t['loss']:.2f}",
                   f"{t['probability']:.2f}"] for t in top]
        data.update(per_class=ci.per_class(), most_confused=ci.most_confused(), top_losses=top)
        sections.append(("Confusion", _img(ci.plot_confusion(), alt="confusion matrix") + "<h3>Most confused</h3>"
                         + (_table(["actual", "predicted", "count"], confused) if confused else "<p>None.</p>")
                         + "<h3>Per class</h3>" + _table(["class", "precision", "recall", "F1", "support"], per_class)
                         + "<h3>Top losses</h3>"
                         + _table(["row", "actual", "predicted", "loss", "probability of prediction"], losses)))

    # what the model relies on
    importance = interp.permutation_importance(n_repeats=n_repeats)
    data["importance"] = importance
    metric = importance[0]["metric"] if importance else ""
    what = f"rise in {metric}" if metric == "RMSE" else f"drop in {metric}"
    rows = [[escape(r["column"]), f"{r['importance']:.4g}", f"{r['std']:.2g}"] for r in importance]
    sections.append(("Permutation importance",
                     f"<p>How much worse the model does when one input column is shuffled among the validation rows "
                     f"({n_repeats} shuffles each; the {what}, and its spread). The parts made from a date are "
                     "shuffled together, as the date. Near zero: the model does not use the column, or another "
                     "column carries the same information.</p>"
                     + _img(interp.plot_importance(importance), alt="permutation importance")
                     + _table(["column", what, "std over shuffles"], rows)))
    if interp.predictor.processor.input_cat_names_:
        points, labels, column = interp.embedding(embedding)
        data["embedding"] = {"column": column, "categories": labels, "points": points.tolist()}
        sections.append(("Embedding", f"<p>The learned embedding of {escape(column)!r} ({len(labels)} categories), "
                         "projected to two dimensions by PCA: categories the model treats alike lie close together."
                         "</p>" + _img(interp.plot_embedding(column), alt=f"embedding of {column}")))

    # subgroups
    audit = None
    if groups is not None:
        audit = interp.audit(groups)
        sections.append(("Subgroups", _audit_html(audit, interp.target)))
    data["audit"] = audit

    sections.append(("Model card", table_model_card(meta, version, evaluation, interp, audit, importance)))
    sections.append(("Datasheet", table_datasheet(meta, interp)))
    if warnings:
        sections.insert(0, ("Warnings", "".join(f"<p class='warn'>{w}</p>" for w in warnings)))
    for w in warnings:
        warn(unescape(w))
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return Report(f"centaur report: {Path(model_dir).name} (version {version}, {now})", sections, data)
