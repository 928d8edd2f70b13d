"""The main job for tables: pick columns, split by time, train, report with intervals, export."""
import decimal
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.device import resolve_device
from ..core.errors import CentaurError, did_you_mean
from ..core.seed import set_seed
from ..data.dates import add_date_parts, add_holidays, read_dates, readable_format
from ..data.getters import text_column_names
from ..data.processors import check_unique_columns
from ..data.tabular import TabularDataLoaders, split_table
from ..train.accelerate import MixedPrecision
from ..train.checkpoint import check_resume
from ..train.distributed import cpu_threads, distributed, is_main_process, quiet_unless_main, world_size
from ..train.export import export
from ..train.metrics import METRICS, confidence_interval
from .learner import tabular_learner
from ..data.table_files import blank_overflow, read_user_table
from .split import split_rule, write_split

MAX_CARD = 20  # an integer column with at most this many values is read as categories (fastai's rule)
MIN_TRAIN_ROWS, MIN_VALID_ROWS = 50, 10  # fewer, and training says its scores mean little
MANY_LEVELS = 100  # a text column of numbers with more values than this may be a quantity: say --cont


def _check_column(df, name, what):
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


def _read_number_target(y, task=None):
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


def _read_decimal_columns(df, skip=()):
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


def _check_numbers_with_text(y, task=None, share=0.9):
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
        _check_column(df, name, "feature")
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
    if ids:
        shown = "; ".join(f"{name!r} ({why})" for name, why in ids.items())
        they = "they look like identifiers" if len(ids) > 1 else "it looks like an identifier"
        print(f"warning: left out {shown}: {they}, which names a row rather than describes it, so the model would "
              "learn the training rows by heart. To use one anyway, name it with --cat "
              "NAME or --cont NAME (from Python cat=[...] or cont=[...]).", file=sys.stderr)
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


# Batch size when none is given. A batch of 1024 suits a million rows, but on a table of a few
# thousand it leaves about 3 optimizer steps per epoch: on a 3,000-row bookings table (tests/
# tabular_tables.py) 5 epochs at 1024 ended worse than predicting the mean (RMSE 47.2 against
# 43.6) while 64 reached 10.8. So the batch is the power of two that gives at least MIN_STEPS
# steps per epoch, between fastai's default of 64 and 1024: 2,400 training rows get 64 (37
# steps), hotel_rates' 12,310 get 256 (48 steps; docs/benchmarks_tabular.md measured RMSE 38.5
# there against 44.8 at 1024, 0.6 s against 0.4 s for 5 epochs), and from 32,768 rows on (the
# Rossmann-shaped speed benchmark's 990,000 included) the batch stays 1024, as fast as before.
MIN_STEPS, MIN_BS, MAX_BS = 32, 64, 1024


def choose_batch_size(n_train, world=1):
    """The batch size train_tabular uses for n_train training rows when bs is None.

    The largest power of two with at least MIN_STEPS batches per epoch, kept between 64 and
    1024, and rounded up to a multiple of `world` (processes under torchrun split each batch).

    >>> choose_batch_size(2_400), choose_batch_size(12_310), choose_batch_size(990_000)
    (64, 256, 1024)
    """
    bs = MIN_BS
    while bs * 2 <= MAX_BS and n_train / (bs * 2) >= MIN_STEPS:
        bs *= 2
    return -(-bs // world) * world


def baseline_warning(evaluation, batch_size=None):
    """A warning (text) when the model scores worse than its baseline on validation, else None.

    evaluation: train_tabular's report or TabularInterpretation.evaluate()'s: regression
    compares RMSE with always predicting the training mean, classification accuracy with
    always the majority class (multi-label: accuracy_multi with the labels most rows have).
    batch_size: the one trained with, named in the advice.

    >>> baseline_warning({"rmse": {"value": 46.0}, "baseline": {"rmse": 43.6, "value": 95.0}}, 1024)
    'the model does worse than the baseline: validation RMSE 46 against 43.6 for always predicting the training mean 95. ...'
    """
    base = evaluation.get("baseline") or {}
    for metric, label, worse in (("rmse", "RMSE", lambda m, b: m > b), ("accuracy", "accuracy", lambda m, b: m < b),
                                 ("accuracy_multi", "accuracy_multi", lambda m, b: m < b)):
        if metric in evaluation and metric in base:
            value, baseline = evaluation[metric]["value"], base[metric]
            break
    else:
        return None
    if not worse(value, baseline):
        return None
    what = {"rmse": f"always predicting the training mean {base.get('value', float('nan')):.4g}",
            "accuracy": f"always answering {base.get('class')!r}, the most common class",
            "accuracy_multi": "always the labels in most training rows"}[metric]
    smaller = (f"a smaller batch (--bs {max(16, min(64, batch_size // 4))}; this model trained with {batch_size})"
               if isinstance(batch_size, int) and batch_size > 16 else "a smaller batch (--bs 64)")
    return (f"the model does worse than the baseline: validation {label} {value:.4g} against {baseline:.4g} for "
            f"{what}. Do not use it as it is; try more epochs (--epochs 20), {smaller}, or another learning rate "
            "(--lr 3e-3 or --lr 3e-2).")


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
        raise CentaurError(f"the dates in {name!r} read as month first and as day first alike (e.g. "
                           f"{series[known].iloc[0]!r}: no first or second field is above 12), so their meaning is "
                           f"a guess. Save them as ISO dates (yyyy-mm-dd), which cannot mix up the day and the month.")
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
        _check_column(df, date, "date")
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


def evaluate_table(learn, task, log_target=False):
    """Validation metrics with 95% bootstrap intervals beside a baseline with its own interval.

    Regression: RMSE, MAE, RMSPE and R2 beside always predicting the training mean; with
    log_target (the model learned log(y)) the metrics are on the original scale (predictions
    and targets exponentiated), and the RMSE of the log is kept as rmse_log.
    Single-label: accuracy (and AUC for two classes) beside the majority class. Multi-label:
    accuracy_multi (each row-label decision at a 0.5 threshold) beside predicting every
    label that is present in most training rows. Every interval uses the same resamples
    (seed 0), so a model's and its baseline's can be compared.
    """
    preds, targets = learn.get_preds()
    return score_table(preds, targets, task, learn.dls.train.y, learn.dls.y_block.vocab, log_target)


def score_table(preds, targets, task, train_y, vocab=None, log_target=False):
    """evaluate_table's report from raw model outputs and targets (as the loaders hold them);
    train_y: the training targets, for the baseline; vocab: the class names.

    >>> score_table(torch.tensor([[1.0], [2.0]]), torch.tensor([[1.0], [3.0]]), "regression",
    ...             torch.tensor([[2.0], [2.0]]))["mae"]["value"]
    0.5
    """
    report = {"n_valid": len(targets)}
    n_boot = 200 if len(targets) > 100_000 else 1000

    def scored(name, p, t):
        m = METRICS[name]
        low, high = confidence_interval(m, p, t, n_boot=n_boot)
        return {"value": round(m(p, t), 6), "ci95": [round(low, 6), round(high, 6)]}

    if task == "regression":
        if log_target:
            report["rmse_log"] = scored("rmse", preds, targets)
            preds, targets, train_y = preds.double().exp(), targets.double().exp(), train_y.double().exp()
        base = train_y.double().mean()
        for name in ("rmse", "mae", "rmspe", "r2"):
            report[name] = scored(name, preds, targets)
        base_preds = base.expand(targets.shape).to(targets.dtype)
        rmse_base = scored("rmse", base_preds, targets)
        report["baseline"] = {"strategy": "training mean", "value": round(float(base), 6),
                              "rmse": rmse_base["value"], "rmse_ci95": rmse_base["ci95"]}
    elif task == "multi_label":
        report["accuracy_multi"] = scored("accuracy_multi", preds, targets)
        common = (train_y.float().mean(0) > 0.5).float()  # (k,) labels present in most training rows
        # logits of +-10 stand for certain yes/no, so the same metric scores the baseline
        base_preds = (common * 20 - 10).expand(targets.shape)
        acc = scored("accuracy_multi", base_preds, targets)
        labels = [c for c, on in zip(vocab, common.tolist()) if on]
        report["baseline"] = {"strategy": "labels in most training rows", "labels": labels,
                              "accuracy_multi": acc["value"], "accuracy_multi_ci95": acc["ci95"]}
    else:
        present = torch.unique(targets.view(-1))
        # AUC compares how the model ranks the items of two classes: with one class in validation it is
        # undefined (it printed 'nan (95% CI nan to nan)'), so it is left out and a note says why
        two = preds.shape[-1] == 2 and len(present) == 2
        for name in ["accuracy"] + (["auc"] if two else []):
            report[name] = scored(name, preds, targets)
        if preds.shape[-1] == 2 and not two and len(present):
            only = vocab[int(present[0])] if vocab is not None else int(present[0])
            report["note"] = (f"validation holds one class only ({only!r}), so AUC, which compares "
                              "how the model ranks the two classes, is left out. Validate on more rows (a larger "
                              "validation share, or another split) to see both.")
        top = int(torch.bincount(train_y.view(-1).long()).argmax())
        acc = scored("accuracy", torch.nn.functional.one_hot(torch.full_like(targets, top), preds.shape[-1]).float(),
                     targets)
        report["baseline"] = {"strategy": "majority class", "class": vocab[top],
                              "accuracy": acc["value"], "accuracy_ci95": acc["ci95"]}
    return report


def print_table_report(report, out=None):
    out = out or sys.stdout
    print(f"\nvalidation ({report['n_valid']} rows):", file=out)
    for name, v in report.items():
        if isinstance(v, dict) and "ci95" in v:
            print(f"  {name:<14} {v['value']:.4f}  (95% CI {v['ci95'][0]:.4f} to {v['ci95'][1]:.4f})", file=out)
    b = report["baseline"]
    for metric, why in (("rmse", f"always predicting the training mean {b.get('value', 0):.4f}"),
                        ("accuracy", f"always '{b.get('class')}', the most common class"),
                        ("accuracy_multi", f"always the labels in most training rows: {b.get('labels')}")):
        if metric in b:
            low, high = b[f"{metric}_ci95"]
            print(f"  baseline {metric} {b[metric]:.4f}  (95% CI {low:.4f} to {high:.4f}; {why})", file=out)
    if "note" in report:
        print(f"  note: {report['note']}", file=out)


@quiet_unless_main()  # under torchrun every process prepares the table; the first alone says what it chose
def train_tabular(table, target, out, cat=None, cont=None, date=None, holidays=None, group=None, valid_pct=0.2,
                  task=None, epochs=5, lr=1e-2, bs=None, layers=(200, 100), ps=0.0, embed_p=0.0,
                  log_target=False, seed=42, threads=None, progress=True, label_delim=" ", device=None,
                  resume=False, bf16=False):
    """Train a table model and write the model directory `out`; returns the validation report.

    table: a CSV or Parquet file, or a pandas DataFrame. date: expanded into parts, and the
    latest valid_pct of rows validate; group: whole groups validate instead (with a date too,
    the date still gives features). task: 'regression', 'classification' or 'multi_label'
    (labels in one cell, split on label_delim). bs: the batch size; None chooses one from the
    number of training rows (choose_batch_size: 64 for a few thousand, 1024 from 32,768 on).
    device: None or "auto" (a CUDA GPU where there is one), "cpu" or "cuda". bf16: forward passes under bfloat16 autocast (a step 1.26x faster on
    this project's 2-core AVX512-BF16 machine, 4.55 -> 3.60 ms at batch 1024; slower where the
    hardware has no bfloat16). A checkpoint in `out` after every epoch (from the first process,
    under torchrun) lets resume=True go on after a crash or Ctrl-C; the finished model replaces it.

    >>> train_tabular("hotel_rates.csv", "avg_price_per_room", "models/hotels", date="arrival_date")  # doctest: +SKIP
    """
    torch.set_num_threads(threads or cpu_threads())  # under torchrun the cores are shared among its processes
    main = is_main_process()
    set_seed(seed)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CentaurError(f"--out {str(out)!r} is a file; give a folder for the model.")
    if bs == 1:  # batch norm cannot normalize a batch of one row: the first step would fail
        raise CentaurError("--bs 1 cannot train a table model: its batch normalization needs at least 2 rows in a "
                           "batch. Give --bs 2 or more, or leave it out to have one chosen for the table's size.")
    device = resolve_device(device)
    checkpoint = out / "checkpoint.safetensors"
    check_resume(checkpoint, resume)
    df = text_column_names(read_user_table(table))  # names go to model.json as text; use them as text throughout
    check_unique_columns(df)
    source = str(table) if not isinstance(table, pd.DataFrame) else "DataFrame"
    raw = df  # the table as given: split.json hashes its rows
    df = blank_overflow(df, skip=[str(target)])
    target, date, group = (None if c is None else str(c) for c in (target, date, group))
    cat = None if cat is None else [str(c) for c in cat]
    cont = None if cont is None else [str(c) for c in cont]
    _check_column(df, target, "target")
    if group:
        _check_column(df, group, "group")
        if group == target:
            raise CentaurError(f"--group {group!r} is the target: whole groups of one target value would validate, "
                               "so validation would hold only values never seen in training. Group by another "
                               "column (a customer, a store).")
        if date:
            print(f"note: with --group and --date the split is by group {group!r} (no group on both sides); the "
                  f"date {date!r} only gives features. Leave --group out to validate on the latest rows.",
                  file=sys.stderr)
    if holidays and not date:
        raise CentaurError(f"--holidays {holidays} needs --date COLUMN: holidays are looked up for each row's date.")
    given_y = df[target]
    y = _read_number_target(given_y, task)
    df = _read_decimal_columns(df if y is given_y else df.assign(**{target: y}), skip=[target])
    if task in (None, "regression"):
        _check_numbers_with_text(df[target], task)
    y_kind = choose_task(df[target], task)
    if y_kind == "regression" and not pd.api.types.is_numeric_dtype(df[target]):
        raise CentaurError(f"the target {target!r} is not numeric (for example {df[target].dropna().iloc[0]!r}); "
                           "use --task classification to predict it as classes.")
    y = df[target]  # on its own scale (before --log-target), for the leakage check
    if log_target:
        if y_kind != "regression":
            raise CentaurError("--log-target needs a numeric target (regression).")
        if (df[target].dropna() <= 0).any():
            raise CentaurError(f"--log-target needs a positive target; {target!r} has zeros or negatives.")
        df = df.copy()
        df[target] = np.log(df[target])
    date_format = describe_dates(df[date], date) if date and date in df.columns else None
    df, date_cols = prepare_table(df, date, holidays)
    cat, cont = choose_columns(df, target, cat, cont, exclude=([date] if date else []) + date_cols)
    cat, cont = add_date_columns(cat, cont, date_cols)
    # with a group the split keeps groups whole, and the date only gives features; without
    # either, split_table warns (once) when the table has date-like columns
    # rows with no target yet (often the newest) cannot train or validate: leave them out before the
    # split, or the latest valid_pct of rows may all lack a target and validation would be empty
    labelled = np.arange(len(df)) if y_kind == "multi_label" else np.flatnonzero(df[target].notna().to_numpy())
    if len(labelled) < len(df):
        print(f"note: left out {len(df) - len(labelled)} row(s) with no {target!r} before splitting; "
              f"{len(labelled)} remain.", file=sys.stderr)
        if len(labelled) == 0:
            raise CentaurError(f"the target {target!r} is empty on every row; nothing to learn from.")
    train_idx, valid_idx = split_table(df.iloc[labelled], valid_pct, seed=seed, date=None if group else date,
                                       group=group)
    train_idx, valid_idx = labelled[train_idx], labelled[valid_idx]  # back to positions in the whole table
    split = f"by group {group!r}" if group else f"latest {valid_pct:.0%} by {date!r}" if date else "random"
    print(f"columns: {len(cat)} categorical {cat}\n         {len(cont)} continuous {cont}", file=sys.stderr)
    for warning in leak_warnings(df.iloc[train_idx], y.iloc[train_idx], cat + cont, y_kind):
        print(f"warning: {warning}", file=sys.stderr)
    chosen = bs is None
    if chosen:
        bs = choose_batch_size(len(train_idx), world_size())
    dls = TabularDataLoaders.from_df(df, target, cat, cont, y_kind, train_idx, valid_idx, bs=bs, seed=seed,
                                     source=source, label_delim=label_delim)
    print(f"data: {len(dls.train_ds)} training and {len(dls.valid_ds)} validation rows, {split} split",
          file=sys.stderr)
    if chosen:
        print(f"note: batch size {bs}, chosen for {len(dls.train_ds)} training rows: {len(dls.train)} steps per "
              "epoch. Give --bs to set another.", file=sys.stderr)
    if len(dls.train_ds) < MIN_TRAIN_ROWS or len(dls.valid_ds) < MIN_VALID_ROWS:
        print(f"warning: only {len(dls.train_ds)} training and {len(dls.valid_ds)} validation rows; the scores "
              f"below mean little (their intervals say how little). Fewer than {MIN_TRAIN_ROWS} training or "
              f"{MIN_VALID_ROWS} validation rows is too few to trust.", file=sys.stderr)
    learn = tabular_learner(dls, layers=layers, ps=ps, embed_p=embed_p, progress=progress, device=device)
    if resume:
        print(f"resuming from {checkpoint}", file=sys.stderr)
    with distributed(learn):  # several processes under torchrun (centaur train --nproc N); otherwise just fit
        learn.fit_one_cycle(epochs, lr, checkpoint=checkpoint, resume=resume, cbs=[MixedPrecision()] if bf16 else [])
    if not main:
        return None
    report = evaluate_table(learn, y_kind, log_target=log_target)
    if log_target:
        report["note"] = ("the model learned log(target) (--log-target); metrics are on the original scale, "
                          "rmse_log on the log")
    print_table_report(report)
    warning = baseline_warning(report, bs)
    if warning:
        print(f"WARNING: {warning}", file=sys.stderr)
    prep = {"target": target, "date": date, "holidays": holidays, "log_target": log_target,
            "cat_names": cat, "cont_names": cont}
    if date_format:
        prep["date_format"] = date_format  # how the training dates were read, e.g. '%d/%m/%Y'
    if y_kind == "multi_label":
        prep["label_delim"] = label_delim
    provenance = {"split": split, "seed": seed, "valid_pct": valid_pct, "batch_size": bs, "group": group}
    export(learn, out, metrics=report, provenance=provenance, preprocessing=prep)
    checkpoint.unlink(missing_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    # which rows validated, and hashes of the rows read, so `centaur report` finds them again
    rule = split_rule(df, date=date, group=group, valid_pct=valid_pct, seed=seed, valid_idx=dls.valid_idx)
    read = [c for c in dict.fromkeys([target, date, group, *cat, *cont]) if c and c in raw.columns]
    write_split(out, raw, read, rule, dls.train_idx, dls.valid_idx, source=source, target=target, date=date)
    print(f"model written to {out}/ (predict with: centaur predict {out} TABLE.csv)")
    return report
