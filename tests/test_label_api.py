"""The workbench's HTTP API against a real SQLite store, real pretrained embeddings and real images:
label, undo, find similar, train, export, restart, and the bad inputs a browser can send."""
import csv
import io
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from centaur.core.errors import CentaurError
from centaur.label.app import create_app
from centaur.label.learn import FADE_THRESHOLD
from centaur.label.project import Project

from test_label_store import postgres_server  # noqa: F401 (a fixture)

EMOJI = Path(__file__).resolve().parents[1] / "data" / "emoji"
PER_CLASS = 12


def _copy_images(out):
    for kind in ("animal", "body", "face"):
        for f in sorted((EMOJI / kind).glob("*.png"))[:PER_CLASS]:
            shutil.copy(f, out / f"{kind}_{f.name}")  # flat: the workbench starts without labels


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A folder of 36 real emoji, a corrupt file and a decompression bomb, embedded once; tests copy it."""
    folder = tmp_path_factory.mktemp("photos")
    _copy_images(folder)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    Image.new("1", (20_000, 20_000)).save(folder / "huge.png")  # 400 million pixels in a small file
    project = Project(folder, size=96)
    project.scan()
    project.embed()
    project.close()
    return folder


@pytest.fixture
def folder(embedded, tmp_path):
    target = tmp_path / "photos"
    shutil.copytree(embedded, target)
    return target


@pytest.fixture
def client(folder):
    project = Project(folder, size=96)
    project.scan()
    project.embed()  # the cache copied with the folder: nothing to compute
    with TestClient(create_app(project, background=False)) as c:
        yield c
    project.close()


def _ids_by_kind(client):
    images = client.get("/api/images").json()
    by_kind = {}
    for image_id, path, status in zip(images["ids"], images["paths"], images["status"]):
        if status == "ok":
            by_kind.setdefault(path.split("_")[0], []).append(image_id)
    return by_kind


def test_corrupt_and_oversized_images_are_listed_not_fatal(client):
    images = client.get("/api/images").json()
    assert len(images["ids"]) == 3 * PER_CLASS + 2
    status = dict(zip(images["paths"], images["status"]))
    assert status["broken.png"] == "unreadable" and status["huge.png"] == "too_large"
    assert sum(s == "ok" for s in status.values()) == 3 * PER_CLASS
    summary = client.get("/api/project").json()
    assert summary["status"] == {"ok": 36, "unreadable": 1, "too_large": 1}


def test_layout_is_compact_float32_in_the_unit_square(client):
    images = client.get("/api/images").json()
    response = client.get("/api/layout", params={"layer": "last", "method": "pca"})
    assert response.headers["content-type"] == "application/octet-stream"
    coords = np.frombuffer(response.content, dtype="<f4").reshape(-1, 2)
    assert len(coords) == len(images["ids"])
    broken = images["paths"].index("broken.png")
    assert np.isnan(coords[broken]).all()
    assert np.isnan(coords[images["paths"].index("huge.png")]).all()
    ok = coords[[s == "ok" for s in images["status"]]]
    assert np.isfinite(ok).all() and ok.min() >= 0 and ok.max() <= 1
    for layer in ("early", "middle"):
        assert len(client.get("/api/layout", params={"layer": layer}).content) == 8 * len(images["ids"])
    bad = client.get("/api/layout", params={"layer": "deepest"})
    assert bad.status_code == 422 and "layer" in bad.json()["detail"]
    lda = client.get("/api/layout", params={"method": "lda"})
    assert lda.status_code == 422  # no labels yet


def test_label_undo_redo_as_whole_actions(client):
    kinds = _ids_by_kind(client)
    r = client.post("/api/labels", json={"ids": kinds["face"], "label": "face", "how": "lasso"})
    assert r.status_code == 200 and r.json()["action"]["count"] == PER_CLASS
    client.post("/api/labels", json={"ids": kinds["animal"][:5], "label": "animal"})
    assert client.get("/api/project").json()["labels"] == {"face": 12, "animal": 5}
    undone = client.post("/api/undo").json()
    assert undone["action"]["count"] == 5 and undone["labels"] == {"face": 12}
    assert client.post("/api/redo").json()["labels"] == {"face": 12, "animal": 5}
    assert client.post("/api/undo").json()["labels"] == {"face": 12}
    assert client.post("/api/undo").json()["labels"] == {}
    assert client.post("/api/undo").json()["action"] is None
    history = client.get("/api/history").json()
    assert [h["count"] for h in history] == [5, 12] and all(h["undone"] for h in history)


def test_bad_label_requests_are_refused_with_a_reason(client):
    assert client.post("/api/labels", json={"ids": [], "label": "x"}).status_code == 422
    unknown = client.post("/api/labels", json={"ids": [999999], "label": "x"})
    assert unknown.status_code == 404 and "999999" in unknown.json()["detail"]
    slash = client.post("/api/labels", json={"ids": [1], "label": "../etc"})
    assert slash.status_code == 422
    big = client.post("/api/labels", content=b"{" + b" " * 5_000_000 + b"}",
                      headers={"content-type": "application/json"})
    assert big.status_code == 413
    streamed = client.post("/api/labels", content=iter([b'{"ids": [1], ', b'"label": "x"}']),
                           headers={"content-type": "application/json"})
    assert streamed.status_code == 411  # no Content-Length: refused before reading
    assert client.get("/api/project").json()["labels"] == {}


def test_labels_and_undo_history_survive_a_restart(folder):
    project = Project(folder, size=96)
    project.scan()
    with TestClient(create_app(project, background=False)) as c:
        kinds = _ids_by_kind(c)
        c.post("/api/labels", json={"ids": kinds["body"], "label": "body", "how": "lasso"})
        c.post("/api/labels", json={"ids": kinds["face"][:3], "label": "face"})
    project.close()
    again = Project(folder, size=96)
    again.scan()
    again.embed()
    assert again.progress["total"] == 0  # the embeddings were cached: nothing computed again
    with TestClient(create_app(again, background=False)) as c:
        assert c.get("/api/project").json()["labels"] == {"body": 12, "face": 3}
        assert c.post("/api/undo").json()["labels"] == {"body": 12}
    again.close()


def test_find_similar_finds_the_same_kind_across_all_images(client):
    kinds = _ids_by_kind(client)
    query = kinds["face"][:3]
    found = client.post("/api/similar", json={"ids": query, "k": 9}).json()
    assert len(found["ids"]) == 9 and not set(found["ids"]) & set(query)
    assert found["scores"] == sorted(found["scores"], reverse=True)
    faces = sum(i in kinds["face"] for i in found["ids"])
    assert faces >= 6, f"only {faces} of 9 nearest neighbours of three faces are faces"
    client.post("/api/labels", json={"ids": kinds["face"][3:8], "label": "face"})
    after = client.post("/api/similar", json={"ids": query, "k": 30}).json()["ids"]
    assert not set(after) & set(kinds["face"][3:8])  # unlabeled ones only, by default


def test_train_gives_accuracy_with_interval_then_predictions_and_a_queue(client):
    kinds = _ids_by_kind(client)
    assert client.post("/api/train").status_code == 422  # nothing labeled yet
    for kind in ("animal", "face", "body"):
        client.post("/api/labels", json={"ids": kinds[kind][:8], "label": kind})
    trained = client.post("/api/train").json()
    assert trained["num_labeled"] == 24 and sorted(trained["classes"]) == ["animal", "body", "face"]
    low, high = trained["interval"]
    assert 0 <= low <= trained["accuracy"] <= high <= 1
    assert trained["accuracy"] > 0.6, trained  # three kinds of emoji: chance is 0.33
    predictions = client.get("/api/predictions").json()
    images = client.get("/api/images").json()
    unlabeled = [i for i, label, status in zip(images["ids"], images["labels"], images["status"])
                 if label < 0 and status == "ok"]
    assert sorted(predictions["queue"]) == sorted(unlabeled)
    assert predictions["fade_threshold"] == FADE_THRESHOLD  # the page fades by the server's threshold
    rows = {image_id: r for r, image_id in enumerate(images["ids"])}
    right = sum(predictions["classes"][predictions["predicted"][rows[i]]] == images["paths"][rows[i]].split("_")[0]
                for i in unlabeled)
    assert right >= 8, f"{right} of {len(unlabeled)} unlabeled images predicted right"
    assert "lda" in client.get("/api/layouts").json()["methods"]
    lda = np.frombuffer(client.get("/api/layout", params={"method": "lda"}).content, dtype="<f4")
    assert np.isfinite(lda).sum() == 2 * 36


def test_export_writes_what_centaur_train_reads(client, folder):
    kinds = _ids_by_kind(client)
    for kind in ("animal", "face"):
        client.post("/api/labels", json={"ids": kinds[kind][:6], "label": kind})
    client.post("/api/train")
    written = client.post("/api/export", json={}).json()
    assert set(written) >= {"labels", "labels_json", "predictions", "folders", "model"}
    with open(written["labels"]) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12 and {r["label"] for r in rows} == {"animal", "face"}
    assert all(r["author"] and r["at"] and r["how"] for r in rows)
    classes = Path(written["folders"])
    assert sorted(p.name for p in classes.iterdir() if p.is_dir()) == ["animal", "face"]
    assert len(list((classes / "face").iterdir())) == 6
    download = client.get("/api/export/labels.csv")
    assert download.status_code == 200 and download.text.count("\n") == 13
    from centaur.inference import Predictor
    assert Predictor(written["model"]).predict(next(folder.glob("face_*.png")))["label"] in ("animal", "face")


def test_paths_from_the_browser_stay_inside_the_project(client, folder):
    assert client.get("/api/file", params={"path": next(folder.glob("face_*")).name}).status_code == 200
    for bad in ("../../../etc/passwd", "/etc/passwd", ".centaur/labels.sqlite", "missing.png"):
        r = client.get("/api/file", params={"path": bad})
        assert r.status_code == 422, bad
    assert client.get("/api/image/999999").status_code == 404
    broken = client.get("/api/images").json()["paths"].index("broken.png")
    assert client.get(f"/api/thumb/{client.get('/api/images').json()['ids'][broken]}").status_code == 422
    ok = client.get("/api/thumb/1")
    assert ok.status_code == 200 and ok.headers["content-type"] == "image/jpeg"


def test_only_images_leave_the_server_whatever_a_link_points_to(client, folder, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (folder / "passwd.png").symlink_to(secret)  # a link out, to a file that is no image
    outside = tmp_path / "outside.png"
    Image.new("RGB", (30, 20), (0, 90, 200)).save(outside)
    (folder / "linked.png").symlink_to(outside)  # a link out, to an image: followed, as `centaur train` does
    Image.new("RGB", (30, 20), (10, 200, 10)).save(folder / "scan.tif")  # browsers do not show TIFF
    client.app.state.project.scan()
    images = client.get("/api/images").json()
    ids = dict(zip(images["paths"], images["ids"]))
    for name in ("passwd.png", "broken.png", "huge.png"):
        r = client.get(f"/api/image/{ids[name]}")
        assert r.status_code == 422 and "root:" not in r.text, (name, r.text)
    assert client.get("/api/file", params={"path": "broken.png"}).status_code == 422
    linked = client.get(f"/api/image/{ids['linked.png']}")
    assert linked.headers["content-type"] == "image/png" and linked.content == outside.read_bytes()
    tiff = client.get(f"/api/image/{ids['scan.tif']}")
    assert tiff.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(tiff.content)).getpixel((3, 3)) == (10, 200, 10)
    face = next(folder.glob("face_*.png"))
    served = client.get("/api/file", params={"path": face.name})
    assert served.headers["content-type"] == "image/png" and served.content == face.read_bytes()


def test_a_token_guards_a_workbench_bound_beyond_loopback(folder):
    project = Project(folder, size=96)
    with TestClient(create_app(project, token="s3cret", background=False)) as c:
        assert c.get("/api/project").status_code == 401
        assert c.get("/api/project", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/?token=s3cret").status_code == 200
        assert c.get("/api/project").status_code == 200  # the page's cookie carries it from then on
    project.close()


def test_two_tabs_labeling_at_once_lose_nothing(folder):
    project = Project(folder, size=96)
    project.scan()
    ids = [r["id"] for r in project.images()]
    with TestClient(create_app(project, background=False)) as c:
        def tab(label, chosen):
            for image_id in chosen:
                assert c.post("/api/labels", json={"ids": [image_id], "label": label}).status_code == 200

        tabs = [threading.Thread(target=tab, args=("even", ids[0::2])),
                threading.Thread(target=tab, args=("odd", ids[1::2]))]
        for t in tabs:
            t.start()
        for t in tabs:
            t.join()
        counts = c.get("/api/project").json()["labels"]
    project.close()
    assert counts == {"even": len(ids[0::2]), "odd": len(ids[1::2])}
    assert len(Project(folder, size=96).store.history(limit=1000)) == len(ids)


def test_folders_that_cannot_be_a_project(tmp_path):
    with pytest.raises(CentaurError, match="does not exist"):
        Project(tmp_path / "nowhere")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(CentaurError, match="is a file"):
        Project(tmp_path / "file.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CentaurError, match="no images"):
        Project(empty).scan()


def test_added_images_are_embedded_incrementally(folder):
    project = Project(folder, size=96)
    project.scan()
    project.embed()
    Image.new("RGB", (40, 40), (200, 30, 30)).save(folder / "new_red.png")
    assert project.scan() == 1
    project.embed()
    assert project.progress["total"] == 1  # only the new image was computed
    assert project.embedded().sum() == 37 and project.progress["errors"] == 0
    shutil.copy(next(folder.glob("face_*.png")), folder / "broken.png")  # the damaged file replaced
    assert project.scan() == 0
    project.embed()
    assert project.embedded().sum() == 38
    assert {r["status"] for r in project.images() if r["path"] == "broken.png"} == {"ok"}
    project.close()


def test_vectors_in_memory_take_each_batch_as_it_is_embedded(tmp_path):
    folder = tmp_path / "fresh"
    folder.mkdir()
    _copy_images(folder)
    project = Project(folder, size=96)
    project.scan()
    assert np.isnan(project.vectors("last")).all()  # loaded before any embedding, as the page does
    seen = []
    project.progress = _Recording(seen, project)
    project.embed(batch_size=8)
    assert len(seen) == 5 and seen[0] == 8 and seen[-1] == 36  # the map grew batch by batch
    live = {layer: project.vectors(layer).copy() for layer in ("early", "middle", "last")}
    similar, _ = project.similar([project.images()[0]["id"]], k=3, unlabeled_only=False)
    assert len(similar) == 3
    project.close()
    reloaded = Project(folder, size=96)  # the same vectors, read back from the cache
    for layer, values in live.items():
        np.testing.assert_array_equal(values, reloaded.vectors(layer))
    reloaded.close()


class _Recording(dict):
    """Project.progress that also records how many images had vectors in memory at each update."""

    def __init__(self, seen, project):
        super().__init__(state="idle", done=0, total=0, errors=0, message="")
        self.seen, self.project = seen, project

    def update(self, *args, **kwargs):
        super().update(*args, **kwargs)
        if "done" in kwargs and kwargs["done"]:
            self.seen.append(int(self.project.embedded().sum()))


@pytest.mark.slow
def test_a_full_fine_tune_runs_in_the_background_and_writes_a_model(client):
    kinds = _ids_by_kind(client)
    for kind in ("animal", "face"):
        client.post("/api/labels", json={"ids": kinds[kind], "label": kind})
    assert client.get("/api/finetune").json()["state"] == "idle"
    project = client.app.state.project
    started = project.finetune(epochs=1, size=32, extra=("--freeze-epochs", "1", "--bs", "8"))
    assert started["state"] == "running"
    again = client.post("/api/finetune", json={"epochs": 1})
    assert again.status_code == 422 and "already running" in again.json()["detail"]
    deadline = time.monotonic() + 240
    while (status := client.get("/api/finetune").json())["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
    assert status["state"] == "done", status["log"]
    time.sleep(1.1)
    assert client.get("/api/finetune").json()["seconds"] == status["seconds"]  # its clock stopped with it
    from centaur.inference import Predictor
    predictor = Predictor(status["model"])
    assert sorted(predictor.classes) == ["animal", "face"]


def test_the_command_line_says_what_is_wrong_in_one_line(tmp_path):
    from conftest import run_centaur
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_centaur("label", str(empty), "--no-browser")
    assert result.returncode == 2 and "no images" in result.stderr and "Traceback" not in result.stderr
    result = run_centaur("label", str(tmp_path / "nowhere"), "--no-browser")
    assert result.returncode == 2 and "does not exist" in result.stderr
    result = run_centaur("label", str(empty), "--train")
    assert result.returncode == 2 and "--export" in result.stderr


def test_export_from_the_command_line_trains_and_writes_everything(folder, tmp_path):
    from conftest import run_centaur
    project = Project(folder, size=96)
    project.scan()
    kinds = {}
    for r in project.images():
        kinds.setdefault(r["path"].split("_")[0], []).append(r["id"])
    project.label(kinds["animal"][:6], "animal")
    project.label(kinds["food"][:6] if "food" in kinds else kinds["body"][:6], "other")
    project.close()
    out = tmp_path / "out"
    result = run_centaur("label", str(folder), "--export", str(out), "--train", "--size", "96")
    assert result.returncode == 0, result.stderr
    assert "cross-validated accuracy" in result.stderr
    for name in ("labels.csv", "labels.json", "predictions.csv", "classes/animal", "model/model.json"):
        assert (out / name).exists(), name


def test_export_without_labels_says_to_label_in_the_workbench_first(folder, tmp_path):
    from conftest import run_centaur
    for extra in (["--train"], []):
        result = run_centaur("label", str(folder), "--export", str(tmp_path / "out"), *extra, "--size", "96")
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert f"no labels yet in {str(folder)!r}" in result.stderr and f"centaur label {folder}" in result.stderr
        assert "embedding" not in result.stderr  # nothing for the user to wait for in --export mode
        assert not (tmp_path / "out").exists()


def test_two_people_each_undo_their_own_last_action(client):
    from urllib.parse import quote
    kinds = _ids_by_kind(client)
    ann, tanaka = {"x-centaur-author": "ann"}, {"x-centaur-author": quote("田中")}  # as the page sends names
    client.post("/api/labels", json={"ids": kinds["animal"][:3], "label": "animal"}, headers=ann)
    client.post("/api/labels", json={"ids": kinds["face"][:2], "label": "face"}, headers=tanaka)
    undone = client.post("/api/undo", headers=ann).json()
    assert undone["action"]["label"] == "animal" and undone["labels"] == {"face": 2}
    assert client.post("/api/undo", headers=ann).json()["action"] is None  # ann has nothing left to undo
    assert client.post("/api/redo", headers=ann).json()["labels"] == {"animal": 3, "face": 2}
    client.post("/api/labels", json={"ids": kinds["animal"][:1], "label": "cat"}, headers=tanaka)
    refused = client.post("/api/undo", headers=ann)
    assert refused.status_code == 422 and "labeled again since by 田中" in refused.json()["detail"]
    authors = {r["label"]: r["author"] for r in client.app.state.project.store.label_records()}
    assert authors == {"animal": "ann", "face": "田中", "cat": "田中"}


def test_two_exports_at_once_leave_one_whole_export(client, folder):
    kinds = _ids_by_kind(client)
    for kind in ("animal", "face", "body"):
        client.post("/api/labels", json={"ids": kinds[kind][:8], "label": kind})
    project = client.app.state.project
    results, errors = [], []

    def export():
        try:
            results.append(project.export(what=("labels", "folders")))
        except Exception as e:  # noqa: BLE001 (the test reports any failure)
            errors.append(e)

    threads = [threading.Thread(target=export) for _ in range(3)]  # a double click, and another tab
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 3
    classes = folder / ".centaur" / "export" / "classes"
    assert {p.name: len(list(p.iterdir())) for p in classes.iterdir() if p.is_dir()} == {
        "animal": 8, "face": 8, "body": 8}


def test_one_or_two_images_are_laid_out(tmp_path):
    folder = tmp_path / "two"
    folder.mkdir()
    for f in sorted((EMOJI / "animal").glob("*.png"))[:2]:
        shutil.copy(f, folder / f.name)
    project = Project(folder, size=96)
    project.scan()
    project.embed()
    coords = project.layout("last", "pca")
    assert np.isfinite(coords).all() and not np.allclose(coords[0], coords[1])  # side by side, not stacked
    project.close()


def test_a_refused_export_writes_nothing(client, folder, tmp_path):
    kinds = _ids_by_kind(client)
    client.post("/api/labels", json={"ids": kinds["animal"][:4], "label": "animal"})
    project = client.app.state.project
    theirs = tmp_path / "theirs"
    (theirs / "classes" / "mine").mkdir(parents=True)
    (theirs / "labels.csv").write_text("keep\n")
    with pytest.raises(CentaurError, match="not empty and is not an earlier workbench export"):
        project.export(theirs)
    assert (theirs / "labels.csv").read_text() == "keep\n" and sorted(p.name for p in theirs.iterdir()) == [
        "classes", "labels.csv"]
    a_file = tmp_path / "model.json"
    a_file.write_text("{}")
    with pytest.raises(CentaurError, match="is a file"):
        project.export(a_file)
    with pytest.raises(CentaurError, match="unknown export 'bogus'"):
        project.export(tmp_path / "new", what=("bogus",))
    assert not (tmp_path / "new").exists()
    written = project.export(tmp_path / "new")  # new, then an earlier export: both fine
    assert project.export(tmp_path / "new").keys() == written.keys()
    assert client.post("/api/export", json={"what": ["bogus"]}).status_code == 422


def test_export_trains_again_when_the_labels_changed_since_training(client, tmp_path):
    kinds = _ids_by_kind(client)
    for kind in ("animal", "face"):
        client.post("/api/labels", json={"ids": kinds[kind][:6], "label": kind})
    client.post("/api/labels", json={"ids": kinds["body"][:6], "label": "body"})
    assert sorted(client.post("/api/train").json()["classes"]) == ["animal", "body", "face"]
    client.post("/api/undo")  # "body" is gone: the trained model still predicts it
    written = client.post("/api/export", json={}).json()
    assert "trained again" in written["retrained"]
    model = json.loads((Path(written["model"]) / "model.json").read_text())
    assert sorted(model["classes"]) == ["animal", "face"]
    header = Path(written["predictions"]).read_text().splitlines()[0]
    assert "body" not in header and "animal" in header
    assert "retrained" not in client.post("/api/export", json={}).json()  # up to date now
    client.post("/api/undo")  # one class left: no model can be trained, labels are still exported
    written = client.post("/api/export", json={}).json()
    assert "labels" in written and "model" not in written and "2 classes" in written["not_written"]
    assert not (Path(written["labels"]).parent / "model").exists()  # the earlier export's model went with it


UNREADABLE = """
import os, sys
from centaur.core.errors import CentaurError
from centaur.label.project import Project
if len(sys.argv) > 2:  # root ignores permissions: become nobody, after importing (root's Python is root's alone)
    os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[2]))
for folder in sys.argv[1].split(","):
    try:
        Project(folder).scan()
    except CentaurError as error:
        print(error)
    else:
        print("OPENED", folder)
"""


def test_folders_without_permissions_say_so(tmp_path):
    """Real permission errors, seen by a user who is not root: a folder it cannot read, and one it can
    read but not write its .centaur state into."""
    base = Path(tempfile.mkdtemp(prefix="centaur-permissions-"))  # tmp_path is root's alone
    closed, readonly = base / "closed", base / "readonly"
    try:
        for folder in (closed, readonly):
            folder.mkdir()
            shutil.copy(next((EMOJI / "face").glob("*.png")), folder / "a.png")
        base.chmod(0o755)
        closed.chmod(0o000)
        readonly.chmod(0o555)
        argv = [sys.executable, "-c", UNREADABLE, f"{closed},{readonly}"]
        if os.geteuid() == 0:
            argv.append(str(pwd.getpwnam("nobody").pw_uid))
        src = str(Path(__file__).resolve().parents[1] / "src")
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=src))
        lines = result.stdout.splitlines()
        assert result.returncode == 0 and len(lines) == 2, result.stderr
        assert "no permission to read folder" in lines[0]
        assert "cannot write the workbench's state" in lines[1] and "--store" in lines[1]
    finally:
        for folder in (closed, readonly):
            folder.chmod(0o755)
        shutil.rmtree(base)


def test_a_folder_open_in_one_workbench_cannot_be_opened_in_another(folder):
    first = Project(folder, size=96)
    with pytest.raises(CentaurError, match="already open in another workbench"):
        Project(folder, size=96)
    first.close()
    Project(folder, size=96).close()  # closed, the folder is free again


def test_a_team_keeps_its_labels_in_postgresql(folder, postgres_server):
    """--store postgresql://...: the same workbench API, with the labels in a PostgreSQL schema."""
    import psycopg  # installed with the dev set-up; the postgres_server fixture skips without it
    schema = "workbench_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres_server + "/postgres", autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    url = f"{postgres_server}/postgres?options=-csearch_path%3D{schema}"
    (folder / ".centaur" / "labels.sqlite").unlink()  # the copied folder's own store: not used now
    project = Project(folder, store=url, size=96)
    project.scan()
    project.embed()
    with TestClient(create_app(project, background=False)) as c:
        kinds = _ids_by_kind(c)
        c.post("/api/labels", json={"ids": kinds["face"], "label": "face", "how": "lasso"})
        c.post("/api/labels", json={"ids": kinds["animal"], "label": "animal"})
        assert c.post("/api/train").json()["num_labeled"] == 24
    project.close()
    assert not (folder / ".centaur" / "labels.sqlite").exists()
    again = Project(folder, store=url, size=96)
    with TestClient(create_app(again, background=False)) as c:
        assert c.get("/api/project").json()["labels"] == {"animal": 12, "face": 12}
        assert c.post("/api/undo").json()["labels"] == {"face": 12}
    again.close()
