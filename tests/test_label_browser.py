"""The workbench in a real browser (headless Chromium) against `centaur label` on loopback: lasso a
cluster, leave out the odd ones, label it, find similar, train, switch views, undo, export."""
import json
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from conftest import EMOJI, ROOT

KINDS = ("animal", "face", "food")
PER_KIND = 15


@pytest.fixture
def workbench(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for kind in KINDS:
        for f in sorted((EMOJI / kind).glob("*.png"))[:PER_KIND]:
            shutil.copy(f, folder / f"{kind}_{f.name}")
    proc = subprocess.Popen([sys.executable, "-m", "centaur.cli", "label", str(folder), "--no-browser",
                             "--size", "96"], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = proc.stderr.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
    assert match, line + (proc.stderr.read() if proc.poll() is not None else "")
    url = match.group(1)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # embedding runs in the background; wait for it to finish
        with urllib.request.urlopen(url + "api/project", timeout=10) as r:
            if json.load(r)["progress"]["state"] == "ready":
                break
        time.sleep(0.3)
    else:
        proc.kill()
        raise AssertionError("the workbench never finished embedding")
    yield folder, url
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _lasso(page, center, radius, steps=24):
    """Drag the mouse around a circle on the canvas, as a person drawing a lasso."""
    box = page.locator("#canvas").bounding_box()
    points = [(box["x"] + center[0] + radius * np.cos(a), box["y"] + center[1] + radius * np.sin(a))
              for a in np.linspace(0, 2 * np.pi, steps)]
    page.mouse.move(*points[0])
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*p)
    page.mouse.up()
    return points


def _screen_positions(page, ids):
    return {i: page.evaluate(f"window.centaur.screenPosition({i})") for i in ids}


def test_lasso_label_similar_train_undo_export(browser, workbench):
    folder, url = workbench
    images = _get(url + "api/images")
    kind_of = {i: p.split("_")[0] for i, p in zip(images["ids"], images["paths"])}
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    page.wait_for_function("window.centaur && window.centaur.ready && window.centaur.state.screen")
    page.fill("#author", "Zoë")  # who labels: recorded with each label, and undo takes back her own actions
    page.dispatch_event("#author", "change")

    # lasso the densest part of the faces: a circle around their median position
    positions = _screen_positions(page, images["ids"])
    faces = np.array([positions[i] for i in images["ids"] if kind_of[i] == "face"])
    center = np.median(faces, axis=0)
    radius = float(np.sort(np.linalg.norm(faces - center, axis=1))[PER_KIND // 2]) + 4
    _lasso(page, center, radius)
    inside = [i for i, (x, y) in positions.items() if np.hypot(x - center[0], y - center[1]) < radius - 3]
    selected = page.locator("#grid img").count()
    assert selected >= len(inside) >= 3, (selected, len(inside))
    # leave out the odd ones: click every selected image that is not a face
    for row in page.evaluate("[...window.centaur.state.selection]"):
        if kind_of[images["ids"][row]] != "face":
            page.click(f"#grid img[data-row='{row}']")
    chosen = page.locator("#grid img").count()
    page.fill("#label-input", "face")
    page.click("#label-apply")
    page.wait_for_selector("#message.ok")
    assert f"labeled {chosen} images" in page.text_content("#message")
    summary = _get(url + "api/project")
    assert summary["labels"] == {"face": chosen}

    # find similar to a lassoed animal cluster, then label the proposals
    animals = np.array([positions[i] for i in images["ids"] if kind_of[i] == "animal"])
    center = np.median(animals, axis=0)
    _lasso(page, center, float(np.sort(np.linalg.norm(animals - center, axis=1))[4]) + 4)
    page.click("#similar")
    page.wait_for_function("window.centaur.state.candidates !== null")
    proposed = page.evaluate("window.centaur.state.candidates.map(r => window.centaur.state.ids[r])")
    labeled = {i for i, k in zip(images["ids"], _get(url + "api/images")["labels"]) if k >= 0}
    assert proposed and not set(proposed) & labeled  # unlabeled images only
    selected = page.evaluate("[...window.centaur.state.selection].map(r => window.centaur.state.ids[r])")
    pool = [i for i in images["ids"] if i not in labeled and i not in selected]
    base_rate = np.mean([kind_of[i] == "animal" for i in pool])
    top = np.mean([kind_of[i] == "animal" for i in proposed[:8]])
    assert top > base_rate + 0.2, (top, base_rate, [kind_of[i] for i in selected])  # best first
    for i in proposed:
        if kind_of[i] != "animal":
            page.click(f"#grid img[data-row='{images['ids'].index(i)}']")
    page.fill("#label-input", "animal")
    page.click("#label-apply")
    page.wait_for_function("document.querySelector('#message').textContent.includes('\"animal\"')")
    box = page.locator("#message").bounding_box()  # the message is where it can be read, not below the panel
    assert box and 0 <= box["y"] and box["y"] + box["height"] <= 860, box
    counts = _get(url + "api/project")["labels"]
    assert counts["animal"] >= 2 and counts["face"] == chosen

    # train, fade, switch layer and projection from the keyboard
    page.click("#train")
    page.wait_for_function("document.querySelector('#model-info').textContent.includes('accuracy')")
    assert "95% CI" in page.text_content("#model-info")
    # the predictions become labels only through a person: select what it predicts as a face, check
    page.select_option("#predicted-class", "face")
    page.click("#accept")
    rows = page.evaluate("[...window.centaur.state.selection]")
    predicted = page.evaluate("Array.from(window.centaur.state.predicted)")
    classes = page.evaluate("window.centaur.state.classes")
    now_labeled = _get(url + "api/images")["labels"]
    assert rows and all(classes[predicted[r]] == "face" and now_labeled[r] < 0 for r in rows)
    assert page.input_value("#label-input") == "face"
    unlabeled = [r for r, k in enumerate(now_labeled) if k < 0]
    share = np.mean([kind_of[images["ids"][r]] == "face" for r in rows])
    assert share > np.mean([kind_of[images["ids"][r]] == "face" for r in unlabeled]), share
    page.click("#clear")
    page.fill("#label-input", "")
    page.check("#fade")
    # faded: the unlabeled images the model predicts at least as surely as the server's threshold
    served = _get(url + "api/predictions")
    labels_now = _get(url + "api/images")["labels"]
    expected = [r for r, c in enumerate(served["confidence"]) if labels_now[r] < 0 and c >= served["fade_threshold"]]
    shown = page.evaluate("window.centaur.state.ids.map((_, i) => window.centaur.faded(i) ? i : -1)"
                          ".filter((i) => i >= 0)")
    assert shown == expected and expected, (len(shown), len(expected))
    layer = page.text_content("#layer")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(f"document.querySelector('#layer').textContent !== '{layer}'")
    page.keyboard.press("ArrowDown")
    page.wait_for_function("document.querySelector('#method').textContent !== 'pca'")
    assert page.text_content("#method") in ("umap", "lda")

    # undo the last bulk action as a whole
    page.keyboard.press("Control+z")
    page.wait_for_function("document.querySelector('#message').textContent.startsWith('undid')")
    assert _get(url + "api/project")["labels"] == {"face": chosen}

    page.click("#export")
    page.wait_for_function("document.querySelector('#export-info').textContent.includes('labels')")
    assert (folder / ".centaur" / "export" / "labels.csv").is_file()
    records = json.loads((folder / ".centaur" / "export" / "labels.json").read_text())
    assert records["labels"] and {r["author"] for r in records["labels"]} == {"Zoë"}
    assert len(list((folder / ".centaur" / "export" / "classes" / "face").iterdir())) == chosen

    # the page fits the window: no sideways scrolling, the map ends at the bottom edge
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    box = page.locator("#canvas").bounding_box()
    assert box["y"] + box["height"] <= 860 + 1, box
    shots = ROOT / "runs" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "workbench.png"))
    assert not errors, errors
