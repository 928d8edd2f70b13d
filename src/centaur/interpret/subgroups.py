"""Subgroup audit (Gender Shades, Buolamwini and Gebru 2018): metrics for every group and every
intersection of groups, with intervals; the largest gap flagged; small groups marked, not hidden.
"""
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import CentaurError, did_you_mean
from ..core.log import warn
from ..core.words import plural
from ..train.metrics import wilson_interval

MIN_SIZE = 30  # below this an accuracy's 95% interval is wider than +-15 points: marked as too small


def read_groups(path, items, file_col="file", others=()):
    """A DataFrame of group columns aligned with `items` (relative file names), or CentaurError.

    The CSV has a file column and one column per grouping (skin type, farm, camera, ...). Rows
    naming `others` (the training files: a groups file often lists every image) are passed over;
    rows that match nothing are reported with their line numbers; items without a row get no
    group and are counted in a warning; a file listed twice with different groups is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise CentaurError(f"groups file {str(path)!r} does not exist; give a CSV with a {file_col!r} column and "
                           "one column per grouping.")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as e:
        raise CentaurError(f"could not read groups file {str(path)!r}: {e}") from None
    if file_col not in table.columns:
        raise CentaurError(f"groups file {str(path)!r} has no column {file_col!r}; its columns are "
                           f"{list(table.columns)}.{did_you_mean(file_col, table.columns)}")
    columns = [c for c in table.columns if c != file_col]
    if not columns:
        raise CentaurError(f"groups file {str(path)!r} has only the {file_col!r} column; add one column per grouping.")
    by_name = {}
    for item in items:
        by_name.setdefault(Path(item).name, []).append(item)
    wanted, others = set(items), set(others)
    other_names = {Path(o).name for o in others}
    keys, unmatched = [], []
    for line, name in enumerate(table[file_col], start=2):  # line 1 is the header
        name = name.strip().replace("\\", "/")
        # 'data/emoji/animal/cat.png' (from where the command ran) or '/home/.../animal/cat.png' name
        # the file 'animal/cat.png' of the data folder: the longest tail that is a file counts
        parts = Path(name).parts
        tails = ["/".join(parts[i:]) for i in range(len(parts))]
        hit = next((t for t in tails if t in wanted or t in others), None)
        if hit is not None:
            keys.append(hit if hit in wanted else None)  # a training file: passed over
        elif "/" not in name and len(by_name.get(name, [])) == 1:  # a bare name, unique among items
            keys.append(by_name[Path(name).name][0])
        else:
            keys.append(None)
            if "/" in name or name not in other_names:  # a bare name of a training file: passed over
                unmatched.append((line, name))
    if all(k is None for k in keys) and unmatched:
        raise CentaurError(f"no row of {str(path)!r} matches a validation file (line {unmatched[0][0]}: "
                           f"{unmatched[0][1]!r}; a validation file: {items[0]!r}). Use paths relative to the "
                           "data folder.")
    if unmatched:
        shown = ", ".join(f"line {n} ({f!r})" for n, f in unmatched[:5])
        one = len(unmatched) == 1
        warn(f"{plural(len(unmatched), 'row')} of {path.name} {'matches' if one else 'match'} no validation file "
             f"and {'is' if one else 'are'} ignored: {shown}"
             + (" ..." if len(unmatched) > 5 else ""))
    if all(k is None for k in keys):
        raise CentaurError(f"every row of {str(path)!r} names a training file; the audit measures the validation "
                           f"files ({items[0]!r}, ...): give their groups.")
    table = table.assign(_key=keys, _line=range(2, len(table) + 2)).dropna(subset=["_key"])
    clashes = table[table.duplicated("_key", keep=False)].groupby("_key")
    for key, rows in clashes:
        if len(rows[columns].drop_duplicates()) > 1:
            raise CentaurError(f"{key!r} is listed with different groups on lines "
                               f"{', '.join(map(str, rows['_line']))} of {str(path)!r}; keep one line per file.")
    table = table.drop_duplicates("_key", keep="last")
    aligned = table.set_index("_key").reindex(items)[columns]
    without = [item for item, has in zip(items, aligned.notna().any(axis=1)) if not has]
    if without:
        one = len(without) == 1
        warn(f"{len(without)} of {plural(len(items), 'validation file')} {'has' if one else 'have'} no row in "
             f"{path.name} and {'is' if one else 'are'} left out of the audit, for example {without[0]!r}.")
    return drop_single_valued(aligned, f"{str(path)!r}", "validation files"), unmatched


def drop_single_valued(aligned, source, items="validation files"):
    """aligned without the group columns that have fewer than two values (each warned about);
    CentaurError when none is left."""
    for col in list(aligned.columns):
        values = aligned[col].dropna().unique()
        if len(values) < 2:
            warn(f"group column {col!r} has {plural(len(values), 'value')} among the {items}: it compares "
                 "nothing and is left out.")
            aligned = aligned.drop(columns=col)
    if aligned.shape[1] == 0:
        raise CentaurError(f"no column of {source} has two or more groups among the {items}.")
    return aligned


def audit(correct, groups, min_size=MIN_SIZE, n_boot=1000, seed=0, metric="accuracy", higher_is_better=True):
    """A metric per group, per pair of group columns (intersections), with 95% intervals.

    correct: (N,) per-item scores whose mean is the metric: booleans (was item i predicted
    right) for accuracy, or absolute errors with metric='mae', higher_is_better=False for a
    regression; groups: DataFrame of N rows.
    Returns {'rows': [...], 'gaps': [...], 'min_size', 'metric', 'higher_is_better'}; each row
    has the columns and values that define it, n, the metric under its own name (row['accuracy']),
    ci95, too_small. Each gap is the largest difference in the metric between the best and the
    worst group of one column set, both with at least min_size items (always >= 0).

    >>> audit([1, 0, 1, 1], pd.DataFrame({"farm": ["a", "a", "b", "b"]}), min_size=1)["gaps"][0]["gap"]
    0.5
    """
    correct = np.asarray(correct, dtype=np.float64)
    # a proportion (accuracy) gets Wilson's interval and Newcombe's for a gap: a bootstrap says
    # "100% to 100%" for a small group with no error; other scores (absolute errors) a bootstrap
    proportion = bool(np.isin(correct, (0.0, 1.0)).all())
    rng = np.random.default_rng(seed)
    rows, gaps = [], []
    groups = groups.reset_index(drop=True)
    columns = list(groups.columns)
    sets = [(c,) for c in columns] + list(combinations(columns, 2))
    sign = 1.0 if higher_is_better else -1.0
    for cols in sets:
        table = groups[list(cols)].dropna()
        found = []
        for values, idx in table.groupby(list(cols)).indices.items():
            values = values if isinstance(values, tuple) else (values,)
            hits = correct[table.index[idx]]  # the index holds row positions (reset above)
            boot = hits[rng.integers(0, len(hits), (n_boot, len(hits)))].mean(1)
            ci = (wilson_interval(int(hits.sum()), len(hits)) if proportion
                  else (np.quantile(boot, 0.025), np.quantile(boot, 0.975)))
            row = {"columns": list(cols), "values": [str(v) for v in values], "n": len(hits),
                   metric: float(hits.mean()), "ci95": [float(ci[0]), float(ci[1])],
                   "too_small": len(hits) < min_size, "_boot": boot}
            found.append(row)
        rows.extend(found)
        big = [r for r in found if not r["too_small"]]
        if len(big) >= 2:
            best = max(big, key=lambda r: sign * r[metric])
            worst = min(big, key=lambda r: sign * r[metric])
            gap = sign * (best[metric] - worst[metric])
            if proportion:  # Newcombe (1998, method 10): from the two groups' Wilson intervals
                (l1, u1), (l2, u2) = best["ci95"], worst["ci95"]
                p1, p2 = best[metric], worst[metric]
                ci = (gap - np.hypot(p1 - l1, u2 - p2), gap + np.hypot(u1 - p1, p2 - l2))
            else:
                diff = sign * (best["_boot"] - worst["_boot"])
                ci = (np.quantile(diff, 0.025), np.quantile(diff, 0.975))
            gaps.append({"columns": list(cols), "best": best["values"], "worst": worst["values"],
                         "gap": gap, "ci95": [float(ci[0]), float(ci[1])]})
    for r in rows:
        del r["_boot"]
    gaps.sort(key=lambda g: -g["gap"])
    return {"rows": rows, "gaps": gaps, "min_size": min_size, "metric": metric, "higher_is_better": higher_is_better}
