"""Tables as people save them: other separators, Latin-1 text, compressed CSV, and spreadsheets refused with a hint."""
import bz2
import csv
import gzip
import io
import lzma
import re
import sys
from pathlib import Path

import pandas as pd

from ..core.errors import CentaurError
from .getters import read_table

SPREADSHEETS = (".xlsx", ".xlsm", ".xls", ".ods", ".numbers")
COMPRESSED = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}
SEPARATORS = {";": "';'", "\t": "tabs", "|": "'|'"}
_SHOW = 5


def read_user_table(source, say=True):
    """A DataFrame from a DataFrame, a Parquet file or a CSV file as people save them.

    A plain comma-separated UTF-8 CSV goes to read_table (which refuses ragged lines). Beyond
    it: a file separated by ';', tabs or '|' (sniffed from the header; with ';', decimal commas
    are read too), a file that is not UTF-8 (read as Windows-1252/Latin-1, which decodes any
    byte), and a CSV compressed as .gz, .bz2 or .xz; each is said on stderr (say=False: silent).
    A spreadsheet is refused with a hint to save it as CSV.

    >>> read_user_table("ventes.csv").shape  # doctest: +SKIP
    note: 'ventes.csv' is separated by ';' with decimal commas; read so.
    (506, 15)
    """
    if isinstance(source, pd.DataFrame):
        return read_table(source)
    path = Path(source)
    suffixes = [s.lower() for s in path.suffixes]
    if path.suffix.lower() in SPREADSHEETS:
        raise CentaurError(f"{str(path)!r} is a spreadsheet; save it as CSV (in Excel or LibreOffice: Save As > "
                           "CSV UTF-8) or Parquet, and give that file.")
    if not path.is_file() or path.suffix.lower() in (".parquet", ".pq"):
        return read_table(path)
    raw = path.read_bytes()
    notes = []
    unpack = COMPRESSED.get(path.suffix.lower())
    if unpack is not None:
        try:
            raw = unpack(raw)
        except (OSError, EOFError, lzma.LZMAError, ValueError) as e:
            raise CentaurError(f"could not decompress {str(path)!r} ({e}); is it really a {path.suffix} file?") from None
        notes.append(f"decompressed {path.suffix}")
        if len(suffixes) >= 2 and suffixes[-2] in SPREADSHEETS:
            raise CentaurError(f"{str(path)!r} holds a spreadsheet; save it as CSV and give that file.")
    if raw[:4] == b"PK\x03\x04" or raw[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        # the signature of a zip (.xlsx, .ods) or an old .xls, whatever the file is called
        raise CentaurError(f"{str(path)!r} is a spreadsheet or an archive, not CSV text; save it as CSV (Save As > "
                           "CSV UTF-8) and give that file.")
    try:
        text = raw.decode("utf-8-sig")
        encoding = "utf-8"
    except UnicodeDecodeError as e:
        bad = raw[e.start:e.start + 1]
        try:
            text, encoding = raw.decode("cp1252"), "Windows-1252"
        except UnicodeDecodeError:
            text, encoding = raw.decode("latin-1"), "Latin-1"
        line = raw[:e.start].count(b"\n") + 1
        notes.append(f"not UTF-8 (byte {bad!r} on line {line}), read as {encoding}; save it as UTF-8 to be sure of "
                     "its accents")
    sep = sniff_separator(text)
    decimal = "."
    if sep != ",":
        notes.append(f"separated by {SEPARATORS[sep]}")
        if sep == ";" and re.search(r"(?:^|;)\s*-?\d+,\d+\s*(?:;|$)", text[:100_000], re.MULTILINE):
            decimal = ","
            notes.append("with decimal commas")
    if not notes:
        return read_table(path)
    check_fields(text, sep, path)
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, decimal=decimal)
    except Exception as e:  # pandas raises many types for a malformed file
        raise CentaurError(f"could not read table {str(path)!r}: {e}") from e
    if say:
        print(f"note: {str(path)!r}: {'; '.join(notes)}.", file=sys.stderr)
    return df


def sniff_separator(text):
    """',' unless the header line has none and has ';', tabs or '|' instead (the most of them).

    >>> sniff_separator("a;b;c\\n1;2,5;3\\n")
    ';'
    """
    header = next((line for line in text.splitlines() if line.strip()), "")
    if "," in header:
        return ","
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def check_fields(text, sep, path):
    """CentaurError naming the lines whose number of fields differs from the header's (csv module,
    so quoted fields may hold the separator); blank lines are skipped, as pandas does."""
    rows = csv.reader(io.StringIO(text), delimiter=sep)
    width, bad = None, []
    for row in rows:
        if not row or row == [""] * len(row) and len(row) <= 1:
            continue
        if width is None:
            width = len(row)
        elif len(row) != width:
            bad.append((rows.line_num, len(row)))
    if bad:
        shown = ", ".join(f"line {n} has {k}" for n, k in bad[:_SHOW])
        more = f" (and {len(bad) - _SHOW} more)" if len(bad) > _SHOW else ""
        raise CentaurError(f"table {str(path)!r} has {len(bad)} malformed line(s) whose number of fields differs "
                           f"from the header's {width}: {shown}{more}. Fix or remove them (a field with the "
                           "separator needs quotes), then run again.")


def blank_overflow(df, skip=(), say=True):
    """df with numbers too large for float32 (|x| > 3.4e38, e.g. 1e300) blanked, as infinities are.

    The model computes in float32, where such a number becomes an infinity and its prediction
    NaN; blanking it (missing, filled as training filled missing values) keeps the row. A note
    on stderr counts them per column. Training and prediction both call this.

    >>> blank_overflow(pd.DataFrame({"x": [1.0, 1e300]}), say=False)["x"].tolist()
    [1.0, nan]
    """
    import numpy as np
    limit = float(np.finfo(np.float32).max)
    counts = {}
    for name in df.columns:
        col = df[name]
        if name in skip or pd.api.types.is_bool_dtype(col) or not pd.api.types.is_float_dtype(col):
            continue
        huge = np.isfinite(col.to_numpy(np.float64, na_value=np.nan)) & (col.abs() > limit).to_numpy()
        if huge.any():
            counts[name] = int(huge.sum())
    if not counts:
        return df
    df = df.copy()
    for name in counts:
        df[name] = df[name].mask(df[name].abs() > limit)
    if say:
        print(f"note: numbers too large for the model (beyond 3.4e38) are treated as missing, like infinities: "
              f"{counts} (column: rows).", file=sys.stderr)
    return df
