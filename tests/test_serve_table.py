"""The service with a table model: rows validated against the model's columns, batched, contested."""
import numpy as np
import pandas as pd
import pytest

from centaur.cli import main
from centaur.inference import TabularPredictor
from centaur.serve.feedback import export_feedback

from serve_helpers import client


@pytest.fixture(scope="module")
def table_model(tmp_path_factory):
    """A small regression table model: price from shop, size and day (seconds to train)."""
    rng = np.random.default_rng(0)
    n = 400
    df = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=n, freq="D").astype(str),
                       "shop": rng.choice(["north", "south", "east"], n),
                       "size": rng.uniform(1, 10, n).round(2)})
    df["price"] = df["size"] * 3 + df["shop"].map({"north": 5, "south": 0, "east": 10}) + rng.normal(0, 0.5, n)
    root = tmp_path_factory.mktemp("table")
    df.to_csv(root / "sales.csv", index=False)
    out = root / "model"
    assert main(["train", str(root / "sales.csv"), "--target", "price", "--date", "day", "--epochs", "3",
                 "--bs", "64", "--out", str(out)]) == 0
    return out, df


ROW = {"day": "2025-03-01", "shop": "east", "size": 4.5}


def test_row_prediction_matches_the_table_predictor(table_model, tmp_path):
    model_dir, _ = table_model
    expected = TabularPredictor(model_dir).predict_table(pd.DataFrame([ROW]))["prediction"].iloc[0]
    with client(model_dir, tmp_path) as c:
        info = c.get("/model").json()
        assert info["kind"] == "tabular" and info["columns"]["date"] == "day"
        assert "shop" in info["columns"]["categorical"] and set(info["categories"]["shop"]) == {"north", "south", "east"}
        body = c.post("/predict", json={"row": ROW}).json()
        assert body["value"] == pytest.approx(expected, rel=1e-5)
        rows = [ROW, {**ROW, "shop": "a shop never seen"}, {**ROW, "size": None}, {**ROW, "size": "big"},
                {**ROW, "day": "not a date"}]
        answers = c.post("/predict/batch", json={"rows": rows}).json()["predictions"]
        assert answers[0]["value"] == pytest.approx(expected, rel=1e-5)
        assert "value" in answers[1] and "value" in answers[2]  # unseen category and missing number: handled
        assert answers[3]["error"]["detail"] == "wrong type" and "'size'" in answers[3]["error"]["message"]
        # the fifth row's error names its value, not a 'row 0' of a table the sender never sent
        message = answers[4]["error"]["message"]
        assert "'not a date' that does not parse" in message and "row 0" not in message, message


@pytest.mark.parametrize("payload,status,detail", [
    ({"row": {"day": "2025-03-01", "shop": "east"}}, 422, "missing columns"),
    ({"row": {"day": "2025-03-01", "shop": "east", "sise": 3}}, 422, "missing columns"),
    ({"row": {**ROW, "size": [1, 2]}}, 422, "wrong type"),
    ({"row": {**ROW, "shop": {"a": 1}}}, 422, "wrong type"),
    ({"row": [1, 2, 3]}, 422, "wrong type"),
    ({"rows": [ROW]}, 422, "missing field"),
    ({"row": {**ROW, "day": "31/31/2017"}}, 422, "row unusable"),  # alone: once a 500
    ({"row": {**ROW, "day": 20160702}}, 422, "row unusable"),
    ({"row": {**ROW, "size": 1e308}}, 422, "wrong type"),  # finite, but not in float32
])
def test_bad_rows(table_model, tmp_path, payload, status, detail):
    with client(table_model[0], tmp_path) as c:
        r = c.post("/predict", json=payload)
        assert (r.status_code, r.json()["detail"]) == (status, detail), r.text
        if "sise" in str(payload):
            assert "Did you mean: 'sise'" in r.json()["message"]
        r = c.post("/predict", content=b"day,shop\n", headers={"content-type": "text/csv"})
        assert (r.status_code, r.json()["detail"]) == (415, "unsupported content type")


def test_contested_rows_export_as_a_table_to_retrain_on(table_model, tmp_path):
    model_dir, _ = table_model
    db = tmp_path / "feedback.sqlite"
    with client(model_dir, tmp_path, feedback_db=db) as c:
        pred = c.post("/predict", json={"row": ROW}).json()
        r = c.post("/feedback", json={"prediction_id": pred["prediction_id"], "correct": 30.5})
        assert r.status_code == 201
        pred = c.post("/predict", json={"row": {**ROW, "size": 2}}).json()
        r = c.post("/feedback", json={"prediction_id": pred["prediction_id"], "correct": "a lot"})
        assert (r.status_code, r.json()["detail"]) == (422, "wrong type")
    n, csv_path = export_feedback(db, tmp_path / "retrain", target="price")
    table = pd.read_csv(csv_path)
    assert n == 1 and list(table.columns) == ["day", "shop", "size", "price"]
    # from the command line, given the model directory: the target's own name, the model's column order
    import shutil
    served = tmp_path / "served"
    shutil.copytree(model_dir, served)
    shutil.copy(db, served / "feedback.sqlite")
    assert main(["feedback", "export", str(served), "--out", str(tmp_path / "cli")]) == 0
    assert list(pd.read_csv(tmp_path / "cli" / "feedback.csv").columns) == ["day", "shop", "size", "price"]
    assert table.iloc[0].to_dict() == {**ROW, "price": 30.5}


def test_a_contested_row_can_be_sent_again(table_model, tmp_path):
    with client(table_model[0], tmp_path, recent_bytes=0) as c:
        pred = c.post("/predict", json={"row": ROW}).json()
        r = c.post("/feedback", json={"prediction_id": pred["prediction_id"], "correct": 25})
        assert r.status_code == 409
        r = c.post("/feedback", json={"prediction_id": pred["prediction_id"], "correct": 25,
                                      "row": {"size": 4.5, "shop": "east", "day": "2025-03-01"}})  # any key order
        assert r.status_code == 201, r.text
