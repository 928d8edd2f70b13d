"""Splitters: which items train and which validate. Each returns (train_idx, valid_idx)."""
import numbers
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import CentaurError, did_you_mean


def _check_pct(valid_pct):
    number = isinstance(valid_pct, numbers.Real) and not isinstance(valid_pct, bool)
    if not number or not 0 < valid_pct < 1:
        raise CentaurError(f"valid_pct must be between 0 and 1 (a fraction like 0.2), got {valid_pct!r}.")


def _value(item, key):
    if callable(key):
        return key(item)
    try:
        return item[key]
    except (KeyError, IndexError, TypeError):
        columns = list(item.keys()) if hasattr(item, "keys") else []
        where = f"columns are {columns}.{did_you_mean(key, columns)}" if columns else \
            f"items are {type(item).__name__}, not table rows; give a function of the item instead."
        raise CentaurError(f"cannot read {key!r} from an item; {where}") from None


class RandomSplitter:
    """A seeded random fraction of the items validates.

    >>> RandomSplitter(0.5, seed=0)(list(range(4)))
    ([...], [...])
    """

    def __init__(self, valid_pct=0.2, seed=None):
        self.valid_pct, self.seed = valid_pct, seed

    def __call__(self, items):
        _check_pct(self.valid_pct)
        order = np.random.default_rng(self.seed).permutation(len(items))
        cut = int(round(self.valid_pct * len(items)))
        return sorted(order[cut:].tolist()), sorted(order[:cut].tolist())


class FolderSplitter:
    """Split by folder name: data/train/cat/1.jpg trains, data/valid/cat/2.jpg validates.

    The folder nearest the file decides, so a project kept under /home/ann/valid/ still
    splits by its own train/ and valid/ folders. Items in neither (data/test/...) are left out.

    >>> FolderSplitter()(["d/train/a/1.jpg", "d/valid/a/2.jpg"])
    ([0], [1])
    """

    def __init__(self, train_name="train", valid_name="valid"):
        self.train_name, self.valid_name = train_name, valid_name

    def __call__(self, items):
        train, valid, folders = [], [], set()
        for i, item in enumerate(items):
            if not isinstance(item, (str, Path)):
                raise CentaurError(f"FolderSplitter needs file paths, got {type(item).__name__} items; "
                                   "for a table, use FuncSplitter or a RandomSplitter.")
            parents = Path(item).parts[:-1]
            folders.update(parents)
            for part in reversed(parents):
                if part == self.valid_name:
                    valid.append(i)
                    break
                if part == self.train_name:
                    train.append(i)
                    break
        for name, found in ((self.valid_name, valid), (self.train_name, train)):
            if not found:
                raise CentaurError(f"no item is inside a {name!r} folder; make one, name the folder you have "
                                   f"(FolderSplitter(train_name=..., valid_name=...)) or use a random split."
                                   + did_you_mean(name, sorted(folders)))
        return train, valid


class FuncSplitter:
    """Items for which func(item) is true validate."""

    def __init__(self, func):
        self.func = func

    def __call__(self, items):
        flags = [bool(self.func(item)) for item in items]
        return [i for i, f in enumerate(flags) if not f], [i for i, f in enumerate(flags) if f]


class GroupSplitter:
    """Whole groups validate (a patient, a farm, a store): no group is on both sides.

    group: a column name of a table row, or a function of the item.
    """

    def __init__(self, group, valid_pct=0.2, seed=None):
        self.group, self.valid_pct, self.seed = group, valid_pct, seed

    def __call__(self, items):
        _check_pct(self.valid_pct)
        groups = [_value(item, self.group) for item in items]
        unique = sorted(set(groups), key=str)
        if len(unique) < 2:
            raise CentaurError(f"a group split needs at least 2 groups, found {len(unique)}.")
        order = np.random.default_rng(self.seed).permutation(len(unique))
        n_valid = max(1, int(round(self.valid_pct * len(unique))))
        valid_groups = {unique[j] for j in order[:n_valid]}
        valid = [i for i, g in enumerate(groups) if g in valid_groups]
        return [i for i, g in enumerate(groups) if g not in valid_groups], valid


class DateSplitter:
    """The latest items by date validate, as production will see data from after training.

    date: a column name or a function of the item; valid_pct of the items (by date order)
    go to validation; ties at the cut go to validation too, so no date is on both sides.
    """

    def __init__(self, date, valid_pct=0.2):
        self.date, self.valid_pct = date, valid_pct

    def __call__(self, items):
        _check_pct(self.valid_pct)
        values = [_value(item, self.date) for item in items]
        dates = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce")
        if dates.isna().any():
            bad = np.flatnonzero(dates.isna().to_numpy())
            raise CentaurError(f"{len(bad)} item(s) have a missing or unreadable date (the first is "
                               f"{values[bad[0]]!r}); fix or drop them before a date split.")
        # valid_pct of the items by count, as RandomSplitter; at least one validates
        n_valid = max(1, int(round(self.valid_pct * len(dates))))
        cut = dates.sort_values().iloc[len(dates) - n_valid]
        valid = np.flatnonzero((dates >= cut).to_numpy()).tolist()
        train = np.flatnonzero((dates < cut).to_numpy()).tolist()
        if not train:
            raise CentaurError(f"every item is dated on or after {cut}, so nothing is left to train on; "
                               "a date split needs items from more than one date.")
        return train, valid
