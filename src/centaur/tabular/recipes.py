"""The main job for tables: pick columns, split by time, train, report with intervals, export."""
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.errors import CentaurError, did_you_mean
from ..core.log import warn
from ..core.seed import set_seed
from ..data.dates import add_date_parts, add_holidays
from ..data.getters import read_table
from ..data.tabular import TabularDataLoaders, split_table
from ..train.export import export
from ..train.metrics import METRICS, bootstrap_ci
from .learner import tabular_learner

MAX_CARD = 20  # an integer column with at most this many values is read as categories (fastai's rule)


def _check_column(df, name, what):
    if name not in df.columns:
        raise CentaurError(f"unknown {what} column {name!r}; the table has {list(df.columns)}."
                           f"{did_you_mean(name, df.columns)}")


def choose_task(y, task=None):
    """'regression' or 'single_label' for a target column, saying why when it is not obvious."""
    if task is not None:
        if task not in ("regression", "classification"):
            raise CentaurError(f"unknown task {task!r}; use 'regression' or 'classification'.")
        return "regression" if task == "regression" else "single_label"
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        return "single_label"
    if pd.api.types.is_integer_dtype(y) and y.nunique() <= MAX_CARD:
        print(f"note: the target {y.name!r} holds {y.nunique()} whole numbers; it is treated as a number to "
              "predict (regression). Pass --task classification to treat each value as a class.", file=sys.stderr)
    return "regression"


def choose_columns(df, target, cat=None, cont=None, exclude=()):
    """(categorical, continuous) column names: given ones kept, the rest chosen by type.

    Text and booleans are categories; integers with at most MAX_CARD values are categories;
    other numbers are continuous; a text column with a different value on every row looks
    like an identifier and is left out (with a note).
    """
    for name in list(cat or []) + list(cont or []):
        _check_column(df, name, "feature")
    cat, cont = list(cat or []), list(cont or [])
    if cat and cont:
        return cat, cont
    given = set(cat) | set(cont) | {target} | set(exclude)
    auto_cat, auto_cont, ids = [], [], []
    for name in df.columns:
        if name in given:
            continue
        col = df[name]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            (ids if col.nunique() == len(col) and len(col) > MAX_CARD else auto_cat).append(name)
        elif pd.api.types.is_integer_dtype(col) and col.nunique() <= MAX_CARD:
            auto_cat.append(name)
        elif pd.api.types.is_integer_dtype(col) and col.nunique() == len(col) and col.is_monotonic_increasing:
            ids.append(name)  # a row number
        else:
            auto_cont.append(name)
    if ids:
        print(f"note: left out {ids}: a different value on every row looks like an identifier. "
              "Name them with --cat or --cont to use them.", file=sys.stderr)
    return (cat or auto_cat), (cont or auto_cont)


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


def evaluate_table(learn, task):
    """Validation metrics with 95% bootstrap intervals beside the baseline (mean or majority)."""
    preds, targets = learn.get_preds()
    report = {"n_valid": len(targets)}
    train_y = learn.dls.train.y
    if task == "regression":
        names = ["rmse", "mae", "r2"]
        base = train_y.float().mean()
        report["baseline"] = {"strategy": "training mean", "value": round(float(base), 6),
                              "rmse": round(METRICS["rmse"](base.expand_as(targets), targets), 6)}
    else:
        names = ["accuracy"] + (["auc"] if preds.shape[-1] == 2 else [])
        top = int(torch.bincount(train_y.view(-1)).argmax())
        report["baseline"] = {"strategy": "majority class", "class": learn.dls.y_block.vocab[top],
                              "accuracy": round(float((targets == top).float().mean()), 6)}
    for name in names:
        m = METRICS[name]
        low, high = bootstrap_ci(m, preds, targets, n_boot=200 if len(targets) > 100_000 else 1000)
        report[name] = {"value": round(m(preds, targets), 6), "ci95": [round(low, 6), round(high, 6)]}
    return report


def print_table_report(report, out=None):
    out = out or sys.stdout
    print(f"\nvalidation ({report['n_valid']} rows):", file=out)
    for name, v in report.items():
        if isinstance(v, dict) and "ci95" in v:
            print(f"  {name:<9} {v['value']:.4f}  (95% CI {v['ci95'][0]:.4f} to {v['ci95'][1]:.4f})", file=out)
    b = report["baseline"]
    if "rmse" in b:
        print(f"  baseline  rmse {b['rmse']:.4f}  (always predicting the training mean {b['value']:.4f})", file=out)
    else:
        print(f"  baseline  accuracy {b['accuracy']:.4f}  (always '{b['class']}', the most common class)", file=out)


def train_tabular(table, target, out, cat=None, cont=None, date=None, holidays=None, group=None, valid_pct=0.2,
                  task=None, epochs=5, lr=1e-2, bs=1024, layers=(200, 100), ps=0.0, embed_p=0.0,
                  log_target=False, seed=42, threads=None, progress=True):
    """Train a table model and write the model directory `out`; returns the validation report.

    >>> train_tabular("hotel_rates.csv", "avg_price_per_room", "models/hotels", date="arrival_date")  # doctest: +SKIP
    """
    torch.set_num_threads(threads or os.cpu_count() or 1)
    set_seed(seed)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CentaurError(f"--out {str(out)!r} is a file; give a folder for the model.")
    df = read_table(table)
    source = str(table) if not isinstance(table, pd.DataFrame) else "DataFrame"
    _check_column(df, target, "target")
    if group:
        _check_column(df, group, "group")
    y_kind = choose_task(df[target], task)
    if y_kind == "regression" and not pd.api.types.is_numeric_dtype(df[target]):
        raise CentaurError(f"the target {target!r} is not numeric (for example {df[target].dropna().iloc[0]!r}); "
                           "use --task classification to predict it as classes.")
    if log_target:
        if y_kind != "regression":
            raise CentaurError("--log-target needs a numeric target (regression).")
        if (df[target].dropna() <= 0).any():
            raise CentaurError(f"--log-target needs a positive target; {target!r} has zeros or negatives.")
        df = df.copy()
        df[target] = np.log(df[target])
    date_like = [c for c in df.columns if c != date and "date" in c.lower()]
    df, date_cols = prepare_table(df, date, holidays)
    cat, cont = choose_columns(df, target, cat, cont, exclude=([date] if date else []) + date_cols)
    # date parts are categories (each weekday, month, week gets an embedding), except the
    # elapsed time and the day of the year, which are numbers: with a time split most days of
    # the year in validation were never seen in training, so an embedding would know nothing
    elapsed = [c for c in date_cols if c.endswith(("Elapsed", "Dayofyear"))]
    cat = list(dict.fromkeys(cat + [c for c in date_cols if c not in elapsed]))
    cont = list(dict.fromkeys(cont + elapsed))
    train_idx, valid_idx = split_table(df, valid_pct, seed=seed, date=date, group=group)
    split = f"latest {valid_pct:.0%} by {date!r}" if date else f"by group {group!r}" if group else "random"
    if not date and date_like:
        warn(f"a random split on a table with date columns {date_like}: validation rows come from the same "
             "dates as training, which overstates accuracy on future data. Use --date COLUMN.")
    print(f"columns: {len(cat)} categorical {cat}\n         {len(cont)} continuous {cont}", file=sys.stderr)
    dls = TabularDataLoaders.from_df(df, target, cat, cont, y_kind, train_idx, valid_idx, bs=bs, seed=seed,
                                     source=source)
    print(f"data: {len(dls.train_ds)} training and {len(dls.valid_ds)} validation rows, {split} split",
          file=sys.stderr)
    learn = tabular_learner(dls, layers=layers, ps=ps, embed_p=embed_p, progress=progress)
    learn.plan = {"method": "fit_one_cycle", "epochs": epochs, "lr": lr}
    learn.fit_one_cycle(epochs, lr)
    report = evaluate_table(learn, y_kind)
    if log_target:
        report["note"] = "metrics are on the log of the target (--log-target)"
    print_table_report(report)
    prep = {"target": target, "date": date, "holidays": holidays, "log_target": log_target,
            "cat_names": cat, "cont_names": cont}
    provenance = {"split": split, "seed": seed, "valid_pct": valid_pct, "batch_size": bs, "group": group}
    export(learn, out, metrics=report, provenance=provenance, preprocessing=prep)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    print(f"model written to {out}/ (predict with: centaur predict {out} TABLE.csv)")
    return report
