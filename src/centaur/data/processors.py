"""Tabular processors (Categorify, FillMissing, Normalize): fitted on training rows, state as JSON."""
import decimal

import numpy as np
import pandas as pd

from ..core.errors import CentaurError, check_choice, did_you_mean
from ..core.log import warn

NA = "#na#"  # class 0 of every categorical column: missing, or a value never seen in training
_SHOW = 5


def _short(names, n=20):
    names = [str(c) for c in names]
    return ", ".join(names[:n]) + (f", ... ({len(names)} in all)" if len(names) > n else "")


def check_unique_columns(df, names=None):
    """Raise CentaurError naming the columns that occur more than once in df (among `names`, if given).

    pandas gives a DataFrame for df[name] when two columns share the name, and every later step
    fails on it with an error about Series ('truth value ... is ambiguous', 'factorize requires a
    Series'). read_csv renames a repeated header (Price, Price.1); a DataFrame built in Python or
    joined from two tables may not.

    >>> check_unique_columns(pd.DataFrame([[1, 2, 3]], columns=["a", "b", "a"]))
    Traceback (most recent call last):
    ...
    centaur.core.errors.CentaurError: the table has 2 columns named 'a'; ...
    """
    repeated = df.columns[df.columns.duplicated()]
    if names is not None:
        repeated = repeated[repeated.isin(list(names))]
    if len(repeated) == 0:
        return
    counts = df.columns.value_counts()
    shown = ", ".join(f"{int(counts[c])} columns named {c!r}" for c in dict.fromkeys(repeated))
    raise CentaurError(f"the table has {shown}; each column needs its own name, or nothing says which one is "
                       "meant. Rename or drop the repeats (e.g. df = df.loc[:, ~df.columns.duplicated()] keeps the "
                       "first of each).")


def check_columns(df, names):
    """Raise CentaurError listing every column of `names` that df lacks, each with a suggestion, or naming
    those of `names` that df holds twice."""
    check_unique_columns(df, names)
    columns = [str(c) for c in df.columns]
    missing = [n for n in names if n not in df.columns]
    if missing:
        hints = [did_you_mean(n, columns).strip() for n in missing]
        lines = ", ".join(f"{n!r}" + (f" ({hint})" if hint else "") for n, hint in zip(missing, hints))
        raise CentaurError(f"the table lacks {len(missing)} column(s) the model needs: {lines}. "
                           f"Its columns are {_short(columns)}.")


def _keys(values):
    """Category values as the strings Categorify matches on, so 3, 3.0 and '3' are one category.

    An integer column gains NaN (and becomes float) as soon as one cell is missing, and a web
    request sends numbers as text; matching on these keys keeps all three the same class.
    Called on distinct values only (pd.factorize), never once per row.
    """
    values = np.asarray(values)
    if values.dtype.kind not in "iufb":
        values = values.astype(object)
    if values.dtype.kind in "iub":
        return values.astype(str).tolist()
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values))
        out = values.astype(str).astype(object)
        out[whole] = values[whole].astype(np.int64).astype(str)
        return out.tolist()
    out = []
    for v in values:
        if isinstance(v, decimal.Decimal):  # read_sql's NUMERIC: Decimal('3.0') is the number 3, not the text '3.0'
            v = float(v)
        if isinstance(v, (float, np.floating)) and np.isfinite(v) and v == round(v):
            v = int(v)
        elif isinstance(v, (np.integer, np.bool_)):
            v = v.item()
        out.append(str(v))
    return out


FLOAT32_MAX = float(np.finfo(np.float32).max)


def to_float(series, name=None):
    """A continuous column as float64, missing, infinite and beyond-float32 values as NaN; CentaurError for text.

    >>> to_float(pd.Series(["1.5", None, 3])).tolist()
    [1.5, nan, 3.0]
    """
    name = series.name if name is None else name
    if pd.api.types.is_datetime64_any_dtype(series):
        raise CentaurError(f"continuous column {name!r} holds dates; expand it into numbers first with "
                           f"centaur.data.dates.add_date_parts(df, {name!r}).")
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(values) & ~series.isna().to_numpy()
        if bad.any():
            examples = pd.unique(series.to_numpy()[bad])[:_SHOW].tolist()
            raise CentaurError(f"continuous column {name!r} has {int(bad.sum())} value(s) that are not numbers, "
                               f"e.g. {examples}. Fix or blank them, or list {name!r} as a categorical column.")
    # An infinity would make every mean infinite, and a number beyond float32 (1e300) becomes one in
    # the model: both are missing, here, whichever way the table came (CLI, Python, the server)
    too_large = np.abs(values) > FLOAT32_MAX
    if too_large.any():
        values = np.where(too_large, np.nan, values)
    return values


class Categorify:
    """Categories to integer codes, learned from the training rows; 0 means missing or unseen.

    >>> cat = Categorify().fit(pd.DataFrame({"shop": ["b", "a", None]}), ["shop"])
    >>> cat.classes_["shop"], cat.transform(pd.DataFrame({"shop": ["a", "z", None]}))["shop"].tolist()
    (['#na#', 'a', 'b'], [1, 0, 0])
    """

    def fit(self, df, cols):
        check_columns(df, cols)
        self.classes_, self.unseen_ = {}, {}
        for col in cols:
            self.fit_column(df[col], col)
        return self

    def fit_column(self, series, col):
        """Learn one column's classes: '#na#', then its distinct values as strings, sorted."""
        uniques = pd.factorize(series)[1]  # distinct non-missing values; works on Arrow strings without copying
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            uniques = np.sort(uniques.astype(np.float64))  # numbers in numeric order: 2 before 10
            names = list(dict.fromkeys(_keys(uniques)))
        else:
            names = sorted(set(_keys(uniques)))
        self.classes_[col], self.unseen_[col] = [NA] + names, 0

    @property
    def cols(self):
        return list(self.classes_)

    def codes(self, series, col):
        """One column's int64 codes, and how many non-missing values were unseen in training."""
        codes, uniques = pd.factorize(series, use_na_sentinel=True)  # (N,), -1 where missing
        index = pd.Index(self.classes_[col])
        lookup = index.get_indexer(_keys(uniques))  # (U,) class of each distinct value, -1 if unseen
        unseen = lookup < 0
        lookup[unseen] = 0
        out = np.zeros(len(codes), dtype=np.int64)
        present = codes >= 0
        out[present] = lookup[codes[present]]
        n_unseen = int(np.bincount(codes[present], minlength=len(uniques))[unseen].sum()) if unseen.any() else 0
        return out, n_unseen

    def transform(self, df):
        check_columns(df, self.cols)
        out, self.unseen_ = {}, {}
        for col in self.cols:
            out[col], self.unseen_[col] = self.codes(df[col], col)
        return pd.DataFrame(out, index=df.index)

    def to_dict(self):
        return {"classes": {c: list(v) for c, v in self.classes_.items()}}

    @classmethod
    def from_dict(cls, d):
        self = cls()
        self.classes_ = {c: list(v) for c, v in d["classes"].items()}
        self.unseen_ = {c: 0 for c in self.classes_}
        return self


class FillMissing:
    """Fill missing continuous values with a training statistic, and flag them in <col>_na.

    Fill values are learned for every column; a flag column is added only for columns that
    had missing values in training, because the model's inputs are fixed at fit time. A column
    missing only at prediction time is still filled, but unflagged.

    >>> fill = FillMissing().fit(pd.DataFrame({"x": [1.0, None, 3.0]}), ["x"])
    >>> fill.transform(pd.DataFrame({"x": [None, 5.0]})).to_dict("list")
    {'x': [2.0, 5.0], 'x_na': [1, 0]}
    """

    def __init__(self, strategy="median", fill_value=0, add_col=True):
        self.strategy, self.fill_value, self.add_col = strategy, fill_value, add_col

    def fit(self, df, cols, values=None):
        """`values`: optional {col: float64 array} already read from df (saves a conversion)."""
        check_choice("fill strategy", self.strategy, ["median", "mean", "constant"])
        check_columns(df, cols)
        self.fill_values_, self.na_cols_ = {}, []
        for col in cols:
            x = values[col] if values is not None else to_float(df[col], col)
            missing = np.isnan(x)
            if missing.all() or self.strategy == "constant":
                fill = float(self.fill_value)
            else:
                fill = float(np.nanmedian(x) if self.strategy == "median" else np.nanmean(x))
            self.fill_values_[col] = fill
            if missing.any() and self.add_col:
                self.na_cols_.append(col)
        return self

    @property
    def cols(self):
        return list(self.fill_values_)

    @property
    def flag_names(self):
        return [f"{c}_na" for c in self.na_cols_]

    def fill(self, x, col):
        """(filled float64 values, missing mask) for one column's float64 values."""
        missing = np.isnan(x)
        return (np.where(missing, self.fill_values_[col], x) if missing.any() else x), missing

    def transform(self, df):
        """The continuous columns filled, then one 0/1 <col>_na column per flagged column."""
        check_columns(df, self.cols)
        out, flags = {}, {}
        for col in self.cols:
            out[col], missing = self.fill(to_float(df[col], col), col)
            if col in self.na_cols_:
                flags[f"{col}_na"] = missing.astype(np.int64)
        return pd.DataFrame({**out, **flags}, index=df.index)

    def to_dict(self):
        return {"strategy": self.strategy, "fill_value": float(self.fill_value), "add_col": self.add_col,
                "fill_values": dict(self.fill_values_), "na_cols": list(self.na_cols_)}

    @classmethod
    def from_dict(cls, d):
        self = cls(d["strategy"], d["fill_value"], d["add_col"])
        self.fill_values_, self.na_cols_ = dict(d["fill_values"]), list(d["na_cols"])
        return self


class Normalize:
    """Scale continuous columns to mean 0 and std 1 with the training rows' statistics.

    >>> norm = Normalize().fit(pd.DataFrame({"x": [1.0, 3.0]}), ["x"])
    >>> norm.means_, norm.stds_, norm.transform(pd.DataFrame({"x": [5.0]}))["x"].tolist()
    ({'x': 2.0}, {'x': 1.0}, [3.0])
    """

    def fit(self, df, cols):
        self.means_, self.stds_ = {}, {}
        for col in cols:
            x = to_float(df[col], col)
            mean, std = float(np.nanmean(x)), float(np.nanstd(x))  # ddof=0, as fastai's Normalize
            self.means_[col] = mean
            # a constant column would divide by zero; with std 1 it becomes all zeros instead
            self.stds_[col] = std if std > 0 and np.isfinite(std) else 1.0
        return self

    @property
    def cols(self):
        return list(self.means_)

    def scale(self, x, col):
        return (x - self.means_[col]) / self.stds_[col]

    def transform(self, df):
        check_columns(df, self.cols)
        return pd.DataFrame({c: self.scale(to_float(df[c], c), c) for c in self.cols}, index=df.index)

    def to_dict(self):
        return {"means": dict(self.means_), "stds": dict(self.stds_)}

    @classmethod
    def from_dict(cls, d):
        self = cls()
        self.means_, self.stds_ = dict(d["means"]), dict(d["stds"])
        return self


class TabularProcessor:
    """A table to model inputs: FillMissing, Categorify, Normalize, fitted once on training rows.

    transform gives (cat int64 (N, n_cat), cont float32 (N, n_cont)). Columns that are all
    missing or constant in training carry nothing to learn from and are dropped with a warning
    (see dropped_). The state is plain JSON (to_dict / from_dict), saved in the model directory.

    >>> df = pd.DataFrame({"shop": ["a", "b", "a"], "price": [1.0, None, 3.0]})
    >>> proc = TabularProcessor(["shop"], ["price"]).fit(df)
    >>> proc.cat_names_, proc.cardinalities_
    (['shop', 'price_na'], [3, 3])
    >>> cat, cont = proc.transform(df); cat.shape, cont.dtype
    ((3, 2), dtype('float32'))
    """

    def __init__(self, cat_names, cont_names, fill_strategy="median"):
        self.cat_names, self.cont_names = list(cat_names), list(cont_names)
        self.fill_strategy = fill_strategy

    def check_columns(self, df):
        """Raise CentaurError listing every column the processor needs that df lacks."""
        fitted = hasattr(self, "cont_names_")
        needed = (self.input_cat_names_ + self.cont_names_) if fitted else (self.cat_names + self.cont_names)
        check_columns(df, needed)

    def fit(self, df):
        check_choice("fill strategy", self.fill_strategy, ["median", "mean", "constant"])
        both = sorted(set(self.cat_names) & set(self.cont_names))
        if both:
            raise CentaurError(f"column(s) {both} are listed as both categorical and continuous; list each once.")
        self.check_columns(df)
        if len(df) == 0:
            raise CentaurError("cannot fit a TabularProcessor on an empty table; the training rows are empty.")
        self.dropped_ = {}
        values = {}
        for col in self.cont_names:
            x = to_float(df[col], col)
            known = x[~np.isnan(x)]
            if len(known) == 0:
                self.dropped_[col] = "all missing"
            elif len(known) == len(x) and known.min() == known.max():
                self.dropped_[col] = f"constant: always {known[0]:g}"
            else:
                values[col] = x
        for col in self.cat_names:
            series = df[col]
            n_missing = int(series.isna().sum())
            if n_missing == len(series):
                self.dropped_[col] = "all missing"
            elif n_missing == 0 and series.nunique() == 1:
                value = series.iloc[0]
                self.dropped_[col] = f"constant: always {value.item() if hasattr(value, 'item') else value!r}"
        if self.dropped_:
            warn("dropped column(s) with nothing to learn from in the training rows: "
                 + ", ".join(f"{c} ({why})" for c, why in self.dropped_.items()))
        self.input_cat_names_ = [c for c in self.cat_names if c not in self.dropped_]
        self.cont_names_ = [c for c in self.cont_names if c not in self.dropped_]
        # fastai's order: FillMissing first, so its _na flags are categorified and the
        # normalization statistics are those of the filled columns
        self.fill_missing_ = FillMissing(self.fill_strategy).fit(df, self.cont_names_, values)
        filled = {c: self.fill_missing_.fill(values[c], c) for c in self.cont_names_}
        self.cat_names_ = self.input_cat_names_ + self.fill_missing_.flag_names
        self.categorify_ = Categorify().fit(df, self.input_cat_names_)
        for col, flag in zip(self.fill_missing_.na_cols_, self.fill_missing_.flag_names):
            self.categorify_.fit_column(pd.Series(filled[col][1].astype(np.int64)), flag)
        self.normalize_ = Normalize().fit(pd.DataFrame({c: filled[c][0] for c in self.cont_names_}, index=df.index),
                                          self.cont_names_)
        self.unseen_ = {c: 0 for c in self.cat_names_}
        return self

    @property
    def cardinalities_(self):
        return [len(self.categorify_.classes_[c]) for c in self.cat_names_]

    def transform(self, df):
        """(cat int64 (N, n_cat), cont float32 (N, n_cont)) for any rows with the needed columns."""
        if not hasattr(self, "cont_names_"):
            raise CentaurError("this TabularProcessor is not fitted yet; call fit(train_df) first.")
        self.check_columns(df)
        n = len(df)
        cat = np.empty((n, len(self.cat_names_)), dtype=np.int64)  # (N, n_cat)
        cont = np.empty((n, len(self.cont_names_)), dtype=np.float32)  # (N, n_cont)
        self.unseen_ = {}
        missing = {}
        for j, col in enumerate(self.cont_names_):
            x, missing[col] = self.fill_missing_.fill(to_float(df[col], col), col)
            cont[:, j] = self.normalize_.scale(x, col)
        # flag columns are 0/1 from FillMissing, coded like any other category
        flags = {flag: pd.Series(missing[col].astype(np.int64))
                 for col, flag in zip(self.fill_missing_.na_cols_, self.fill_missing_.flag_names)}
        for j, col in enumerate(self.cat_names_):
            series = flags[col] if col in flags else df[col]
            cat[:, j], self.unseen_[col] = self.categorify_.codes(series, col)
        return cat, cont

    def to_dict(self):
        """Everything needed to process new rows, as JSON-able data."""
        return {"cat_names": self.cat_names, "cont_names": self.cont_names, "fill_strategy": self.fill_strategy,
                "dropped": dict(self.dropped_), "input_cat_names": self.input_cat_names_,
                "cat_names_": self.cat_names_, "cont_names_": self.cont_names_,
                "categorify": self.categorify_.to_dict(), "fill_missing": self.fill_missing_.to_dict(),
                "normalize": self.normalize_.to_dict()}

    @classmethod
    def from_dict(cls, d):
        """Rebuild a fitted processor from to_dict's output (e.g. read from model.json)."""
        try:
            self = cls(d["cat_names"], d["cont_names"], d["fill_strategy"])
            self.dropped_ = dict(d["dropped"])
            self.input_cat_names_, self.cat_names_ = list(d["input_cat_names"]), list(d["cat_names_"])
            self.cont_names_ = list(d["cont_names_"])
            self.categorify_ = Categorify.from_dict(d["categorify"])
            self.fill_missing_ = FillMissing.from_dict(d["fill_missing"])
            self.normalize_ = Normalize.from_dict(d["normalize"])
        except (KeyError, TypeError) as e:
            raise CentaurError(f"the tabular processor state is incomplete or damaged (missing {e}); re-export "
                               "the model.") from None
        self.unseen_ = {c: 0 for c in self.cat_names_}
        return self
