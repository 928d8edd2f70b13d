"""Splitters: which items train and which validate. Each returns (train_idx, valid_idx)."""
from pathlib import Path

import numpy as np
import pandas as pd

from ..core.errors import CentaurError


def _check_pct(valid_pct):
    if not 0 < valid_pct < 1:
        raise CentaurError(f"valid_pct must be between 0 and 1 (a fraction like 0.2), got {valid_pct!r}.")


def _value(item, key):
    return key(item) if callable(key) else item[key]


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
    """Split by folder name anywhere in the path: data/train/cat/1.jpg trains, data/valid/... validates."""

    def __init__(self, train_name="train", valid_name="valid"):
        self.train_name, self.valid_name = train_name, valid_name

    def __call__(self, items):
        train, valid = [], []
        for i, item in enumerate(items):
            parts = Path(item).parts
            if self.valid_name in parts:
                valid.append(i)
            elif self.train_name in parts:
                train.append(i)
        if not valid:
            raise CentaurError(f"no item is inside a {self.valid_name!r} folder; make one or use a random split.")
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
        dates = pd.to_datetime(pd.Series([_value(item, self.date) for item in items]), errors="coerce")
        if dates.isna().any():
            bad = int(dates.isna().sum())
            raise CentaurError(f"{bad} items have a missing or unreadable date; fix or drop them before a date split.")
        cut = dates.sort_values().iloc[int(len(dates) * (1 - self.valid_pct))]
        valid = np.flatnonzero((dates >= cut).to_numpy()).tolist()
        train = np.flatnonzero((dates < cut).to_numpy()).tolist()
        return train, valid
