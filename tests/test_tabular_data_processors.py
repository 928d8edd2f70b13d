"""Tabular processors: fitted on training rows only, state round-trips through JSON."""
import json

import numpy as np
import pandas as pd
import pytest

from centaur.core.errors import CentaurError
from centaur.data.processors import Categorify, FillMissing, Normalize, TabularProcessor


def table(n=200, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "shop": rng.choice(["north", "south", "east"], n),
        "size": rng.integers(1, 12, n),
        "price": rng.normal(10, 3, n),
        "visits": rng.poisson(5, n).astype(float),
    })
    df.loc[df.index[::7], "price"] = np.nan
    df.loc[df.index[::11], "shop"] = None
    return df


def test_categorify_unseen_and_missing_map_to_zero_and_are_counted():
    train = pd.DataFrame({"shop": ["b", "a", None, "a"], "n": [10, 2, 2, 2]})
    cat = Categorify().fit(train, ["shop", "n"])
    assert cat.classes_ == {"shop": ["#na#", "a", "b"], "n": ["#na#", "2", "10"]}  # numbers in numeric order
    codes = cat.transform(pd.DataFrame({"shop": ["a", "z", None, "z"], "n": [2.0, np.nan, 10.0, 7]}))
    assert codes.shop.tolist() == [1, 0, 0, 0] and codes.n.tolist() == [1, 0, 2, 0]
    assert codes.dtypes.tolist() == [np.int64, np.int64]
    assert cat.unseen_ == {"shop": 2, "n": 1}  # missing is not unseen; 2.0 and 2 are one category
    assert cat.transform(pd.DataFrame({"shop": ["b"], "n": ["10"]})).iloc[0].tolist() == [2, 2]  # text numbers too


def test_fill_missing_uses_training_median_and_flags():
    train = pd.DataFrame({"x": [1.0, 2.0, 100.0, np.nan], "y": [1.0, 2.0, 3.0, 4.0]})
    fill = FillMissing().fit(train, ["x", "y"])
    assert fill.fill_values_ == {"x": 2.0, "y": 2.5} and fill.na_cols_ == ["x"]
    out = fill.transform(pd.DataFrame({"x": [np.nan, 5.0], "y": [np.nan, 1.0]}))
    # y had no missing values in training: filled, but no flag (the model's inputs are fixed at fit)
    assert out.to_dict("list") == {"x": [2.0, 5.0], "y": [2.5, 1.0], "x_na": [1, 0]}
    assert FillMissing("mean").fit(train, ["x"]).fill_values_["x"] == pytest.approx(103 / 3)
    assert FillMissing("constant", fill_value=-1).fit(train, ["x"]).fill_values_["x"] == -1
    with pytest.raises(CentaurError, match="Did you mean: 'median'"):
        FillMissing("medain").fit(train, ["x"])


def test_normalize_std_zero_becomes_one():
    norm = Normalize().fit(pd.DataFrame({"x": [1.0, 3.0], "c": [5.0, 5.0]}), ["x", "c"])
    assert norm.means_ == {"x": 2.0, "c": 5.0} and norm.stds_ == {"x": 1.0, "c": 1.0}


def test_processor_fits_on_training_rows_only():
    df = table()
    train, valid = df.iloc[:150], df.iloc[150:].copy()
    valid.loc[valid.index[:3], "shop"] = "west"  # a shop that opened after the training period
    valid.loc[valid.index[3], "size"] = 99
    proc = TabularProcessor(["shop", "size"], ["price", "visits"]).fit(train)
    assert proc.cat_names_ == ["shop", "size", "price_na"] and proc.cont_names_ == ["price", "visits"]
    assert proc.cardinalities_ == [4, 1 + train["size"].nunique(), 3]
    assert proc.fill_missing_.fill_values_["price"] == pytest.approx(train.price.median())
    filled = train.price.fillna(train.price.median())
    assert proc.normalize_.means_["price"] == pytest.approx(filled.mean())
    assert proc.normalize_.stds_["price"] == pytest.approx(filled.std(ddof=0))

    cat, cont = proc.transform(valid)
    assert cat.dtype == np.int64 and cont.dtype == np.float32
    assert cat.shape == (50, 3) and cont.shape == (50, 2)
    assert (cat[:4, :2] == 0).sum() == 4 and proc.unseen_ == {"shop": 3, "size": 1, "price_na": 0}
    np.testing.assert_array_equal(cat[:, 2], 1 + valid.price.isna().to_numpy())  # '0' is class 1, '1' class 2
    expected = (valid.price.fillna(proc.fill_missing_.fill_values_["price"]) - proc.normalize_.means_["price"]) \
        / proc.normalize_.stds_["price"]
    np.testing.assert_allclose(cont[:, 0], expected, rtol=1e-6)


def test_state_round_trips_through_json():
    df = table()
    proc = TabularProcessor(["shop", "size"], ["price", "visits"]).fit(df.iloc[:150])
    text = json.dumps(proc.to_dict())
    again = TabularProcessor.from_dict(json.loads(text))
    for a, b in zip(proc.transform(df.iloc[150:]), again.transform(df.iloc[150:])):
        np.testing.assert_array_equal(a, b)
    assert again.to_dict() == proc.to_dict() and again.cardinalities_ == proc.cardinalities_
    with pytest.raises(CentaurError, match="damaged"):
        TabularProcessor.from_dict({"cat_names": []})


def test_constant_and_all_missing_columns_dropped_with_warning(capsys):
    df = table()
    df["flat"], df["empty"], df["one_shop"] = 3.0, np.nan, "x"
    proc = TabularProcessor(["shop", "one_shop"], ["price", "flat", "empty"]).fit(df)
    err = capsys.readouterr().err
    assert "flat (constant: always" in err and "empty (all missing)" in err and "one_shop (constant: always" in err
    assert set(proc.dropped_) == {"flat", "empty", "one_shop"}
    assert proc.cat_names_ == ["shop", "price_na"] and proc.cont_names_ == ["price"]
    cat, cont = proc.transform(df.drop(columns=["flat", "empty", "one_shop"]))  # dropped columns are not needed
    assert cat.shape == (len(df), 2) and cont.shape == (len(df), 1)


def test_missing_columns_are_all_listed():
    df = table()
    proc = TabularProcessor(["shop", "size"], ["price", "visits"]).fit(df)
    with pytest.raises(CentaurError, match=r"lacks 2 column.*'shop', 'visits' \(Did you mean: 'visit'\?\)") as e:
        proc.transform(df.drop(columns=["shop"]).rename(columns={"visits": "visit"}))
    assert "'shop'" in str(e.value)
    with pytest.raises(CentaurError, match="lacks 1"):
        TabularProcessor(["shoq"], []).fit(df)


def test_non_numeric_continuous_column_is_named():
    df = table()
    df["visits"] = df["visits"].astype(object)
    df.loc[[3, 9], "visits"] = ["n/a ", "lots"]
    with pytest.raises(CentaurError, match=r"'visits' has 2 value.*'n/a '.*'lots'"):
        TabularProcessor(["shop"], ["visits"]).fit(df)
    df.loc[[3, 9], "visits"] = ["4", "5.5"]  # numbers written as text are fine
    cat, cont = TabularProcessor(["shop"], ["visits"]).fit(df).transform(df)
    assert np.isfinite(cont).all()


def test_numbers_beyond_float32_are_missing_whichever_way_they_come():
    from centaur.data.processors import to_float
    values = to_float(pd.Series([1.0, 1e300, -1e39, np.inf, None, 3e38]))
    assert np.isnan(values[[1, 2, 3, 4]]).all() and values[0] == 1.0 and values[5] == 3e38
