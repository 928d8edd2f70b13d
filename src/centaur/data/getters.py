"""Getters: find the items (image files, table rows) and read x and y from each one."""
import os
import re
from pathlib import Path

import pandas as pd

from ..core.errors import CentaurError, check_choice, did_you_mean
from ..core.images import IMAGE_EXTENSIONS


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
            subfolders[:] = sorted(d for d in subfolders if not d.startswith(".")) if recurse else []
            for name in names:
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                    files.append(Path(folder) / name)
    return sorted(files)


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
    """A DataFrame from a DataFrame, a CSV file or a Parquet file, with a clear error otherwise."""
    if isinstance(source, pd.DataFrame):
        return source
    path = Path(source)
    if not path.is_file():
        raise CentaurError(f"table {str(path)!r} does not exist; give a CSV or Parquet file.")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path)
    except Exception as e:  # pandas raises many types for a malformed file
        raise CentaurError(f"could not read table {str(path)!r}: {e}") from e


def table_items(df):
    """Rows of a DataFrame as plain dicts: cheap to index and to pass to getters."""
    return df.to_dict("records")
