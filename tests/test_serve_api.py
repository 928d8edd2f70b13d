"""The inference service through FastAPI's TestClient: every endpoint, every error path."""
import base64
import csv
import io
import json
import sqlite3

import pytest
from PIL import Image

from centaur.inference import Predictor

from serve_helpers import bomb_png, client, png_bytes


@pytest.fixture(scope="module")
def app(tiny_model, tmp_path_factory):
    with client(tiny_model, tmp_path_factory.mktemp("serve")) as c:
        yield c


def test_health_ready_model_and_page(app, tiny_model):
    assert app.get("/health").json() == {"status": "alive"}
    ready = app.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    model = app.get("/model").json()
    meta = json.loads((tiny_model / "model.json").read_text())
    assert model["classes"] == meta["classes"] and model["task"] == "single_label" and model["kind"] == "image"
    assert model["version"] == ready.json()["model_version"] and len(model["version"]) == 12
    assert model["limits"]["max_body_bytes"] == 10_000_000 and model["token_required"] is False
    page = app.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'name="viewport"' in page.text and "/feedback" in page.text


def test_predict_upload_matches_the_predictor(app, tiny_model):
    data = png_bytes("food", 3)
    expected = Predictor(tiny_model).predict(data)
    for response in (app.post("/predict", files={"file": ("pizza.png", data, "image/png")}),
                     app.post("/predict", content=data, headers={"content-type": "image/png"}),
                     app.post("/predict", content=data, headers={"content-type": "application/octet-stream"})):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["label"] == expected["label"]
        assert body["probability"] == pytest.approx(expected["probability"], abs=1e-5)
        assert [t["label"] for t in body["top_k"]] == [t["label"] for t in expected["top_k"]]
        assert len(body["prediction_id"]) == 32 and body["model_version"] == app.get("/model").json()["version"]


def test_predict_explain_returns_a_heatmap_png(app):
    body = app.post("/predict?explain=true", files={"file": ("cat.png", png_bytes(), "image/png")}).json()
    header, b64 = body["heatmap"].split(",", 1)
    assert header == "data:image/png;base64"
    heatmap = Image.open(io.BytesIO(base64.b64decode(b64)))
    assert heatmap.size == (32, 32) and heatmap.mode == "RGB"  # the model's input size (tiny model: 32 px)


def test_batch_answers_in_order_and_an_unreadable_image_does_not_fail_the_others(app, tiny_model):
    files = [("files", ("a.png", png_bytes("animal", 0), "image/png")),
             ("files", ("broken.png", b"not an image at all", "image/png")),
             ("files", ("c.png", png_bytes("face", 2), "image/png"))]
    body = app.post("/predict/batch", files=files).json()
    p = Predictor(tiny_model)
    first, broken, third = body["predictions"]
    assert first["label"] == p.predict(png_bytes("animal", 0))["label"]
    assert third["label"] == p.predict(png_bytes("face", 2))["label"]
    assert broken["error"]["detail"] == "image unreadable" and "broken.png" in broken["error"]["message"]


def test_feedback_is_stored_with_input_prediction_and_version(tiny_model, tmp_path):
    db = tmp_path / "feedback.sqlite"
    with client(tiny_model, tmp_path, feedback_db=db) as c:
        data = png_bytes("face", 1)
        pred = c.post("/predict", files={"file": ("me.png", data, "image/png")}).json()
        wrong = next(cls for cls in c.get("/model").json()["classes"] if cls != pred["label"])
        r = c.post("/feedback", json={"prediction_id": pred["prediction_id"], "correct": wrong,
                                      "comment": "this is my face"})
        assert r.status_code == 201 and r.json()["stored"] is True
    # durable: read back by a different connection after the service has stopped
    row = sqlite3.connect(db).execute("SELECT model_version, input, prediction, correct, comment, input_name "
                                      "FROM feedback").fetchone()
    assert row[0] == pred["model_version"] and row[1] == data
    assert json.loads(row[2])["label"] == pred["label"] and json.loads(row[3]) == wrong
    assert row[4:] == ("this is my face", "me.png")
    # a restarted service keeps the cases
    with client(tiny_model, tmp_path, feedback_db=db) as c:
        pred = c.post("/predict", content=data, headers={"content-type": "image/png"}).json()
        assert c.post("/feedback", json={"prediction_id": pred["prediction_id"], "correct": wrong}).json()["id"] == 2


@pytest.mark.parametrize("payload,status,detail", [
    ({"prediction_id": "0" * 32, "correct": "animal"}, 404, "prediction not found"),
    ({"correct": "animal"}, 422, "missing field"),
    ({"prediction_id": 5, "correct": "animal"}, 422, "wrong type"),
    ([1, 2], 422, "missing field"),
])
def test_feedback_errors(app, payload, status, detail):
    r = app.post("/feedback", json=payload)
    assert (r.status_code, r.json()["detail"]) == (status, detail)


def test_feedback_refuses_an_unknown_label_with_a_suggestion(app):
    pred = app.post("/predict", content=png_bytes(), headers={"content-type": "image/png"}).json()
    r = app.post("/feedback", json={"prediction_id": pred["prediction_id"], "correct": "animl"})
    assert r.status_code == 422 and r.json()["detail"] == "unknown label"
    assert "Did you mean: 'animal'" in r.json()["message"]
    r = app.post("/feedback", json={"prediction_id": pred["prediction_id"]})
    assert r.status_code == 422 and r.json()["detail"] == "missing field"


def test_contests_that_agree_or_conflict_do_not_become_training_data(tiny_model, tmp_path):
    from centaur.serve.feedback import export_feedback
    db = tmp_path / "feedback.sqlite"
    classes = ["animal", "face", "food"]
    with client(tiny_model, tmp_path, feedback_db=db) as c:
        def contest(data, pick):
            """Predict, try to "correct" it with its own answer (refused), then give pick(other classes)."""
            pred = c.post("/predict", content=data, headers={"content-type": "image/png"}).json()
            same = c.post("/feedback", json={"prediction_id": pred["prediction_id"], "correct": pred["label"]})
            assert (same.status_code, same.json()["detail"]) == (422, "not a correction")
            answers = pick([k for k in classes if k != pred["label"]])
            for answer in answers:
                r = c.post("/feedback", json={"prediction_id": pred["prediction_id"], "correct": answer})
                assert r.status_code == 201
            return answers

        changed_mind = contest(png_bytes("face", 3), lambda others: others)  # two answers: the latest counts
        first = contest(png_bytes("food", 2), lambda others: others[:1])  # two people disagree about one image
        second = contest(png_bytes("food", 2), lambda others: [k for k in others if k != first[0]][:1])
    n, csv_path = export_feedback(db, tmp_path / "retrain")
    with open(csv_path) as f:
        table = list(csv.DictReader(f))
    assert n == 1 and [r["label"] for r in table] == [changed_mind[-1]]
    with open(tmp_path / "retrain" / "conflicts.csv") as f:
        conflicts = list(csv.DictReader(f))
    assert sorted(json.loads(r["correct"]) for r in conflicts) == sorted(first + second)


# Malformed requests replayed: each gets its status and stable detail, and the service stays up.
MALFORMED = [
    ("zero bytes", dict(content=b"", headers={"content-type": "image/png"}), 422, "image unreadable"),
    ("truncated", dict(content=png_bytes()[:200], headers={"content-type": "image/png"}), 422, "image unreadable"),
    ("corrupt", dict(content=b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, headers={"content-type": "image/png"}),
     422, "image unreadable"),
    ("text as image", dict(content=b"hello", headers={"content-type": "image/jpeg"}), 422, "image unreadable"),
    ("bomb", dict(content=bomb_png(), headers={"content-type": "image/png"}), 422, "image too large"),
    ("bomb in a form", dict(files={"file": ("b.png", bomb_png(), "image/png")}), 422, "image too large"),
    ("huge body", dict(content=b"\0" * 10_000_001, headers={"content-type": "image/png"}), 413,
     "request body too large"),
    ("json to an image model", dict(json={"image": "x"}), 415, "unsupported content type"),
    ("text/plain", dict(content=b"cat", headers={"content-type": "text/plain"}), 415, "unsupported content type"),
    ("no content type", dict(content=png_bytes()), 415, "unsupported content type"),
    ("form without file", dict(data={"x": "1"}, files={"other": ("a.png", b"x", "image/png")}), 422,
     "missing field"),
]


@pytest.mark.parametrize("name,request_kwargs,status,detail", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_uploads_get_their_error_and_the_service_stays_up(app, name, request_kwargs, status, detail):
    r = app.post("/predict", **request_kwargs)
    assert r.status_code == status, r.text
    assert r.json()["detail"] == detail and r.json()["message"]
    assert app.get("/health").status_code == 200
    assert app.post("/predict", content=png_bytes(), headers={"content-type": "image/png"}).status_code == 200


def test_a_huge_body_without_content_length_is_cut_off(app):
    def chunks():  # a streamed upload: no Content-Length, so the limit must count as it arrives
        for _ in range(200):
            yield b"\0" * 100_000
    r = app.post("/predict", content=chunks(), headers={"content-type": "image/png"})
    assert r.status_code == 413 and r.json()["detail"] == "request body too large"


def test_malformed_json_and_too_many_items(tiny_model, tmp_path):
    with client(tiny_model, tmp_path, max_batch_items=2) as c:
        r = c.post("/feedback", content=b"{not json", headers={"content-type": "application/json"})
        assert (r.status_code, r.json()["detail"]) == (422, "malformed JSON")
        files = [("files", (f"{i}.png", png_bytes("animal", i), "image/png")) for i in range(3)]
        r = c.post("/predict/batch", files=files)
        assert (r.status_code, r.json()["detail"]) == (422, "too many items")
        r = c.post("/predict/batch", content=png_bytes(), headers={"content-type": "image/png"})
        assert (r.status_code, r.json()["detail"]) == (415, "unsupported content type")
        # past what the form parser itself takes: still our shape and status, not its plain 400
        files = [("files", (f"{i}.png", b"x", "image/png")) for i in range(10)]
        r = c.post("/predict/batch", files=files)
        assert (r.status_code, r.json()["detail"]) == (422, "too many items") and "the most is 2" in r.json()["message"]
        r = c.post("/predict/batch", data={f"f{i}": "x" for i in range(1500)}, files=files[:1])
        assert (r.status_code, r.json()["detail"]) == (422, "too many fields")


def test_parameters_of_the_wrong_kind_get_the_api_shape(app):
    r = app.post("/predict?explain=maybe", content=png_bytes(), headers={"content-type": "image/png"})
    assert (r.status_code, r.json()["detail"]) == (422, "invalid parameter")
    assert "explain" in r.json()["message"] and "'maybe'" in r.json()["message"]
    r = app.post("/predict/batch?explain=true", files=[("files", ("a.png", png_bytes(), "image/png"))])
    assert (r.status_code, r.json()["detail"]) == (422, "explain one at a time")


def test_metrics_count_requests_batches_and_errors(app):
    app.post("/predict", content=b"", headers={"content-type": "image/png"})
    app.post("/predict", content=png_bytes(), headers={"content-type": "image/png"})
    text = app.get("/metrics").text
    assert 'centaur_requests_total{route="/predict",status="200"}' in text
    assert 'centaur_requests_total{route="/predict",status="422"}' in text
    assert 'centaur_errors_total{detail="image unreadable"}' in text
    assert "centaur_batch_size_count" in text and "centaur_request_seconds_bucket" in text
    assert "centaur_in_flight 0.0" in text


def test_token_is_required_when_set(tiny_model, tmp_path):
    with client(tiny_model, tmp_path, token="s3cret") as c:
        r = c.post("/predict", content=png_bytes(), headers={"content-type": "image/png"})
        assert (r.status_code, r.json()["detail"]) == (401, "missing or wrong token")
        r = c.post("/predict", content=png_bytes(), headers={"content-type": "image/png",
                                                             "authorization": "Bearer wrong"})
        assert r.status_code == 401
        r = c.post("/predict", content=png_bytes(), headers={"content-type": "image/png",
                                                             "authorization": "Bearer s3cret"})
        assert r.status_code == 200
        assert c.get("/health").status_code == 200 and c.get("/model").json()["token_required"] is True


def test_not_ready_before_the_model_is_loaded(tiny_model, tmp_path):
    c = client(tiny_model, tmp_path)  # not entered: the lifespan (model load) has not run
    r = c.get("/ready")
    assert r.status_code == 503 and r.headers["retry-after"]
    r = c.post("/predict", content=png_bytes(), headers={"content-type": "image/png"})
    assert (r.status_code, r.json()["detail"]) == (503, "not ready")
    assert c.get("/health").status_code == 200


def test_a_contest_after_the_input_was_let_go_sends_it_again(tiny_model, tmp_path):
    """A busy server keeps predictions but not every input: the contest then carries the image."""
    with client(tiny_model, tmp_path, recent_bytes=0) as c:  # keeps no input at all
        data = png_bytes("food", 4)
        pred = c.post("/predict", files={"file": ("soup.png", data, "image/png")}).json()
        r = c.post("/feedback", json={"prediction_id": pred["prediction_id"], "correct": "food"})
        assert (r.status_code, r.json()["detail"]) == (409, "input no longer kept")
        wrong = "animal" if pred["label"] != "animal" else "face"
        fields = {"prediction_id": pred["prediction_id"], "correct": f'"{wrong}"', "comment": "a duck"}
        r = c.post("/feedback", data=fields, files={"file": ("other.png", png_bytes("face", 0), "image/png")})
        assert (r.status_code, r.json()["detail"]) == (422, "input does not match")
        r = c.post("/feedback", data=fields, files={"file": ("soup.png", data, "image/png")})
        assert r.status_code == 201 and r.json()["correct"] == wrong
    row = sqlite3.connect(tmp_path / "feedback.sqlite").execute("SELECT input, comment FROM feedback").fetchone()
    assert row == (data, "a duck")


def test_old_predictions_are_forgotten_by_count(tiny_model, tmp_path):
    with client(tiny_model, tmp_path, recent_predictions=2) as c:
        preds = [c.post("/predict", content=png_bytes("animal", i), headers={"content-type": "image/png"}).json()
                 for i in range(3)]
        ids = [p["prediction_id"] for p in preds]
        wrong = "food" if preds[2]["label"] != "food" else "face"
        assert c.post("/feedback", json={"prediction_id": ids[0], "correct": wrong}).status_code == 404
        assert c.post("/feedback", json={"prediction_id": ids[2], "correct": wrong}).status_code == 201
