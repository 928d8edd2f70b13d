"""Getters: find the items (image files, table rows) and read x and y from each one."""
import re
from pathlib import Path

import pandas as pd

from ..core.errors import CentaurError, did_you_mean
from ..core.images import IMAGE_EXTENSIONS


def get_image_files(path, recurse=True, folders=None):
    """All image files under `path` (by suffix), sorted, skipping hidden folders like .centaur.

    folders: only look inside these immediate subfolders (for example ['train', 'valid']).

    >>> files = get_image_files("data/emoji")  # doctest: +SKIP
    """
    root = Path(path)
    if not root.exists():
        raise CentaurError(f"folder {str(root)!r} does not exist; check the path.")
    if not root.is_dir():
        raise CentaurError(f"{str(root)!r} is a file, not a folder of images.")
    roots = [root / f for f in folders] if folders else [root]
    pattern = "**/*" if recurse else "*"
    files = []
    for r in roots:
        for p in r.glob(pattern):
            rel = p.relative_to(root).parts
            if any(part.startswith(".") for part in rel):
                continue
            if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file():
                files.append(p)
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
        self.pattern, self.on = pattern, on
        self.regex = re.compile(pattern)

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
            return [] if pd.isna(value) else [v for v in str(value).split(self.label_delim) if v]
        if self.prefix or self.suffix:
            return f"{self.prefix}{value}{self.suffix}"
        return value


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
