"""Helpers for the service tests: a TestClient or a real server on a model directory, images to upload."""
import io
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

from fastapi.testclient import TestClient
from PIL import Image

from centaur.serve.app import create_app
from centaur.serve.settings import ServeSettings

from conftest import EMOJI


def client(model_dir, tmp_path, **settings):
    """A TestClient for the service (enter it with `with` to run the lifespan: model load)."""
    settings.setdefault("feedback_db", tmp_path / "feedback.sqlite")
    return TestClient(create_app(ServeSettings(model_dir=model_dir, **settings)))


def png_bytes(cls="animal", idx=0):
    return sorted((EMOJI / cls).glob("*.png"))[idx].read_bytes()


def bomb_png(side=20_000):
    """A PNG whose header says side x side pixels (400 MP) in a few hundred KB: a decompression bomb."""
    buf = io.BytesIO()
    Image.new("1", (side, side)).save(buf, format="PNG")
    return buf.getvalue()


def start_server(*args):
    """Start `centaur serve ... --port 0`; returns (process, base URL) once it answers /ready."""
    proc = subprocess.Popen([sys.executable, "-m", "centaur.cli", "serve", *map(str, args), "--port", "0"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = proc.stderr.readline()
    match = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
    assert match, line + proc.stderr.read() if proc.poll() is not None else line
    url = match.group(1)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "ready", timeout=5) as r:
                if r.status == 200:
                    return proc, url
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the server never became ready")
