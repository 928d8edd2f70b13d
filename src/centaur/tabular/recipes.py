"""The main job for tables: read the table, split by time, train, report with intervals, export
(which columns are what: columns.py)."""
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..core.device import resolve_device
from ..core.errors import CentaurError
from ..core.seed import set_seed
from ..data.getters import text_column_names
from ..data.processors import check_unique_columns
from ..data.tabular import TabularDataLoaders, choose_batch_size, split_table
from ..train.accelerate import MixedPrecision
from ..train.checkpoint import check_resume
from ..train.distributed import cpu_threads, distributed, is_main_process, quiet_unless_main, world_size
from ..train.export import export
from ..train.metrics import METRICS, confidence_interval
from .columns import (add_date_columns, check_column, check_numbers_with_text, choose_columns, choose_task,
                      describe_dates, leak_warnings, prepare_table, read_decimal_columns, read_number_target)
from .learner import tabular_learner
from ..data.table_files import blank_overflow, read_user_table
from .split import split_rule, write_split

MIN_TRAIN_ROWS, MIN_VALID_ROWS = 50, 10  # fewer, and training says its scores mean little

def baseline_warning(evaluation, batch_size=None):
    """A warning (text) when the model scores worse than its baseline on validation, or not
    clearly better (its 95% interval reaches the baseline), else None.

    evaluation: train_tabular's report or TabularInterpretation.evaluate()'s: regression
    compares RMSE with always predicting the training mean, classification accuracy with
    always the majority class (multi-label: accuracy_multi with the labels most rows have).
    batch_size: the one trained with, named in the advice.

    >>> baseline_warning({"rmse": {"value": 46.0}, "baseline": {"rmse": 43.6, "value": 95.0}}, 1024)
    'the model does worse than the baseline: validation RMSE 46 against 43.6 for always predicting the training mean 95. ...'
    >>> baseline_warning({"rmse": {"value": 35.8, "ci95": [33.0, 38.9]}, "baseline": {"rmse": 36.0, "value": 95.0}})[:49]
    'the model is not clearly better than the baseline'
    """
    base = evaluation.get("baseline") or {}
    for metric, label, lower_is_better in (("rmse", "RMSE", True), ("accuracy", "accuracy", False),
                                           ("accuracy_multi", "accuracy_multi", False)):
        if metric in evaluation and metric in base:
            value, baseline = evaluation[metric]["value"], base[metric]
            break
    else:
        return None
    sign = 1 if lower_is_better else -1  # sign * (value - baseline) > 0: worse than the baseline
    # the interval's end nearest the baseline: a model within noise of it has learned little
    near = (evaluation[metric].get("ci95") or [value, value])[1 if lower_is_better else 0]
    if sign * (value - baseline) > 0:
        verdict, advice = "does worse than the baseline", "Do not use it as it is; try"
    elif sign * (near - baseline) >= 0:
        verdict, advice = "is not clearly better than the baseline (its 95% interval reaches it)", "Try"
    else:
        return None
    what = {"rmse": f"always predicting the training mean {base.get('value', float('nan')):.4g}",
            "accuracy": f"always answering {base.get('class')!r}, the most common class",
            "accuracy_multi": "always the labels in most training rows"}[metric]
    smaller = (f"a smaller batch (--bs {max(16, min(64, batch_size // 4))}; this model trained with {batch_size})"
               if isinstance(batch_size, int) and batch_size > 16 else "a smaller batch (--bs 64)")
    return (f"the model {verdict}: validation {label} {value:.4g} against {baseline:.4g} for {what}. {advice} more "
            f"epochs (--epochs 20), {smaller}, or another learning rate (--lr 3e-3 or --lr 3e-2).")


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
    check_column(df, target, "target")
    if group:
        check_column(df, group, "group")
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
    y = read_number_target(given_y, task)
    df = read_decimal_columns(df if y is given_y else df.assign(**{target: y}), skip=[target])
    if task in (None, "regression"):
        check_numbers_with_text(df[target], task)
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
