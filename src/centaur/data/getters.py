"""Getters: find the items (image files, table rows) and read x and y from each one."""
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import CentaurError, check_choice, did_you_mean
from ..core.images import IMAGE_EXTENSIONS
from ..core.log import warn

MODEL_FILES = {"model.json", "model.safetensors"}  # a folder holding both is a model directory


def get_image_files(path, recurse=True, folders=None):
    """All image files under `path` (by suffix, any case), sorted, skipping hidden files and folders.

    recurse: also look in subfolders (the default). folders: only look inside these immediate
    subfolders (for example ['train', 'valid']). Hidden names (.git, .centaur, macOS's ._x.jpg)
    are skipped.

    >>> files = get_image_files("data/emoji")  # doctest: +SKIP
    """
    root = Path(path)
    if not root.exists():
        raise CentaurError(f"folder {str(root)!r} does not exist; check the path.")
    if not root.is_dir():
        raise CentaurError(f"{str(root)!r} is a file, not a folder of images.")
    if isinstance(folders, str):
        folders = [folders]  # folders="train" means one folder, not the letters t, r, a, i, n
    roots = [root / f for f in folders] if folders else [root]
    missing = [str(f) for f, r in zip(folders or [], roots) if not r.is_dir()]
    if missing:
        present = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        raise CentaurError(f"no subfolder {missing[0]!r} in {str(root)!r}; subfolders are {present}."
                           + did_you_mean(missing[0], present))
    files = []
    for r in roots:
        seen = set()  # real paths of folders walked, so a symlink loop cannot recurse forever
        # os.walk lets us prune hidden folders (.git, .centaur caches) instead of listing them;
        # symlinked class folders are followed, as users often link photos from elsewhere.
        for folder, subfolders, names in os.walk(r, followlinks=True):
            real = os.path.realpath(folder)
            if real in seen:
                subfolders[:] = []
                continue
            seen.add(real)
            if folder != str(r) and MODEL_FILES <= set(names):
                # a model written inside the data (--out data/model): its plots are not training images
                warn(f"left out {folder}: it is a centaur model directory (model.json, model.safetensors), not data.")
                subfolders[:] = []
                continue
            subfolders[:] = sorted(d for d in subfolders if not d.startswith(".")) if recurse else []
            for name in names:
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    files.append(Path(folder) / name)
    return sorted(files)


def image_paths(paths):
    """Image files from a list of files and folders (folders searched recursively), in order.

    A folder without images or a path that does not exist is a CentaurError.

    >>> image_paths(["photo.jpg", "more_photos/"])  # doctest: +SKIP
    >>> image_paths("more_photos/")                   # doctest: +SKIP
    """
    if isinstance(paths, (str, os.PathLike)):  # one path, not its characters ('/' is the whole disk)
        paths = [paths]
    if not hasattr(paths, "__iter__") or hasattr(paths, "columns"):
        raise TypeError(f"give image paths: a file or folder, or a list of them, not a {type(paths).__name__}"
                        + (" (for a table of file names, pass its column: df['file'])" if hasattr(paths, "columns")
                           else "") + ".")
    files = []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            raise TypeError(f"give image paths (str or Path), not a {type(p).__name__}: {p!r:.80}.")
        p = Path(p)
        if p.is_dir():
            found = get_image_files(p)
            if not found:
                raise CentaurError(f"no images in folder {str(p)!r}.")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            raise CentaurError(f"{str(p)!r} does not exist; give image files or folders.")
    return files


def parent_label(path):
    """The name of the folder holding the file: data/cat/1.jpg -> 'cat'."""
    return Path(path).parent.name


class RegexLabeller:
    """Label from a regular expression on the file name (first group).

    >>> RegexLabeller(r"^([a-z]+)_\\d+")(Path("beagle_12.jpg"))
    'beagle'
    """

    def __init__(self, pattern, on="name"):
        self.pattern, self.on = pattern, check_choice("RegexLabeller on", on, ("name", "path"))
        try:
            self.regex = re.compile(pattern)
        except re.error as e:
            raise CentaurError(f"{pattern!r} is not a valid regular expression ({e}).") from None

    def __call__(self, item):
        text = Path(item).name if self.on == "name" else str(item)
        m = self.regex.search(text)
        if m is None:
            raise CentaurError(f"the pattern {self.pattern!r} does not match {text!r}; "
                               "fix the pattern or rename the file.")
        return m.group(1) if m.groups() else m.group(0)


class ColReader:
    """Read a column of a table row (a dict or pandas row); optional prefix, suffix, label_delim.

    >>> ColReader("file", prefix="images/")({"file": "a.jpg"})
    'images/a.jpg'
    """

    def __init__(self, col, prefix="", suffix="", label_delim=None):
        self.col, self.prefix, self.suffix, self.label_delim = col, prefix, suffix, label_delim

    def __call__(self, row):
        if self.col not in row:
            raise CentaurError(f"no column {self.col!r} in the table; columns are "
                               f"{', '.join(map(repr, row.keys()))}.{did_you_mean(self.col, row.keys())}")
        value = row[self.col]
        if self.label_delim is not None:
            if is_missing(value):  # an empty cell: no labels
                return []
            if isinstance(value, (list, tuple)):
                return [str(v) for v in value]
            # strip so that "cat, dog" with label_delim="," gives "dog", not " dog"
            return [v.strip() for v in str(value).split(self.label_delim) if v.strip()]
        if self.prefix or self.suffix:
            return f"{self.prefix}{value}{self.suffix}"
        return value


def is_missing(value):
    """Whether a cell is empty: None, NaN or NaT (pandas reads an empty CSV cell as NaN)."""
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # a list or an array: not one missing value
        return False


def read_table(source):
    """A DataFrame from a DataFrame, a CSV file or a Parquet file, with a clear error otherwise.

    A CSV line with more or fewer fields than the header is refused with its line number:
    pandas would fill a short line with missing values (or read a long one's first field as
    the row's index), and the model would learn from shifted columns.

    >>> read_table("bookings.csv").shape  # doctest: +SKIP
    (15402, 27)
    """
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if not path.is_file():
        raise CentaurError(f"table {str(path)!r} does not exist; give a CSV or Parquet file.")
    parquet = path.suffix.lower() in (".parquet", ".pq")
    if not parquet:
        check_csv_fields(path)
    try:
        return pd.read_parquet(path) if parquet else pd.read_csv(path)
    except Exception as e:  # pandas raises many types for a malformed file
        raise CentaurError(f"could not read table {str(path)!r}: {e}") from e


def text_column_names(df):
    """df with every column name as text (a DataFrame may name columns 7 or 2.5).

    A model directory keeps column names in JSON, where they become text; naming them as text
    from the start makes training and prediction agree.

    >>> list(text_column_names(pd.DataFrame({7: [1], "a": [2]})).columns)
    ['7', 'a']
    """
    if all(isinstance(c, str) for c in df.columns):
        return df
    names = [str(c) for c in df.columns]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CentaurError(f"column names {twice} occur twice once written as text (e.g. 1 and '1'); rename "
                           "the columns so that each name is different.")
    return df.set_axis(names, axis=1)


def check_csv_fields(path, show=5):
    """Raise CentaurError naming the lines of a CSV whose number of fields differs from the header's.

    Without quotes in the file, fields are counted with numpy over the bytes (commas per line,
    no Python per row); with quotes (a field may hold commas or newlines) the csv module counts
    them. Blank lines are skipped, as pandas does.
    """
    data = Path(path).read_bytes()
    if not data.strip():
        return  # pandas says the file is empty
    if b'"' not in data:
        buf = np.frombuffer(data, dtype=np.uint8)  # (n_bytes,)
        newlines = np.flatnonzero(buf == ord("\n"))  # (n_lines,) end of each line
        starts = np.concatenate([[0], newlines + 1])  # (n_lines + 1,) start of each line, and past the end
        ends = np.concatenate([newlines, [len(buf)]])
        ends = ends - (ends > starts) * (buf[np.maximum(ends - 1, 0)] == ord("\r"))  # CRLF files
        commas = np.zeros(len(starts), dtype=np.int64)  # (n_lines + 1,) commas on each line
        inside = starts < len(buf)
        commas[inside] = np.add.reduceat(buf == ord(","), starts[inside], dtype=np.int64)
        lines = np.flatnonzero(ends > starts)  # non-blank lines
        if len(lines) == 0:
            return
        fields = commas[lines] + 1
        bad = np.flatnonzero(fields != fields[0])
        found = [(int(lines[i]) + 1, int(fields[i])) for i in bad[:show]]
        n_bad, expected = len(bad), int(fields[0])
    else:
        import csv
        import io
        text = data.decode("utf-8", errors="replace")
        reader = csv.reader(io.StringIO(text, newline=""))
        expected, found, n_bad = None, [], 0
        for row in reader:
            if not row:
                continue
            if expected is None:
                expected = len(row)
            elif len(row) != expected:
                n_bad += 1
                if len(found) < show:
                    found.append((reader.line_num, len(row)))
    if n_bad:
        where = ", ".join(f"line {line} has {n}" for line, n in found) + (f" (and {n_bad - len(found)} more)"
                                                                           if n_bad > len(found) else "")
        raise CentaurError(f"table {str(path)!r} has {n_bad} malformed line(s) whose number of fields differs from "
                           f"the header's {expected}: {where}. Fix or remove them (a field with a comma needs "
                           "quotes), then run again.")


def table_items(df):
    """Rows of a DataFrame as plain dicts: cheap to index and to pass to getters."""
    return df.to_dict("records")
