"""Helpers for the service tests: a TestClient on a model directory, images to upload."""
import io

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
