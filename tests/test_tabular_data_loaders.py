"""Table splits, whole-table tensor loaders and TabularDataLoaders.from_df."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from centaur.core.errors import CentaurError
from centaur.data.tabular import TabularDataLoaders, TabularLoader, split_table


def sales_table(n=20_000, seed=0):
    """A Rossmann-shaped table: store, day, promo, some missing competition distances."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "Store": rng.integers(0, 300, n),
        "Date": (pd.Timestamp("2015-01-01") + pd.to_timedelta(rng.integers(0, 400, n), unit="D")).astype(str),
        "Promo": rng.integers(0, 2, n),
        "StoreType": rng.choice(list("abcd"), n),
        "CompetitionDistance": rng.exponential(2000, n),
        "Customers": rng.poisson(500, n).astype(float),
    })
    df.loc[rng.random(n) < 0.1, "CompetitionDistance"] = np.nan
    df["Sales"] = 8 * df.Customers + 500 * df.Promo + rng.normal(0, 100, n)
    df["Busy"] = np.where(df.Sales > df.Sales.median(), "busy", "quiet")
    df["Tags"] = np.where(df.Promo == 1, "promo", "") + np.where(df.StoreType == "a", " typeA", "")
    return df


@pytest.mark.parametrize("seed", range(6))
def test_date_split_never_trains_on_a_later_date(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    dates = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, int(rng.integers(3, 60)), n), unit="D")
    df = pd.DataFrame({"day": dates, "x": rng.normal(size=n)})
    pct = float(rng.uniform(0.05, 0.5))
    train, valid = split_table(df, pct, date="day")
    assert len(np.intersect1d(train, valid)) == 0 and len(train) + len(valid) == n
    assert df.day.iloc[train].max() < df.day.iloc[valid].min()  # no date on both sides
    assert len(valid) >= round(pct * n)  # ties with the cut-off go to validation


def test_group_split_is_disjoint_and_random_split_seeded():
    df = sales_table(2000)
    train, valid = split_table(df, 0.25, group="Store", seed=1)
    assert not set(df.Store.iloc[train]) & set(df.Store.iloc[valid])
    assert 0.2 < len(valid) / len(df) < 0.3
    a, b = split_table(df, 0.2, seed=3, date=None), split_table(df, 0.2, seed=3)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(split_table(df, 0.2, seed=4)[1], a[1]) and len(a[1]) == 400
    with pytest.raises(CentaurError, match="Did you mean: 'Store'"):
        split_table(df, group="store")
    with pytest.raises(CentaurError, match="between 0 and 1"):
        split_table(df, 20)


def test_random_split_of_dated_table_warns(capsys):
    split_table(sales_table(100), seed=0)
    assert "latest" in capsys.readouterr().err


def test_loader_visits_every_row_once_and_is_reproducible():
    n = 103
    x_cat = torch.arange(n).view(-1, 1).repeat(1, 2)  # (N, 2) row number in each column
    x_cont = torch.arange(n, dtype=torch.float32).view(-1, 1)  # (N, 1)
    y = torch.arange(n, dtype=torch.float32)
    dl = TabularLoader(x_cat, x_cont, y, bs=10, shuffle=True, seed=0, train=True)
    assert len(dl) == 11 and dl.dataset.train
    seen = torch.cat([xc[:, 0] for (xc, _), _ in dl])
    assert sorted(seen.tolist()) == list(range(n)) and seen.tolist() != list(range(n))
    for (xc, xn), yb in dl:  # rows stay aligned across the three tensors
        assert torch.equal(xc[:, 1].float(), xn[:, 0]) and torch.equal(xn[:, 0], yb)
    first = [yb for _, yb in TabularLoader(x_cat, x_cont, y, bs=10, shuffle=True, seed=5)]
    again = [yb for _, yb in TabularLoader(x_cat, x_cont, y, bs=10, shuffle=True, seed=5)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    dropped = TabularLoader(x_cat, x_cont, y, bs=10, shuffle=True, drop_last=True)
    assert len(dropped) == 10 and all(len(yb) == 10 for _, yb in dropped)
    in_order = torch.cat([yb for _, yb in TabularLoader(x_cat, x_cont, y, bs=10)])
    assert torch.equal(in_order, y)


def test_from_df_regression_shapes_and_state():
    df = sales_table()
    train, valid = split_table(df, 0.2, date="Date")
    dls = TabularDataLoaders.from_df(df, "Sales", ["Store", "Promo", "StoreType"],
                                     ["CompetitionDistance", "Customers"], "regression", train, valid, bs=512, seed=0)
    (x_cat, x_cont), y = dls.train.one_batch()
    assert x_cat.shape == (512, 4) and x_cat.dtype == torch.int64  # + CompetitionDistance_na
    assert x_cont.shape == (512, 2) and x_cont.dtype == torch.float32
    assert y.shape == (512, 1) and y.dtype == torch.float32
    assert dls.train.dataset.train and not dls.valid.dataset.train
    assert len(dls.train_ds) == len(train) and len(dls.valid_ds) == len(valid) and dls.train_ds.skipped == []
    assert dls.cardinalities == [1 + df.Store.iloc[train].nunique(), 3, 5, 3]
    assert dls.vocab is None and dls.y_block.kind == "regression" and dls.item_tfms == []
    assert sum(len(yb) for _, yb in dls.valid) == len(valid) and len(dls.train) == len(train) // 512
    # validation rows are processed with training statistics
    fill = dls.processor.fill_missing_.fill_values_["CompetitionDistance"]
    assert fill == pytest.approx(df.CompetitionDistance.iloc[train].median())
    json.dumps(dls.processor.to_dict())
    x_cat, x_cont = dls.test_tensors(df.iloc[:5].drop(columns=["Sales"]))
    assert torch.equal(x_cat, torch.from_numpy(dls.processor.transform(df.iloc[:5])[0]))
    with pytest.raises(CentaurError, match="'Customers'"):
        dls.test_tensors(df.drop(columns=["Customers"]))


def test_from_df_classification_targets():
    df = sales_table(3000)
    train, valid = split_table(df, 0.2, seed=0)
    dls = TabularDataLoaders.from_df(df, "Busy", ["StoreType"], ["Customers"], "single_label", train, valid)
    assert dls.vocab == ["busy", "quiet"]
    y = torch.cat([yb for _, yb in dls.valid])
    assert y.dtype == torch.int64 and torch.equal(y, torch.tensor((df.Busy.iloc[valid] == "quiet").to_numpy()).long())
    dls = TabularDataLoaders.from_df(df, "Tags", ["StoreType"], ["Customers"], "multi_label", train, valid)
    assert dls.vocab == ["promo", "typeA"]
    _, y = dls.valid.one_batch()
    expected = np.stack([df.Promo.iloc[valid[:len(y)]] == 1, df.StoreType.iloc[valid[:len(y)]] == "a"], 1)
    np.testing.assert_array_equal(y.numpy(), expected.astype(np.float32))


def test_from_df_bad_targets(capsys):
    df = sales_table(500)
    train, valid = split_table(df, 0.2, seed=0)
    args = (["StoreType"], ["Customers"])
    with pytest.raises(CentaurError, match="not finite numbers.*'busy'"):
        TabularDataLoaders.from_df(df, "Busy", *args, "regression", train, valid)
    with pytest.raises(CentaurError, match="one value"):
        TabularDataLoaders.from_df(df.assign(Sales=1.0), "Sales", *args, "regression", train, valid)
    with pytest.raises(CentaurError, match="Did you mean: 'Sales'"):
        TabularDataLoaders.from_df(df, "sales", *args, "regression", train, valid)
    with pytest.raises(CentaurError, match="Did you mean: 'regression'"):
        TabularDataLoaders.from_df(df, "Sales", *args, "regresion", train, valid)
    with pytest.raises(CentaurError, match="share"):
        TabularDataLoaders.from_df(df, "Sales", *args, "regression", train, np.append(valid, train[0]))
    holes = df.assign(Sales=df.Sales.where(np.arange(len(df)) % 50 != 0))
    dls = TabularDataLoaders.from_df(holes, "Sales", *args, "regression", train, valid)
    assert "dropped" in capsys.readouterr().err and len(dls.train_ds) + len(dls.valid_ds) == len(df) - 10


def test_show_batch_is_a_readable_table_and_leaves_the_shuffle_alone(capsys):
    df = sales_table(2000)
    df.loc[df.index[:50], "StoreType"] = None
    train_idx, valid_idx = split_table(df, 0.2, seed=0)
    make = lambda: TabularDataLoaders.from_df(df, "Busy", ["StoreType", "Promo"], ["CompetitionDistance", "Customers"],
                                              "single_label", train_idx, valid_idx, bs=64, seed=1)
    dls = make()
    shown = dls.show_batch(max_n=5)
    assert isinstance(shown, pd.DataFrame) and len(shown) == 5
    assert list(shown.columns) == ["StoreType", "Promo", "CompetitionDistance_na", "CompetitionDistance",
                                   "Customers", "Busy"]
    assert set(shown["StoreType"]) <= {"a", "b", "c", "d", "unknown"} and set(shown["Busy"]) <= {"busy", "quiet"}
    assert shown["CompetitionDistance_na"].dtype == bool
    # continuous columns back on their own scale: the validation rows, in order, are the table's
    valid = dls.show_batch(max_n=8, train=False)
    rows = df.iloc[dls.valid_idx[:8]]
    np.testing.assert_allclose(valid["Customers"], rows["Customers"], rtol=1e-5)
    assert valid["Busy"].tolist() == rows["Busy"].tolist()
    assert valid["StoreType"].tolist() == rows["StoreType"].fillna("unknown").tolist()
    known = ~rows["CompetitionDistance"].isna().to_numpy()
    np.testing.assert_allclose(valid["CompetitionDistance"][known], rows["CompetitionDistance"][known], rtol=1e-4)
    assert (valid["CompetitionDistance_na"].to_numpy() == ~known).all()
    # showing a batch does not move the seeded shuffle on: training sees what it would have seen
    _, y_after = dls.train.one_batch()
    _, y_fresh = make().train.one_batch()
    assert torch.equal(y_after, y_fresh)


def test_show_batch_regression_and_repr():
    df = sales_table(2000)
    train_idx, valid_idx = split_table(df, 0.2, seed=0)
    dls = TabularDataLoaders.from_df(df, "Sales", ["StoreType"], ["Customers"], "regression", train_idx, valid_idx,
                                     bs=100)
    shown = dls.show_batch(3, train=False)
    np.testing.assert_allclose(shown["Sales"], df["Sales"].iloc[dls.valid_idx[:3]], rtol=1e-5)
    assert repr(dls) == ("<TabularDataLoaders: 1,600 training and 400 validation rows, bs 100; target 'Sales', "
                         "regression; 1 categorical and 1 continuous columns>")


def test_unseen_categories_are_called_unknown_when_training(capsys):
    df = sales_table(400)
    df["Shop"] = [f"s{i}" for i in range(len(df))]  # every validation shop is new
    train_idx, valid_idx = split_table(df, 0.2, seed=0)
    TabularDataLoaders.from_df(df, "Sales", ["Shop"], ["Customers"], "regression", train_idx, valid_idx)
    err = capsys.readouterr().err
    assert "treats them as unknown" in err and "#na#" not in err
