"""Tables as tensors: time, group or random splits, and loaders that batch by index."""
import math
import numbers

import numpy as np
import pandas as pd
import torch

from ..core.errors import CentaurError, check_choice
from ..core.log import warn
from ..core.words import named
from .blocks import CategoryBlock, MultiCategoryBlock, RegressionBlock
from .dates import check_column, parse_dates
from .processors import TabularProcessor, _keys, check_columns

Y_KINDS = ["regression", "single_label", "multi_label"]


def _check_pct(valid_pct):
    number = isinstance(valid_pct, numbers.Real) and not isinstance(valid_pct, bool)
    if not number or not 0 < valid_pct < 1:
        raise CentaurError(f"valid_pct must be between 0 and 1 (a fraction like 0.2), got {valid_pct!r}.")


def split_table(df, valid_pct=0.2, seed=None, date=None, group=None):
    """(train_idx, valid_idx): row positions as sorted int64 arrays.

    date: the latest valid_pct of rows validate, and no date is on both sides (rows on the
    cut-off date validate, so validation may be a little larger) - the way a model is used,
    predicting the future from the past. Rows with a missing date are left out, with a warning.
    group: whole groups (e.g. customers) validate, so no group is on both sides.
    Neither: a seeded random valid_pct of the rows.

    >>> df = pd.DataFrame({"Date": ["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-03"]})
    >>> split_table(df, 0.5, date="Date")  # half is 2 rows; the tie on 01-02 validates too
    (array([0]), array([1, 2, 3]))
    """
    _check_pct(valid_pct)
    n = len(df)
    if date is not None and group is not None:
        raise CentaurError(f"give date={date!r} or group={group!r}, not both: a split is by time or by group.")
    if date is not None:
        check_column(df, date, "date column")
        values = parse_dates(df[date], date).to_numpy()
        known = ~pd.isna(values)
        if not known.all():
            warn(f"{int((~known).sum())} row(s) with no {date!r} are left out of both training and validation.")
        rows = np.flatnonzero(known)
        if len(rows) == 0:
            raise CentaurError(f"date column {date!r} has no dates at all; nothing to split by time.")
        order = np.sort(values[rows])
        n_valid = max(1, int(round(valid_pct * len(rows))))
        cutoff = order[len(rows) - n_valid]
        is_valid = values[rows] >= cutoff  # ties with the cut-off date validate: no date on both sides
        train, valid = rows[~is_valid], rows[is_valid]
        how = f"there are too few distinct dates in {date!r} to put the latest {valid_pct:.0%} of rows in validation"
    elif group is not None:
        check_column(df, group, "group column")
        codes, uniques = pd.factorize(df[group], use_na_sentinel=False)  # missing is a group of its own
        sizes = np.bincount(codes, minlength=len(uniques))  # (G,) rows per group
        perm = np.random.default_rng(seed).permutation(len(uniques))
        before = np.cumsum(sizes[perm]) - sizes[perm]  # rows already taken before each group in perm order
        valid_groups = perm[before < valid_pct * n]  # take groups until valid_pct of rows validate
        is_valid = np.isin(codes, valid_groups)
        train, valid = np.flatnonzero(~is_valid), np.flatnonzero(is_valid)
        how = f"{group!r} has too few groups ({len(uniques)}) to split by group"
    else:
        if _date_like_columns(df):
            warn(f"splitting randomly although the table has date column(s) {_date_like_columns(df)}: validation "
                 "rows then come from the same dates as training, which overstates accuracy on later dates. "
                 "Validate on the latest ones instead (date=COLUMN; at the command line --date COLUMN).")
        perm = np.random.default_rng(seed).permutation(n)
        cut = int(round(valid_pct * n))
        train, valid = np.sort(perm[cut:]), np.sort(perm[:cut])
        how = f"the table has {n} row(s), too few to split"
    if len(train) == 0 or len(valid) == 0:
        raise CentaurError(f"this split leaves {len(train)} training and {len(valid)} validation rows: {how}. "
                           "Use more rows or another validation fraction (--valid-pct, or --valid-last with a date; "
                           "from Python valid_pct).")
    return train.astype(np.int64), valid.astype(np.int64)


def _date_like_columns(df):
    return [str(c) for c in df.columns if pd.api.types.is_datetime64_any_dtype(df[c])
            or str(c).lower().endswith("date")]


class TabularItems:
    """What the Learner and export read about one side of the split: its size, targets and source."""

    def __init__(self, ys, source, train):
        self.ys, self.source, self.train, self.skipped = ys, source, train, []

    def __len__(self):
        return len(self.ys)


class TabularLoader:
    """Batches ((x_cat, x_cont), y) cut from whole-table tensors by index: no per-row Python.

    x_cat: int64 (N, n_cat), x_cont: float32 (N, n_cont), y: (N,) or (N, k). Shuffled order
    comes from a seeded torch.Generator, or from torch's global one (set_seed decides) if
    seed is None.

    >>> dl = TabularLoader(torch.zeros(5, 2, dtype=torch.long), torch.zeros(5, 3), torch.zeros(5), bs=2)
    >>> len(dl), [x[0].shape for x, y in dl]
    (3, [torch.Size([2, 2]), torch.Size([2, 2]), torch.Size([1, 2])])
    """

    def __init__(self, x_cat, x_cont, y, bs=1024, shuffle=False, drop_last=False, seed=None, train=False,
                 dataset=None):
        if not (len(x_cat) == len(x_cont) == len(y)):
            raise CentaurError(f"x_cat, x_cont and y must have one row per item; got {len(x_cat)}, {len(x_cont)} "
                               f"and {len(y)} rows.")
        if not isinstance(bs, numbers.Integral) or bs < 1:
            raise CentaurError(f"bs (batch size) must be a whole number of at least 1, got {bs!r}.")
        self.x_cat, self.x_cont, self.y = x_cat, x_cont, y
        self.bs, self.shuffle, self.drop_last = int(bs), shuffle, drop_last
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.dataset = dataset if dataset is not None else TabularItems(range(len(y)), "tensors", train)
        self.rank, self.world_size, self.split_batches = 0, 1, True  # see shard()

    @property
    def n(self):
        return len(self.y)

    def __len__(self):
        if self.world_size > 1:
            return len(self._batch_sampler())
        return self.n // self.bs if self.drop_last else math.ceil(self.n / self.bs)

    def shard(self, rank, world_size, split_batches=True):
        """A copy that yields only process `rank`'s share of each epoch (see data/shard.py).

        split_batches=True (training): each global batch is split among the processes; False
        (validation): a contiguous share of the rows. The copy shares the generator.

        >>> dl = TabularLoader(torch.zeros(4, 1, dtype=torch.long), torch.zeros(4, 1), torch.arange(4.0), bs=4)
        >>> [y.tolist() for _, y in dl.shard(1, 2)]
        [[2.0, 3.0]]
        """
        import copy
        dl = copy.copy(self)
        dl.rank, dl.world_size, dl.split_batches = rank, world_size, split_batches
        return dl

    def _batch_sampler(self):
        from .shard import ShardedBatchSampler
        # the same draw a single process makes, so every process shuffles alike
        order = (lambda: torch.randperm(self.n, generator=self.generator).tolist()) if self.shuffle else None
        return ShardedBatchSampler(self.n, self.bs, self.rank, self.world_size, order, self.drop_last,
                                   self.split_batches)

    def __iter__(self):
        if self.world_size > 1:
            for rows in self._batch_sampler():
                idx = torch.tensor(rows, dtype=torch.long)  # (B / world_size,)
                yield (self.x_cat.index_select(0, idx), self.x_cont.index_select(0, idx)), self.y.index_select(0, idx)
        elif self.shuffle:
            order = torch.randperm(self.n, generator=self.generator)  # (N,)
            for i in range(len(self)):
                idx = order[i * self.bs:(i + 1) * self.bs]  # (B,)
                yield (self.x_cat.index_select(0, idx), self.x_cont.index_select(0, idx)), self.y.index_select(0, idx)
        else:  # in order: slices are views, nothing is copied
            for i in range(len(self)):
                s = slice(i * self.bs, (i + 1) * self.bs)
                yield (self.x_cat[s], self.x_cont[s]), self.y[s]

    def one_batch(self):
        return next(iter(self))


def _check_rows(idx, n, name):
    idx = np.asarray(idx)
    if idx.dtype.kind == "b":
        if len(idx) != n:
            raise CentaurError(f"{name} is a mask of {len(idx)} values for a table of {n} rows.")
        return np.flatnonzero(idx)
    if idx.ndim != 1 or (len(idx) and idx.dtype.kind not in "iu"):
        raise CentaurError(f"{name} must be a 1-d array of row positions (from split_table), got {idx.dtype} "
                           f"with shape {idx.shape}.")
    idx = idx.astype(np.int64)
    if len(idx) and (idx.min() < 0 or idx.max() >= n):
        raise CentaurError(f"{name} has row positions outside 0..{n - 1} (min {idx.min()}, max {idx.max()}); "
                           "give positions (0-based), not index labels.")
    return idx


def _regression_y(targets, y_names):
    """float32 (N, k) regression targets; CentaurError naming text values."""
    cols = []
    for name in y_names:
        series = targets[name]
        values = pd.to_numeric(series, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        bad = np.isnan(values) & ~series.isna().to_numpy() | np.isinf(values)
        if bad.any():
            examples = pd.unique(series.to_numpy()[bad])[:5].tolist()
            raise CentaurError(f"regression target {name!r} has {int(bad.sum())} value(s) that are not finite "
                               f"numbers, e.g. {examples}; fix or blank them, or predict classes instead (at the command line "
                               "--task classification; from Python y_kind='single_label').")
        cols.append(values)
    return np.stack(cols, axis=1).astype(np.float32)  # (N, k)


def _label_codes(series, vocab):
    """int64 class index per row (-1 for a label not in vocab), mapped through distinct values only."""
    codes, uniques = pd.factorize(series)  # (N,), (U,)
    lookup = pd.Index(vocab).get_indexer(_keys(uniques))  # (U,)
    return lookup[codes]


def _multi_hot(series, block):
    """float32 (N, k) multi-hot targets and the labels not in block.vocab."""
    index = {v: i for i, v in enumerate(block.vocab)}
    try:  # strings: split each distinct value once, then gather rows
        codes, uniques = pd.factorize(series, use_na_sentinel=False)
        per_value = [block._split(u) for u in uniques]
    except TypeError:  # lists are unhashable: split row by row
        codes, per_value = np.arange(len(series)), [block._split(v) for v in series]
    table = np.zeros((len(per_value), len(block.vocab)), dtype=np.float32)  # (U, k)
    unknown = set()
    for u, labels in enumerate(per_value):
        for label in labels:
            if label in index:
                table[u, index[label]] = 1.0
            else:
                unknown.add(label)
    return table[codes], sorted(unknown)


MIN_CLASS_ROWS = 10  # fewer training rows of a class, and the model rarely learns to predict it
# more classes than 1 per MAX_CLASS_SHARE training rows (and more than MANY_CLASSES: 12 classes in 50 rows is
# just a small table), and the target looks like a number or an ID
MAX_CLASS_SHARE, MANY_CLASSES = 5, 20


def _check_class_counts(target, vocab, y_train):
    """Warn when a classification target has classes too many for its rows (a number or an identifier
    read as classes: a price with 1,000 values gave accuracy 0.016), or classes with too few rows to
    learn (3 'fraud' rows: trained silently, and never predicted)."""
    n = len(y_train)
    if len(vocab) > MANY_CLASSES and len(vocab) * MAX_CLASS_SHARE > n:
        shown = ", ".join(map(repr, vocab[:5])) + (", ..." if len(vocab) > 5 else "")
        warn(f"target {target!r} has {len(vocab):,} classes ({shown}) for {n:,} training rows, fewer than "
             f"{MAX_CLASS_SHARE} rows per class: it looks like a number or an identifier, not a class. To predict a "
             "number, use y_kind='regression' (at the command line --task regression; from train_tabular "
             "task='regression'); an identifier cannot be predicted.")
        return  # every class has few rows then; listing them says nothing more
    counts = np.bincount(y_train[y_train >= 0], minlength=len(vocab))  # (num_classes,) training rows per class
    few = [(vocab[i], int(counts[i])) for i in np.argsort(counts, kind="stable") if counts[i] < MIN_CLASS_ROWS]
    if few:
        shown = ", ".join(f"{c!r} ({k})" for c, k in few[:10]) + (f" and {len(few) - 10} more" if len(few) > 10 else "")
        warn(f"class(es) of {target!r} with fewer than {MIN_CLASS_ROWS} training rows: {shown}. A model rarely "
             "learns to predict a class from so few examples, and the scores say little about it; gather more "
             "rows of it, or merge it into a related class.")


# Batch size when none is given. A batch of 1024 suits a million rows, but on a table of a few
# thousand it leaves about 3 optimizer steps per epoch: on a 3,000-row bookings table (tests/
# tabular_tables.py) 5 epochs at 1024 ended worse than predicting the mean (RMSE 47.2 against
# 43.6) while 64 reached 10.8. So the batch is the power of two that gives at least MIN_STEPS
# steps per epoch, between fastai's default of 64 and 1024: 2,400 training rows get 64 (37
# steps), hotel_rates' 12,310 get 256 (48 steps; docs/benchmarks_tabular.md measured RMSE 38.5
# there against 44.8 at 1024, 0.6 s against 0.4 s for 5 epochs), and from 32,768 rows on (the
# Rossmann-shaped speed benchmark's 990,000 included) the batch stays 1024, as fast as before.
MIN_STEPS, MIN_BS, MAX_BS = 32, 64, 1024


def choose_batch_size(n_train, world=1):
    """The batch size for n_train training rows when none is given (from_df, train_tabular).

    The largest power of two with at least MIN_STEPS batches per epoch, kept between 64 and
    1024, and rounded up to a multiple of `world` (processes under torchrun split each batch).

    >>> choose_batch_size(2_400), choose_batch_size(12_310), choose_batch_size(990_000)
    (64, 256, 1024)
    """
    bs = MIN_BS
    while bs * 2 <= MAX_BS and n_train / (bs * 2) >= MIN_STEPS:
        bs *= 2
    return -(-bs // world) * world


def rows_frame(rows):
    """Rows given directly (a dict, a list of dicts, a pandas Series: one row) as a DataFrame; a
    DataFrame or anything else (a file to read) is returned as it is.

    >>> rows_frame({"shop": "east", "size": 4.5})
      shop  size
    0  east   4.5
    """
    if isinstance(rows, dict):
        return pd.DataFrame([rows])
    if isinstance(rows, pd.Series):
        return rows.to_frame().T.infer_objects()  # one row, its numbers numbers again
    if isinstance(rows, (list, tuple)) and rows and all(isinstance(r, dict) for r in rows):
        return pd.DataFrame(list(rows))
    return rows


class TabularDataLoaders:
    """Training and validation loaders over a processed table, and what the model needs to know.

    >>> dls = TabularDataLoaders.from_df(df, "Sales", ["Store"], ["Customers"], "regression",
    ...                                  *split_table(df, date="Date"))  # doctest: +SKIP
    >>> (x_cat, x_cont), y = dls.train.one_batch()  # doctest: +SKIP
    """

    def __init__(self, train, valid, y_block, processor, train_ds, valid_ds, bs, y_names):
        self.train, self.valid, self.y_block, self.processor = train, valid, y_block, processor
        self.train_ds, self.valid_ds, self.bs, self.y_names = train_ds, valid_ds, bs, y_names
        self.item_tfms = []

    def __repr__(self):
        """'<TabularDataLoaders: 800 training and 200 validation rows, bs 64; target 'Busy', 2 classes (busy,
        quiet); 3 categorical and 2 continuous columns>'"""
        kind = self.y_block.kind
        vocab = self.y_block.vocab if kind != "regression" else None
        target = ", ".join(map(repr, self.y_names))
        if vocab:
            what = named("label", vocab) if kind == "multi_label" else named("class", vocab, plural_form="classes")
        else:
            what = "regression"
        return (f"<TabularDataLoaders: {len(self.train_ds):,} training and {len(self.valid_ds):,} validation rows, "
                f"bs {self.bs}; target {target}, {what}; {len(self.cat_names)} categorical and "
                f"{len(self.cont_names)} continuous columns>")

    @property
    def vocab(self):
        return self.y_block.vocab

    @property
    def cat_names(self):
        return self.processor.cat_names_

    @property
    def cont_names(self):
        return self.processor.cont_names_

    @property
    def cardinalities(self):
        return self.processor.cardinalities_

    @classmethod
    def from_df(cls, df, y_name, cat_names, cont_names, y_kind, train_idx, valid_idx, bs=None, seed=None,
                source=None, label_delim=" "):
        """Fit the processor and the target's encoding on the training rows, and build both loaders.

        y_name: the target column (a list of columns for several regression targets).
        y_kind: 'regression' (float32 y (N, k)), 'single_label' (int64 y (N,)) or
        'multi_label' (float32 multi-hot y (N, num_classes), labels split on label_delim).
        train_idx, valid_idx: row positions, e.g. from split_table. Rows with a missing target
        are dropped with a warning (multi-label: a missing cell means no labels). bs: None chooses
        one from the number of training rows (choose_batch_size).
        """
        check_choice("y_kind", y_kind, Y_KINDS)
        y_names = [y_name] if isinstance(y_name, str) or not isinstance(y_name, (list, tuple)) else list(y_name)
        if len(y_names) != 1 and y_kind != "regression":
            raise CentaurError(f"{y_kind} takes one target column, got {y_names}; several columns are for "
                               "y_kind='regression'.")
        check_columns(df, y_names + list(cat_names) + list(cont_names))  # first: a name held twice fails here
        leaked = [c for c in y_names if c in list(cat_names) + list(cont_names)]
        if leaked:
            raise CentaurError(f"target {leaked} is also listed as an input column; the model would see the answer. "
                               "Leave it out of the input columns (--cat and --cont; from Python cat_names and cont_names).")
        train_idx = _check_rows(train_idx, len(df), "train_idx")
        valid_idx = _check_rows(valid_idx, len(df), "valid_idx")
        in_train = np.zeros(len(df), dtype=bool)
        in_train[train_idx] = True
        shared = np.unique(valid_idx[in_train[valid_idx]])
        if len(shared):
            raise CentaurError(f"train_idx and valid_idx share {len(shared)} row(s) (e.g. {shared[:5].tolist()}); a "
                               "row that trains cannot fairly validate. Use split_table.")
        if len(train_idx) == 0 or len(valid_idx) == 0:
            raise CentaurError(f"got {len(train_idx)} training and {len(valid_idx)} validation rows; both need rows.")

        if y_kind != "multi_label":  # a multi-label cell left empty means "none of the labels"
            missing = df[y_names].isna().any(axis=1).to_numpy()
            n_train, n_valid = int(missing[train_idx].sum()), int(missing[valid_idx].sum())
            if n_train or n_valid:  # rows outside both sides (left out before the split) are not news
                warn(f"dropped {n_train} training and {n_valid} validation row(s) with no {y_names[0]!r} target.")
                train_idx, valid_idx = train_idx[~missing[train_idx]], valid_idx[~missing[valid_idx]]
        train_df, valid_df = df.iloc[train_idx], df.iloc[valid_idx]

        if y_kind == "regression":
            y_block = RegressionBlock(n_out=len(y_names))
            y_train, y_valid = _regression_y(train_df, y_names), _regression_y(valid_df, y_names)
            constant = [n for n, col in zip(y_names, y_train.T) if len(col) and col.min() == col.max()]
            if constant:
                raise CentaurError(f"target {constant[0]!r} has one value ({y_train[0, y_names.index(constant[0])]:g}) "
                                   "in every training row; there is nothing to learn. Check the column and the split.")
        elif y_kind == "single_label":
            target = y_names[0]
            labels = pd.unique(np.asarray(_keys(pd.unique(train_df[target].to_numpy())), dtype=object))
            if len(labels) < 2:
                raise CentaurError(f"target {target!r} has one value ({labels[0] if len(labels) else None!r}) in "
                                   "every training row; a classifier needs at least two classes.")
            y_block = CategoryBlock()
            y_block.setup(labels.tolist())
            y_train = _label_codes(train_df[target], y_block.vocab)
            y_valid = _label_codes(valid_df[target], y_block.vocab)
            _check_class_counts(target, y_block.vocab, y_train)
            unknown = y_valid < 0
            if unknown.any():
                names = pd.unique(valid_df[target].to_numpy()[unknown])[:5].tolist()
                warn(f"dropped {int(unknown.sum())} validation row(s) whose {target!r} never occurs in training "
                     f"({names}); the model cannot predict a class it never saw.")
                valid_idx, valid_df, y_valid = valid_idx[~unknown], valid_df[~unknown], y_valid[~unknown]
        else:
            target = y_names[0]
            y_block = MultiCategoryBlock(label_delim=label_delim)
            try:
                y_block.setup(pd.unique(train_df[target].to_numpy()).tolist())
            except TypeError:  # lists are unhashable: set up from every row
                y_block.setup(train_df[target].tolist())
            if len(y_block.vocab) < 2:
                raise CentaurError(f"target {target!r} has {len(y_block.vocab)} distinct label(s) in training "
                                   f"({y_block.vocab}); multi-label needs at least two. Check "
                                   f"label_delim={label_delim!r}.")
            y_train, _ = _multi_hot(train_df[target], y_block)
            y_valid, unknown = _multi_hot(valid_df[target], y_block)
            if unknown:
                warn(f"validation label(s) never seen in training are ignored: {unknown[:5]}"
                     + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "") + ".")

        if len(train_idx) == 0 or len(valid_idx) == 0:
            raise CentaurError(f"no {'training' if len(train_idx) == 0 else 'validation'} rows are left once rows "
                               f"without a usable {y_names[0]!r} target are dropped (see the warnings above); "
                               "split otherwise (another date, group or validation fraction) or check the target.")
        processor = TabularProcessor(cat_names, cont_names).fit(train_df)
        x_train, x_valid = processor.transform(train_df), processor.transform(valid_df)
        unseen = {c: n for c, n in processor.unseen_.items() if n}
        if unseen:
            warn(f"validation rows have categories never seen in training; the model treats them as unknown, the "
                 f"category it keeps for missing and unseen values: {unseen}.")
        source = source if source is not None else f"DataFrame ({len(df)} rows)"
        train_ds = TabularItems(train_df[y_names[0]].to_numpy() if len(y_names) == 1 else
                                train_df[y_names].to_numpy(), source, train=True)
        valid_ds = TabularItems(valid_df[y_names[0]].to_numpy() if len(y_names) == 1 else
                                valid_df[y_names].to_numpy(), source, train=False)

        def tensors(x, y):
            return torch.from_numpy(x[0]), torch.from_numpy(x[1]), torch.from_numpy(np.ascontiguousarray(y))

        bs = choose_batch_size(len(train_idx)) if bs is None else bs
        # drop_last keeps a lone last row from meeting batch norm alone (a batch of 1 cannot be normalized)
        train = TabularLoader(*tensors(x_train, y_train), bs=bs, shuffle=True, drop_last=len(train_idx) > bs,
                              seed=seed, dataset=train_ds)
        valid = TabularLoader(*tensors(x_valid, y_valid), bs=bs, shuffle=False, dataset=valid_ds)
        dls = cls(train, valid, y_block, processor, train_ds, valid_ds, bs, y_names)
        dls.train_idx, dls.valid_idx = train_idx, valid_idx  # row positions after the drops above (split.json)
        return dls

    def show_batch(self, max_n=10, train=True):
        """The first max_n rows of a batch as a DataFrame, as the model sees them but readable:
        categories by their values ('unknown' for a missing value), continuous columns back on
        their own scale (missing ones show the training value they were filled with, and their
        <col>_na flag is True), then the target. A notebook shows it as a table.

        The batch is drawn without moving the training shuffle on: showing a batch before fit
        leaves the run as it would have been.

        >>> dls.show_batch(3)  # doctest: +SKIP
          StoreType  Promo  CompetitionDistance  Sales
        0         a      1               1270.0  5263.0
        """
        dl = self.train if train else self.valid
        states = (torch.get_rng_state(), dl.generator.get_state() if dl.generator is not None else None)
        try:
            (x_cat, x_cont), y = dl.one_batch()
        finally:
            torch.set_rng_state(states[0])
            if states[1] is not None:
                dl.generator.set_state(states[1])
        x_cat, x_cont, y = x_cat[:max_n].numpy(), x_cont[:max_n].numpy().astype(np.float64), y[:max_n].numpy()
        proc, columns = self.processor, {}
        flags = set(proc.fill_missing_.flag_names)
        for j, col in enumerate(self.cat_names):
            values = np.asarray(proc.categorify_.classes_[col], dtype=object)[x_cat[:, j]]
            if col in flags:  # '0' or '1' from FillMissing: was the value missing?
                columns[col] = values == "1"
            else:
                values[x_cat[:, j] == 0] = "unknown"  # the category kept for missing or never-seen values
                columns[col] = values
        for j, col in enumerate(self.cont_names):
            # float32, as the model holds them: no float64 noise such as 533.999999 for 534
            columns[col] = (x_cont[:, j] * proc.normalize_.stds_[col] + proc.normalize_.means_[col]).astype(np.float32)
        kind = self.y_block.kind
        if kind == "single_label":
            columns[self.y_names[0]] = np.asarray(self.vocab, dtype=object)[y]
        elif kind == "multi_label":
            delim = self.y_block.label_delim or " "
            columns[self.y_names[0]] = [delim.join(self.y_block.decode(row)) for row in y]
        else:
            for j, name in enumerate(self.y_names):
                columns[name] = y[:, j] if y.ndim == 2 else y
        return pd.DataFrame(columns)

    def test_tensors(self, df):
        """(x_cat int64 (N, n_cat), x_cont float32 (N, n_cont)) for new rows, processed as training was.

        Unseen categories become unknown (code 0, the category kept for missing values and values not
        seen in training); processor.unseen_ counts them per column.
        """
        self.processor.check_columns(df)
        x_cat, x_cont = self.processor.transform(df)
        return torch.from_numpy(x_cat), torch.from_numpy(x_cont)

    def test_dl(self, df, bs=None):
        """A loader over new rows (targets are zeros), for Learner.get_preds."""
        x_cat, x_cont = self.test_tensors(df)
        return TabularLoader(x_cat, x_cont, torch.zeros(len(df)), bs=bs or self.bs,
                             dataset=TabularItems(np.zeros(len(df)), "test rows", train=False))
