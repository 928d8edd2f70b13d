"""`centaur serve` as a user runs it: a real uvicorn process on loopback; ONNX; feedback export."""
import json
import signal
import urllib.error
import urllib.request

import numpy as np
import pytest
import torch

from centaur.cli import main
from centaur.core.errors import CentaurError
from centaur.inference import Predictor
from centaur.models.model_dir import load_model_dir

from conftest import run_centaur
from serve_helpers import client, png_bytes, start_server


def post(url, data, content_type):
    request = urllib.request.Request(url, data=data, headers={"Content-Type": content_type}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_real_server_on_loopback_predicts_takes_feedback_and_stops_on_ctrl_c(tiny_model, tmp_path):
    db = tmp_path / "feedback.sqlite"
    proc, url = start_server(tiny_model, "--feedback-db", db, "--max-batch-size", "4")
    try:
        assert url.startswith("http://127.0.0.1:")  # loopback unless told otherwise
        status, body = post(url + "predict", png_bytes("food", 0), "image/png")
        assert status == 200 and body["label"] == Predictor(tiny_model).predict(png_bytes("food", 0))["label"]
        wrong = "animal" if body["label"] != "animal" else "face"
        status, body = post(url + "feedback", json.dumps({"prediction_id": body["prediction_id"],
                                                          "correct": wrong}).encode(), "application/json")
        assert status == 201
        status, body = post(url + "predict", b"", "image/png")
        assert (status, body["detail"]) == (422, "image unreadable")
        with urllib.request.urlopen(url + "metrics") as r:
            assert b'centaur_feedback_total 1.0' in r.read()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert proc.returncode in (0, 130)
    export = tmp_path / "retrain"
    result = run_centaur("feedback", "export", db, "--out", export)
    assert result.returncode == 0, result.stderr
    assert [p.relative_to(export).parts[0] for p in export.rglob("*.png")] == [wrong]
    lines = (export / "feedback.csv").read_text().splitlines()
    assert lines[0] == "file,label,predicted,model_version,created_at,comment" and lines[1].startswith(wrong + "/")
    assert run_centaur("feedback", "export", db, "--out", export).returncode == 0  # an earlier export: replaced
    (export / "notes.txt").write_text("mine")
    result = run_centaur("feedback", "export", db, "--out", export)
    assert result.returncode == 2 and "notes.txt" in result.stderr and (export / "notes.txt").exists()
    result = run_centaur("feedback", "export", db, "--out", export / "feedback.csv")
    assert result.returncode == 2 and "is a file" in result.stderr


def test_serve_user_mistakes_are_one_line_and_status_2(tiny_model, tmp_path):
    result = run_centaur("serve", tmp_path / "nothing")
    assert result.returncode == 2 and result.stderr.startswith("error: model directory")
    result = run_centaur("serve", tiny_model, "--runtime", "onnx", "--port", "0", "--feedback-db", tmp_path / "f")
    assert result.returncode == 2 and "centaur export" in result.stderr and "Traceback" not in result.stderr
    result = run_centaur("feedback", "export", tmp_path / "none.sqlite", "--out", tmp_path / "o")
    assert result.returncode == 2 and "no feedback store" in result.stderr
    result = run_centaur("export", tiny_model)
    assert result.returncode == 2 and "--onnx" in result.stderr


@pytest.mark.parametrize("runtime,said", [("torch", "with PyTorch at http://"),
                                          ("onnx", "with onnxruntime (model.onnx) at http://")])
def test_the_start_line_says_which_runtime_serves(tiny_model, tmp_path, monkeypatch, capsys, runtime, said):
    import uvicorn

    from centaur.serve import app, engine, server
    monkeypatch.setattr(engine, "load_engine", lambda settings: None)  # no model.onnx needed to see the line
    monkeypatch.setattr(app, "create_app", lambda settings, engine: None)
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: None)
    assert server.serve(str(tiny_model), {"port": 0, "runtime": runtime, "feedback_db": str(tmp_path / "f")}) == 0
    assert said in capsys.readouterr().err


def test_onnx_export_matches_pytorch_and_serves(tiny_model, tmp_path):
    import shutil
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model, model_dir)
    assert main(["export", str(model_dir), "--onnx"]) == 0
    import onnxruntime as ort
    assert not list(model_dir.glob("*.data")) and not list(model_dir.glob("*.tmp*"))  # one self-contained file
    alone = tmp_path / "elsewhere" / "model.onnx"
    alone.parent.mkdir()
    shutil.copy(model_dir / "model.onnx", alone)
    session = ort.InferenceSession(str(alone), providers=["CPUExecutionProvider"])
    model, _ = load_model_dir(model_dir)
    x = torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.eval()(x).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4
    torch_p, onnx_p = Predictor(model_dir), Predictor(model_dir, runtime="onnx")
    for cls in ("animal", "face", "food"):
        a, b = torch_p.predict(png_bytes(cls, 1)), onnx_p.predict(png_bytes(cls, 1))
        assert a["label"] == b["label"] and abs(a["probability"] - b["probability"]) < 1e-4
    with client(model_dir, tmp_path, runtime="onnx") as c:
        assert c.get("/model").json()["runtime"] == "onnx"
        body = c.post("/predict?explain=true", content=png_bytes("face", 1), headers={"content-type": "image/png"}).json()
        assert body["label"] == torch_p.predict(png_bytes("face", 1))["label"] and body["heatmap"]

    # retrained into the same folder: the old graph must not answer under the new model's version
    from centaur.models.model_dir import write_model_dir
    meta = json.loads((model_dir / "model.json").read_text())
    with torch.no_grad():
        list(model.parameters())[-1].add_(1.0)
    write_model_dir(model_dir, model, {k: v for k, v in meta.items() if k not in ("format", "weights_sha256")})
    with pytest.raises(CentaurError, match="exported from other weights.*centaur export .* --onnx"):
        Predictor(model_dir, runtime="onnx")
    result = run_centaur("serve", model_dir, "--runtime", "onnx", "--port", "0", "--feedback-db", tmp_path / "f")
    assert result.returncode == 2 and "retrained since" in result.stderr
    assert main(["export", str(model_dir), "--onnx"]) == 0
    assert Predictor(model_dir, runtime="onnx").predict(png_bytes("face", 1))["label"] == \
        Predictor(model_dir).predict(png_bytes("face", 1))["label"]


def test_the_listening_socket_sends_small_replies_at_once():
    """TCP_NODELAY on the listening socket: without it a reply waits 40 ms for a delayed ACK."""
    import socket
    from centaur.core.net import listen
    sock = listen("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        assert sock.getsockname()[0] == "127.0.0.1" and sock.getsockname()[1] > 0
    finally:
        sock.close()
