"""What a table's columns are: the task its target sets, which columns are categories and which
numbers, the parts a date gives, and the warnings a table earns before training (identifiers,
numbers stored as text, features that copy the target)."""
import decimal
import sys
import warnings

import numpy as np
import pandas as pd

from ..core.errors import CentaurError, did_you_mean
from ..data.dates import add_date_parts, add_holidays, read_dates, readable_format, refuse_ambiguous
from ..data.processors import check_unique_columns

MAX_CARD = 20  # an integer column with at most this many values is read as categories (fastai's rule)
MANY_LEVELS = 100  # a text column of numbers with more values than this may be a quantity: say --cont


def check_column(df, name, what):
    if name not in df.columns:
        raise CentaurError(f"unknown {what} column {name!r}; the table has {list(df.columns)}."
                           f"{did_you_mean(name, df.columns)}")


TASKS = {"regression": "regression", "classification": "single_label", "single_label": "single_label",
         "multi_label": "multi_label", "multi-label": "multi_label"}


def choose_task(y, task=None):
    """'regression', 'single_label' or 'multi_label' for a target column, saying why when it is not obvious.

    Multi-label (several labels per row, in one text cell split by a separator) is never
    guessed: ask for it with task='multi_label'.

    >>> choose_task(pd.Series(["a", "b"]))
    'single_label'
    """
    if task is not None:
        if task not in TASKS:
            raise CentaurError(f"unknown task {task!r}; use 'regression', 'classification' or 'multi_label'."
                               + did_you_mean(task, TASKS))
        return TASKS[task]
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "single_label"
    if pd.api.types.is_integer_dtype(y) and y.nunique() <= MAX_CARD:
        print(f"note: the target {y.name!r} holds {y.nunique()} whole numbers; it is treated as a number to "
              "predict (regression). Pass --task classification to treat each value as a class.", file=sys.stderr)
    return "regression"


NUMBER_TYPES = (str, decimal.Decimal, int, float, np.integer, np.floating)


def _as_numbers(col):
    """(numbers, how) when every non-missing cell of a text or object column is a finite number, else (None, None).

    Numbers arrive as text from Excel read with dtype=str, from string[pyarrow] columns and from
    JSON, and as decimal.Decimal from read_sql's NUMERIC columns. numbers: int64 when all are whole
    and none is missing, else float64. how: 'numbers' (Decimal or other number objects), 'text'
    (some written as text) or 'codes' (text with a leading zero, '02134': a code such as a zip code,
    whose zero a number would lose). Works on distinct values, not once per row.

    >>> _as_numbers(pd.Series(["1.5", "2", None]))[0].tolist(), _as_numbers(pd.Series(["a", "2"]))
    ([1.5, 2.0, nan], (None, None))
    """
    if isinstance(col.dtype, pd.CategoricalDtype) or not pd.api.types.is_string_dtype(col.dtype):
        return None, None  # numbers, dates, booleans and categories the user made are read as they are
    head = col.dropna().head(20).to_numpy(dtype=object)
    if pd.to_numeric(pd.Series(head, dtype=object), errors="coerce").isna().any():
        return None, None  # ordinary text: known from a few cells, without reading every distinct value
    codes, uniques = pd.factorize(col)  # (N,) -1 where missing, (U,)
    uniques = np.asarray(uniques, dtype=object)
    kinds = {type(v) for v in uniques}
    if len(uniques) == 0 or not all(issubclass(k, NUMBER_TYPES) and not issubclass(k, (bool, np.bool_))
                                    for k in kinds):
        return None, None
    values = pd.to_numeric(pd.Series(uniques, dtype=object), errors="coerce").to_numpy(np.float64, na_value=np.nan)
    if not np.isfinite(values).all():  # text ('n/a'), or 'inf' and 'nan' written out
        return None, None
    numbers = np.where(codes >= 0, values[np.maximum(codes, 0)], np.nan)  # (N,)
    if (codes >= 0).all() and (numbers == np.round(numbers)).all() and np.abs(numbers).max() < 2 ** 53:
        numbers = numbers.astype(np.int64)
    how = "numbers"
    if str in kinds:
        text = pd.Series([v for v in uniques if isinstance(v, str)], dtype=object)
        how = "codes" if text.str.match(r"\s*[+-]?0\d").any() else "text"
    return pd.Series(numbers, index=col.index, name=col.name), how


def read_number_target(y, task=None):
    """The target as numbers when every non-missing cell is one, written as text or held as Decimal
    (before, a price read as text trained a classifier with one class per price: accuracy 0.016);
    a note says so unless task='regression' asked for it. Unchanged with task='classification', for
    other text, and for codes with a leading zero ('007'), which stay classes."""
    if task not in (None, "regression"):
        return y
    numbers, how = _as_numbers(y)
    if numbers is None or how == "codes" and task is None:
        return y
    if task is None:
        first = pd.unique(y.dropna().to_numpy())[:3].tolist()
        shown = ", ".join(map(repr if how == "text" else str, first))
        held = "written as text" if how == "text" else "stored as Python objects such as decimal.Decimal"
        print(f"note: the target {y.name!r} holds numbers {held} ({shown}, ...); they are read as numbers. To "
              "predict each value as a class instead, pass --task classification (from Python "
              "task='classification').", file=sys.stderr)
    return numbers


def read_decimal_columns(df, skip=()):
    """df with every column of decimal.Decimal values (read_sql's NUMERIC) as numbers: they are numbers,
    not text, so they are chosen as numbers are (a category per value, before). Text stays text."""
    converted = {}
    for name in df.columns:
        if name in skip or df[name].dtype != object:
            continue
        numbers, how = _as_numbers(df[name])
        if how == "numbers":
            converted[name] = numbers
    return df.assign(**converted) if converted else df


def check_numbers_with_text(y, task=None, share=0.9):
    """CentaurError when a text target is mostly numbers (at least `share` of its cells): a few text
    cells ('unknown', 'n/a') would otherwise make it a classifier with one class per number."""
    if pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
        return
    given = y.dropna()
    numbers = pd.to_numeric(given, errors="coerce")
    text = given[numbers.isna()]
    if len(given) == 0 or len(text) == 0 or len(text) > (1 - share) * len(given) and task is None:
        return
    values = text.astype(str).value_counts()
    shown = ", ".join(f"{v!r} ({n}x)" for v, n in values.head(5).items()) + (
        f" and {len(values) - 5} other value(s)" if len(values) > 5 else "")
    rows = np.flatnonzero(y.notna().to_numpy())[numbers.isna().to_numpy()][:5].tolist()
    raise CentaurError(f"the target {y.name!r} holds numbers but {len(text)} of its {len(given)} cells are text: "
                       f"{shown} (rows {rows}..., counted from 0). Blank or fix those cells to predict the number, "
                       "or pass --task classification to treat every value as a class.")


def _holds_dates(col):
    """Whether a text column's values all read as dates (a sample of them: this is for a hint)."""
    sample = col.dropna().head(200)
    if not len(sample) or pd.api.types.is_numeric_dtype(sample):
        return False
    try:
        with warnings.catch_warnings():  # pandas says when it falls back to dateutil for text that is no date
            warnings.simplefilter("ignore", UserWarning)
            _, how = read_dates(sample.astype(str), col.name)
    except CentaurError:
        return False
    return not how["bad"].any()


def choose_columns(df, target, cat=None, cont=None, exclude=()):
    """(categorical, continuous) column names: given ones kept, the rest chosen by type.

    cat and cont override the choice for the columns they name only (--cat/--cont); every
    other column is still chosen. Text and booleans are categories; integers with at most
    MAX_CARD values are categories; other numbers (decimal.Decimal ones too) are continuous.
    Columns that look like identifiers are left out with a warning: text with more different
    values than half the rows (a customer id), and whole numbers that differ on every row (a
    policy number, a row number). Text that is all numbers stays categories (zip codes), with a
    note suggesting --cont when it has more than MANY_LEVELS values.

    >>> choose_columns(pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5], "y": [0, 1]}), "y", cat=["b"])
    (['b', 'a'], [])
    """
    check_unique_columns(df)
    for name in list(cat or []) + list(cont or []):
        check_column(df, name, "feature")
    cat, cont = list(dict.fromkeys(cat or [])), list(dict.fromkeys(cont or []))
    both = [c for c in cat if c in cont]
    if both:
        raise CentaurError(f"{both} named both with --cat and with --cont; name each column once.")
    if target in cat + cont:
        raise CentaurError(f"the target {target!r} is named with --{'cat' if target in cat else 'cont'}; the model "
                           "would see the answer. Leave it out of --cat and --cont.")
    given = set(cat) | set(cont) | {target} | set(exclude)
    auto_cat, auto_cont, ids, quantities = [], [], {}, []
    for name in df.columns:
        if name in given:
            continue
        col = df[name]
        numbers, how = _as_numbers(col)
        if how == "numbers":  # decimal.Decimal: numbers, chosen as numbers are
            col = numbers
        n_values = col.nunique()
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            # an identifier names a row rather than describes it: its embedding would learn the training
            # rows by heart (a customer id with 13,670 values in 20,000 rows) and know no new one
            if n_values > len(col) / 2 and len(col) > MAX_CARD:
                ids[name] = f"{n_values:,} different values in {len(col):,} rows"
            else:
                auto_cat.append(name)
                if n_values > MANY_LEVELS and how == "text":
                    quantities.append(name)
        elif pd.api.types.is_integer_dtype(col) and n_values <= MAX_CARD:
            auto_cat.append(name)
        elif pd.api.types.is_integer_dtype(col) and n_values == len(col) and len(col) > MAX_CARD:
            # a row number, or a policy number in any order: a continuous input would fit its order
            ids[name] = "a different whole number on every row"
        else:
            auto_cont.append(name)
    dates = [name for name in ids if _holds_dates(df[name])]
    ids = {name: why for name, why in ids.items() if name not in dates}
    if dates:  # a date column given without --date: every day differs, but it is no identifier
        print(f"warning: left out {', '.join(map(repr, dates))}: {'they hold' if len(dates) > 1 else 'it holds'} "
              f"dates. To use a date, name it with --date {dates[0]} (from Python date={dates[0]!r}): its year, "
              "month, weekday and more become inputs, and the latest rows validate.", file=sys.stderr)
    if ids:
        shown = "; ".join(f"{name!r} ({why})" for name, why in ids.items())
        they = ("they look like identifiers, which name a row rather than describe it" if len(ids) > 1 else
                "it looks like an identifier, which names a row rather than describes it")
        print(f"warning: left out {shown}: {they}, so the model would learn the training rows by heart. To use one "
              "anyway, name it with --cat NAME or --cont NAME (from Python cat=[...] or cont=[...]).", file=sys.stderr)
    if quantities:
        print(f"note: {quantities} hold numbers written as text, with many different values; they are used as "
              f"categories (as codes are). If they are quantities, name them with --cont "
              f"{' '.join(quantities)} (from Python cont={quantities}).", file=sys.stderr)
    return cat + auto_cat, cont + auto_cont


LEAK_CORRELATION = 0.999  # a numeric feature this correlated with a numeric target is a copy of it
LEAK_ROWS_PER_LEVEL = 10  # a feature that sorts the classes exactly is a leak when its values hold this many rows each


def leak_warnings(train, y, features, y_kind):
    """Warnings (text) about features that give the target away on the training rows.

    train: the training rows; y: their target, on its own scale (not its log); features: the
    input columns. For classes: a feature each of whose values goes with one class only (no
    uncertainty left about the class once it is known), with at least 2 values and on average
    LEAK_ROWS_PER_LEVEL rows or more per value, so a copy or a recoding of the target ('good' as
    1, a status written out) is caught but not a fine-grained feature that is pure by chance
    (a value on one row is always pure). For numbers: a numeric feature whose correlation with
    the target is beyond LEAK_CORRELATION (a price copied, or the price plus a tax). A strong
    ordinary feature is neither. A warning, not a refusal: the user may know the column is
    available when predicting.

    >>> train = pd.DataFrame({"copy": ["a", "b"] * 20, "x": [1, 2, 3, 4, 5] * 8})
    >>> leak_warnings(train, pd.Series(["no", "yes"] * 20, name="y"), ["copy", "x"], "single_label")
    ["'copy' gives the target 'y' away on the training rows (each of its 2 values goes with one class ...]
    """
    found = []
    if y_kind == "single_label":
        y_codes, classes = pd.factorize(y)
        known = y_codes >= 0
        if len(classes) < 2:
            return []
        for name in features:
            codes, values = pd.factorize(train[name].to_numpy()[known], use_na_sentinel=False)  # missing: a value too
            k = len(values)
            if k < 2 or k * LEAK_ROWS_PER_LEVEL > known.sum():
                continue
            # (value, class) pairs that occur, counted without sorting: one per value means each value has one class
            pairs = np.bincount(codes.astype(np.int64) * len(classes) + y_codes[known], minlength=k * len(classes))
            if np.count_nonzero(pairs) == k:
                found.append((name, f"each of its {k} values goes with one class of {y.name!r} only"))
    elif y_kind == "regression":
        target = pd.to_numeric(y, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        for name in features:
            col = train[name]
            if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                continue
            x = col.to_numpy(np.float64, na_value=np.nan)
            both = np.isfinite(x) & np.isfinite(target)
            if both.sum() < 3 or x[both].std() == 0 or target[both].std() == 0:
                continue
            r = float(np.corrcoef(x[both], target[both])[0, 1])
            if abs(r) > LEAK_CORRELATION:
                found.append((name, f"its correlation with {y.name!r} is {r:.4f}"))
    return [f"{name!r} gives the target {y.name!r} away on the training rows ({why}): a copy or a recoding of "
            "the target, or something known only once the answer is? A feature that reveals the answer makes the "
            "scores meaningless, and the model useless when it is not known. Drop the column from the table "
            "unless it will be known, as it is here, for every row to predict." for name, why in found]


# date parts that are numbers, not categories: they place a row on the time line
DATE_NUMBERS = ("Year", "Elapsed", "Dayofyear", "Week")


def add_date_columns(cat, cont, date_cols):
    """(cat, cont) with the columns made from a date added: categories, except four numbers.

    Each weekday, month and flag gets an embedding; the year, the week of the year, the elapsed
    time and the day of the year are numbers (fastai's add_datepart makes Year a number too).
    Under a time split, which is what --date is for, the latest rows validate and the rows
    predicted later are later still: their year, and with less than a year of history many of
    their weeks and days of the year, never occur in training,
    so an embedding of them would be the untrained 'unknown' one for every such row, while a
    number still places them beside (or just past) the times the model knows. A date part
    already named in cat or cont (--cat/--cont) stays where it was named.

    >>> add_date_columns(["shop"], ["price"], ["dayYear", "dayMonth", "dayWeek", "dayDayofweek", "dayElapsed"])
    (['shop', 'dayMonth', 'dayDayofweek'], ['price', 'dayYear', 'dayWeek', 'dayElapsed'])
    """
    given = set(cat) | set(cont)
    new = [c for c in date_cols if c not in given]
    numbers = [c for c in new if c.endswith(DATE_NUMBERS)]
    cat = list(dict.fromkeys(list(cat) + [c for c in new if c not in numbers]))
    cont = list(dict.fromkeys(list(cont) + numbers))
    return cat, cont


def describe_dates(series, name):
    """Say how a date column's text was read (a note on stderr) and return its format, or None for ISO
    dates; CentaurError when the text reads as day-first and month-first alike (03/04/2016)."""
    dates, how = read_dates(series, name)
    if how["local_time"]:
        print(f"note: the times in {name!r} have offsets from UTC that change (summer time); each row's local time "
              "as written is used.", file=sys.stderr)
    if how["iso"]:
        return None
    fmt, known = how["format"], dates.notna().to_numpy() & ~how["bad"]
    if how["ambiguous"]:
        refuse_ambiguous(series, dates, name, ", so their meaning is a guess. Save them as ISO dates (yyyy-mm-dd), "
                         "which cannot mix up the day and the month.")
    if known.any():
        i = int(np.flatnonzero(known)[0])
        order = " (day first)" if how["dayfirst"] else " (month first)" if "%d" in fmt and "%m" in fmt else ""
        print(f"note: read the dates in {name!r} as {readable_format(fmt)}{order}: {series.iloc[i]!r} is "
              f"{dates.iloc[i]:%Y-%m-%d}. ISO dates (yyyy-mm-dd) leave no doubt.", file=sys.stderr)
    return fmt


def prepare_table(df, date=None, holidays=None):
    """Expand the date column into parts (and holidays); returns (df, new columns)."""
    new = []
    if date:
        check_column(df, date, "date")
        keep = df[date]
        df, parts = add_date_parts(df, date, drop=True)
        new += parts
        if holidays:
            df[date] = keep
            df, hol = add_holidays(df, date, holidays)
            df = df.drop(columns=[date])
            new += hol
        df[date] = keep  # kept for the time split, never a feature
    return df, new
