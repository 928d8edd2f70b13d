"""A table model's split, recorded in its model directory (split.json) so its validation rows can be found again.

The record holds the rule (time split: column and cut-off date; group split: column and seed;
random: seed), the validation rows as a compressed bitmap (about 0.1 MB for a million rows
split at random, a few bytes for a time split of a sorted table), and hashes of the rows
the model read, in 64 blocks, so a table that changed since training is refused with the
rows that differ rather than evaluated on the wrong rows.
"""
import base64
import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import CentaurError
from ..data.dates import parse_dates
from ..models.model_dir import read_split_record

N_BLOCKS = 64  # row hashes kept per table: enough to say where it changed, small in JSON


def _canonical(series, is_date=False):
    """One column as values that hash the same whether it came from a DataFrame, a CSV or a
    Parquet file: dates as int64 nanoseconds, numbers (and booleans) as float32, the rest as text."""
    if is_date:
        values = parse_dates(series, series.name)
        if getattr(values.dt, "tz", None) is not None:
            values = values.dt.tz_convert(None)
        return pd.Series(values.to_numpy(dtype="datetime64[ns]").view(np.int64))
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        # float32: a number written to CSV and read back may differ in its last binary digit
        with np.errstate(over="ignore"):  # 1e300 hashes as an infinity, the same in every reading
            return pd.Series(series.to_numpy(dtype=np.float64, na_value=np.nan).astype(np.float32))
    return pd.Series(series.astype(object).where(series.notna(), "\x00").astype(str).to_numpy())


def row_hashes(df, columns, date=None):
    """(N,) uint64: one hash per row of the named columns (vectorized by pandas, no per-row Python).

    >>> row_hashes(pd.DataFrame({"a": [1, 2]}), ["a"]).dtype
    dtype('uint64')
    """
    canon = pd.DataFrame({c: _canonical(df[c], c == date) for c in columns})
    return pd.util.hash_pandas_object(canon, index=False).to_numpy()


def _block_digests(hashes, n_blocks=N_BLOCKS):
    edges = np.linspace(0, len(hashes), min(n_blocks, max(1, len(hashes))) + 1).astype(np.int64)
    return edges.tolist(), [hashlib.sha256(hashes[a:b].tobytes()).hexdigest()[:16]
                            for a, b in zip(edges[:-1], edges[1:])]


def encode_rows(rows, n):
    """Row positions as base64 of a zlib-compressed bitmap (one bit per row of the table)."""
    mask = np.zeros(n, dtype=bool)
    mask[np.asarray(rows, dtype=np.int64)] = True
    return base64.b64encode(zlib.compress(np.packbits(mask).tobytes(), 9)).decode()


def decode_rows(text, n):
    """encode_rows' inverse: sorted int64 row positions.

    >>> decode_rows(encode_rows([0, 5, 9], 10), 10).tolist()
    [0, 5, 9]
    """
    bits = np.unpackbits(np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint8), count=n)
    return np.flatnonzero(bits).astype(np.int64)


def split_rule(df, date=None, group=None, valid_pct=0.2, seed=None, valid_idx=None):
    """The rule that chose the validation rows, as JSON: {'type': 'time'|'group'|'random', ...}."""
    if group:
        return {"type": "group", "column": group, "valid_pct": valid_pct, "seed": seed}
    if date:
        dates = parse_dates(df[date], date).iloc[valid_idx] if valid_idx is not None and len(valid_idx) else None
        cutoff = None if dates is None else dates.min().isoformat()  # rows on or after it validate
        return {"type": "time", "column": date, "valid_pct": valid_pct, "cutoff": cutoff}
    return {"type": "random", "valid_pct": valid_pct, "seed": seed}


def write_split(out, df, columns, rule, train_idx, valid_idx, source=None, target=None, date=None):
    """Write out/split.json for a table model: the rule, counts, the validation rows and row hashes.

    df: the table as read (before any target transform); columns: those the model read (the
    target, its inputs, the date and group columns), which are hashed; date: the date column,
    hashed as dates so a DataFrame's datetimes and a CSV's text of them agree.
    """
    hashes = row_hashes(df, columns, date)
    edges, blocks = _block_digests(hashes)
    record = {"kind": "table", "source": source, "n_rows": len(df), "target": target, "rule": rule,
              "n_train": int(len(train_idx)), "n_valid": int(len(valid_idx)),
              "valid_rows": {"encoding": "zlib-bitmap-base64", "data": encode_rows(valid_idx, len(df))},
              "fingerprint": {"columns": list(columns), "date": date,
                              "sha256": hashlib.sha256(hashes.tobytes()).hexdigest(), "block_edges": edges,
                              "blocks": blocks}}
    path = Path(out) / "split.json"
    path.write_text(json.dumps(record))
    return path


def read_table_split(model_dir):
    """The split record of a table model directory, or a CentaurError saying how to get one."""
    path, record = read_split_record(model_dir, "`centaur train TABLE --target COLUMN`, which records which rows "
                                                "validated")
    try:
        if record.get("kind") != "table":
            raise KeyError("kind")
        for key in ("n_rows", "rule", "valid_rows", "fingerprint"):
            record[key]  # noqa: B018 - present or KeyError
    except (AttributeError, KeyError, TypeError) as e:
        raise CentaurError(f"{str(path)!r} is damaged or not a table's split ({e}); retrain the model to write it "
                           "again.") from None
    return record


def validation_rows(record, df):
    """Sorted row positions of the validation rows of `df`, after checking it is the table the model
    was trained on (same number of rows, same values in the columns it read).

    >>> rows = validation_rows(read_table_split("models/hotels"), read_table("hotels.csv"))  # doctest: +SKIP
    """
    fp, n = record["fingerprint"], record["n_rows"]
    source = record.get("source") or "the training table"
    if len(df) != n:
        raise CentaurError(f"the table has {len(df)} rows but the model was trained on {n} ({source}); give the same "
                           "table, unchanged, so its validation rows can be found again.")
    missing = [c for c in fp["columns"] if c not in df.columns]
    if missing:
        raise CentaurError(f"the table lacks column(s) {missing} that the model was trained with; give the table it "
                           f"was trained on ({source}).")
    try:
        hashes = row_hashes(df, fp["columns"], fp.get("date"))
    except CentaurError as e:
        raise CentaurError(f"the table does not match the one the model was trained on: {e}") from None
    if hashlib.sha256(hashes.tobytes()).hexdigest() != fp["sha256"]:
        edges, blocks = _block_digests(hashes)
        changed = [i for i, (a, b) in enumerate(zip(blocks, fp["blocks"])) if a != b]
        first = changed[0] if changed else 0
        raise CentaurError(f"the table's rows changed since the model was trained ({source}): values differ in "
                           f"{len(changed)} of {len(blocks)} blocks of rows, first in rows {edges[first]} to "
                           f"{edges[first + 1] - 1} (0-based), in columns {fp['columns']}. Give the table the model "
                           "was trained on, unchanged and in the same row order.")
    return decode_rows(record["valid_rows"]["data"], n)
