"""`centaur label` as a real process on loopback: killed without warning mid-work, started again,
it has lost no label, no undo step and no embedding."""
import json
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request

from conftest import EMOJI


def _start(folder):
    proc = subprocess.Popen([sys.executable, "-m", "centaur.cli", "label", str(folder), "--no-browser", "--size", "96"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = proc.stderr.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
    assert match, line + (proc.stderr.read() if proc.poll() is not None else "")
    return proc, match.group(1)


def _call(url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, headers={"Content-Type": "application/json"},
                                     method="GET" if body is None else "POST")
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.load(r)


def _wait_until_embedded(url, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        summary = _call(url, "api/project")
        if summary["progress"]["state"] == "ready":
            return summary
        time.sleep(0.3)
    raise AssertionError("the workbench never finished embedding")


def _photos(tmp_path):
    """A folder of 10 animal and 10 food emoji, loose, as a person's unlabeled photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for kind in ("animal", "food"):
        for f in sorted((EMOJI / kind).glob("*.png"))[:10]:
            shutil.copy(f, folder / f"{kind}_{f.name}")
    return folder


def test_a_killed_workbench_loses_nothing(tmp_path):
    folder = _photos(tmp_path)
    proc, url = _start(folder)
    try:
        _wait_until_embedded(url)
        images = _call(url, "api/images")
        animals = [i for i, p in zip(images["ids"], images["paths"]) if p.startswith("animal")]
        foods = [i for i, p in zip(images["ids"], images["paths"]) if p.startswith("food")]
        _call(url, "api/labels", {"ids": animals, "label": "animal", "how": "lasso"})
        _call(url, "api/labels", {"ids": foods[:4], "label": "food"})
        _call(url, "api/labels", {"ids": foods[4:], "label": "food"})
        _call(url, "api/undo", {})
    finally:
        proc.send_signal(signal.SIGKILL)  # no shutdown, no flush: what a power cut does to the process
        proc.wait(timeout=30)

    proc, url = _start(folder)
    try:
        summary = _call(url, "api/project")
        assert summary["labels"] == {"animal": 10, "food": 4}
        _wait_until_embedded(url)
        assert _call(url, "api/project")["progress"]["total"] == 0  # every embedding was on disk
        assert _call(url, "api/redo", {})["labels"] == {"animal": 10, "food": 10}  # the undone step too
        assert _call(url, "api/undo", {})["labels"] == {"animal": 10, "food": 4}
        assert _call(url, "api/undo", {})["labels"] == {"animal": 10}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_ctrl_c_stops_at_once_while_a_layout_is_computing(tmp_path):
    folder = _photos(tmp_path)
    proc, url = _start(folder)
    _wait_until_embedded(url)
    ids = _call(url, "api/images")["ids"]
    _call(url, "api/labels", {"ids": ids[:3], "label": "animal"})
    answered = []

    def ask_for_umap():  # a page asking for a new layout; UMAP's first run compiles for seconds
        try:
            with urllib.request.urlopen(url + "api/layout?layer=last&method=umap", timeout=60) as r:
                answered.append(r.status)
        except Exception as e:
            answered.append(repr(e))

    asking = threading.Thread(target=ask_for_umap)
    asking.start()
    time.sleep(0.5)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    status = proc.wait(timeout=60)
    stopped_in = time.monotonic() - start
    asking.join()
    err = proc.stderr.read()
    assert status == 130 and "stopped by Ctrl-C." in err
    assert "Traceback" not in err and "ERROR" not in err, err  # a cut-off layout is expected, not an error
    assert stopped_in < 8, (stopped_in, answered)  # it waited for UMAP to finish: 10 s and more

    proc, url = _start(folder)
    try:
        assert _call(url, "api/project")["labels"] == {"animal": 3}
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
