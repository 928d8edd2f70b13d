"""Table models with the defaults a user starts from: a batch size that fits the table, a loud
warning when the model is worse than its baseline, what the model card says, the year of a date
as a number, and predictions written without float32 noise."""
import contextlib
import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from centaur.cli import main
from centaur.inference import TabularPredictor
from centaur.interpret.tabular import TabularInterpretation, build_table_report, clearly_important, table_model_card
from centaur.tabular.recipes import baseline_warning, choose_batch_size, train_tabular
from tabular_tables import bookings


def _train(path, out, **kwargs):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        report = train_tabular(path, "price", out, date="arrival_date", valid_pct=0.2, threads=1, progress=False,
                               **kwargs)
    return report, err.getvalue()


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("bookings") / "bookings.csv"
    bookings().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def default(table, tmp_path_factory):
    """3,000 bookings trained as `centaur train bookings.csv --target price --date arrival_date` does."""
    out = tmp_path_factory.mktemp("default") / "m"
    return out, *_train(table, out)


@pytest.fixture(scope="module")
def noise(tmp_path_factory):
    """The same bookings with a price that is noise: no model beats always predicting the mean."""
    df = bookings()
    df["price"] = np.random.default_rng(1).normal(100, 30, len(df)).round(2)
    path = tmp_path_factory.mktemp("noise") / "noise.csv"
    df.to_csv(path, index=False)
    return path, *_train(path, path.parent / "m")


def test_the_default_batch_size_fits_a_small_table_and_beats_the_baseline(default):
    out, report, err = default
    meta = json.loads((out / "model.json").read_text())
    assert meta["provenance"]["batch_size"] == 64
    assert "note: batch size 64, chosen for 2394 training rows: 37 steps per epoch" in err
    # at batch 1024 this table's model was worse than the mean (RMSE 46.0 against 43.6); at 64 about 10
    assert report["rmse"]["value"] < 0.5 * report["baseline"]["rmse"], report
    assert "WARNING" not in err


def test_large_tables_keep_batch_1024():
    assert [choose_batch_size(n) for n in (100, 2_400, 4_096, 12_310, 32_767, 32_768, 990_000)] == \
        [64, 64, 128, 256, 512, 1024, 1024]
    assert choose_batch_size(2_400, world=3) == 66  # split evenly among 3 processes


def test_loaders_made_from_python_choose_their_batch_size_too(table):
    from centaur.data.tabular import TabularDataLoaders, split_table
    df = pd.read_csv(table)
    train, valid = split_table(df, 0.2, date="arrival_date")
    dls = TabularDataLoaders.from_df(df, "price", ["hotel", "room_type"], ["lead_time"], "regression", train, valid)
    assert dls.bs == choose_batch_size(len(train)) == 64  # at 1024: 2 steps an epoch, and a model worse than the mean


def test_a_model_worse_than_its_baseline_says_so_loudly(noise):
    _, report, err = noise
    assert report["rmse"]["value"] > report["baseline"]["rmse"], report  # the case the warning is for
    line = next(x for x in err.splitlines() if x.startswith("WARNING"))
    assert "the model does worse than the baseline: validation RMSE" in line
    assert "--epochs" in line and "--bs 16; this model trained with 64" in line and "--lr" in line


def test_the_report_and_the_card_open_with_the_warning(noise, log_to_capsys):
    path, _, _ = noise
    report = build_table_report(path.parent / "m", path, n_repeats=2)
    title, html = report.sections[0]
    assert title == "Warnings" and html.startswith("<p class='warn'>The model does worse than the baseline")
    card = dict(report.sections)["Model card"]
    assert card.startswith("<p class='warn'><strong>WARNING:</strong> the model does worse than the baseline")
    assert "WARNING: The model does worse than the baseline" in log_to_capsys.readouterr().err


def test_the_card_of_a_good_model_has_no_warning_and_gives_the_learning_rate(default, table):
    out, _, _ = default
    report = build_table_report(out, table, n_repeats=2)
    assert not any("worse than the baseline" in html for _, html in report.sections)
    card = dict(report.sections)["Model card"]
    assert "WARNING" not in card
    assert "fit_one_cycle, 5 epochs, learning rate 0.01, batch size 64" in card  # was 'learning rate ?'


def test_classification_below_the_majority_class_is_warned():
    evaluation = {"accuracy": {"value": 0.55}, "baseline": {"accuracy": 0.6, "class": "no"}}
    assert "always answering 'no'" in baseline_warning(evaluation, 256)
    assert baseline_warning({"accuracy": {"value": 0.65}, "baseline": {"accuracy": 0.6, "class": "no"}}) is None


def test_the_card_lists_only_columns_clearly_above_zero(default, table):
    out, _, _ = default
    interp = TabularInterpretation.from_model_dir(out, table)
    evaluation = interp.evaluate()

    def row(column, repeats):
        return {"column": column, "importance": float(np.mean(repeats)), "std": float(np.std(repeats)),
                "repeats": repeats, "metric": "RMSE"}
    importance = [row("room_type", [30.0, 31.0, 29.5]), row("hotel", [0.4, -0.3, 0.5]),
                  row("country", [-0.1, -0.2, -0.15])]
    card = table_model_card(interp.predictor.meta, "v", evaluation, interp, None, importance)
    relied = re.search(r"relies on most \(permutation importance\): ([^<]*)\.</p>", card).group(1)
    assert relied == "room_type"  # hotel's mean is above 0 but within its spread; country's is negative
    card = table_model_card(interp.predictor.meta, "v", evaluation, interp, None, importance[1:])
    assert "relies on most" not in card and "No column stands out" in card
    assert clearly_important(importance[0]) and not clearly_important(importance[1])


def test_the_year_and_week_of_a_date_are_numbers_and_later_years_are_not_unseen(default, table):
    out, _, _ = default
    predictor = TabularPredictor(out)
    proc = predictor.processor
    assert "arrival_Year" in proc.cont_names_ and "arrival_Year" not in proc.cat_names_
    # the week too: with under a year of history, most validating weeks never occurred in training
    assert "arrival_Week" in proc.cont_names_ and "arrival_Week" not in proc.cat_names_
    assert "arrival_Month" in proc.cat_names_ and "arrival_Dayofweek" in proc.cat_names_
    later = pd.read_csv(table).head(5).drop(columns=["price"]).assign(arrival_date="2019-03-04")
    pred = predictor.predict_table(later)
    assert predictor.unseen_ == {} and (predictor.unseen_rows_ == 0).all(), predictor.unseen_
    assert pred["prediction"].notna().all()


def test_a_year_named_as_a_category_stays_one_as_older_models_have_it(table, tmp_path):
    # model directories written before the year became a number list arrival_Year among the categories in
    # their processor (model.json); --cat arrival_Year writes the same, and such a model predicts as before
    out = tmp_path / "m"
    _train(table, out, bs=64, epochs=1, cat=["arrival_Year"])
    predictor = TabularPredictor(out)
    prep = json.loads((out / "model.json").read_text())["preprocessing"]
    assert "arrival_Year" in prep["processor"]["cat_names_"] and "arrival_Year" not in prep["cont_names"]
    later = pd.read_csv(table).head(5).drop(columns=["price"]).assign(arrival_date="2019-03-04")
    predictor.predict_table(later)
    assert predictor.unseen_ == {"arrival_Year": 5} and (predictor.unseen_rows_ == 1).all()


def test_predictions_are_written_without_float32_noise(default, table, tmp_path, capsys):
    out, _, _ = default
    new = pd.read_csv(table).drop(columns=["price"]).tail(50)
    path = tmp_path / "new.csv"
    new.to_csv(path, index=False)
    assert main(["predict", str(out), str(path), "--out", str(tmp_path / "p.csv")]) == 0
    text = (tmp_path / "p.csv").read_text().splitlines()
    values = [line.split(",")[1] for line in text[1:]]
    digits = [len(re.sub(r"[^0-9]", "", v.split("e")[0]).lstrip("0")) for v in values]
    assert max(digits) <= 7, values[:5]  # 95.80287, not 95.80287170410156
    written = pd.read_csv(tmp_path / "p.csv")["prediction"].to_numpy()
    exact = TabularPredictor(out).predict_table(new)["prediction"].to_numpy()
    np.testing.assert_allclose(written, exact, rtol=1e-6)


def test_the_command_line_chooses_the_batch_size_too(table, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", str(table), "--target", "price", "--date", "arrival_date", "--epochs", "1",
                 "--out", str(out)]) == 0
    assert json.loads((out / "model.json").read_text())["provenance"]["batch_size"] == 64
    assert "note: batch size 64" in capsys.readouterr().err
    new = pd.read_csv(table).drop(columns=["price"]).tail(5)
    new.to_csv(tmp_path / "new.csv", index=False)
    assert main(["predict", str(out), str(tmp_path / "new.csv")]) == 0  # to the terminal, also 7 digits
    values = [line.split(",")[1] for line in capsys.readouterr().out.splitlines()[1:]]
    assert len(values) == 5 and all(len(re.sub(r"[^0-9]", "", v).lstrip("0")) <= 7 for v in values), values


def test_the_python_predictor_takes_rows_as_they_come(default, table):
    out, _, _ = default
    predictor = TabularPredictor(out)
    rows = pd.read_csv(table).drop(columns=["price"]).head(3)
    expected = predictor.predict_table(rows)
    assert list(expected.columns) == ["prediction", "n_unseen"]  # n_unseen from Python too, not only the CLI
    one = predictor.predict_table(rows.iloc[0].to_dict())  # a dict, as a form or an API gives it
    assert one["prediction"].iloc[0] == pytest.approx(expected["prediction"].iloc[0])
    assert predictor.predict_table(rows.iloc[1])["prediction"].iloc[0] == pytest.approx(expected["prediction"].iloc[1])
    many = predictor.predict_table(rows.to_dict("records"))
    np.testing.assert_allclose(many["prediction"], expected["prediction"])
    assert predictor.predict_table(rows.iloc[:1].assign(country="NZL"))["n_unseen"].iloc[0] == 1
    with pytest.raises(TypeError, match="DataFrame, a CSV or Parquet path, or rows"):
        predictor.predict_table(42)
