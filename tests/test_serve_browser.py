"""The service's web page in a real browser (headless Chromium): upload, prediction, heatmap, contest."""
import signal
import sqlite3

import pytest

from conftest import EMOJI, ROOT
from serve_helpers import start_server
from test_serve_table import table_model  # noqa: F401 (a fixture)


@pytest.mark.parametrize("viewport", [{"width": 1280, "height": 900}, {"width": 390, "height": 844}],
                         ids=["desktop", "phone"])
def test_upload_see_prediction_and_heatmap_then_contest_it(browser, tiny_model, tmp_path, viewport):
    db = tmp_path / "feedback.sqlite"
    proc, url = start_server(tiny_model, "--feedback-db", db)
    try:
        page = browser.new_page(viewport=viewport)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        page.wait_for_selector("#image-input:not(.hidden)")
        assert "3 classes" in page.text_content("#about")
        image = sorted((EMOJI / "food").glob("*.png"))[0]
        page.set_input_files("#file", str(image))
        page.wait_for_selector("#result:not(.hidden)")
        label = page.text_content("#label")
        assert label in ("animal", "face", "food")
        assert page.locator("#bars .bar").count() == 3
        page.wait_for_function("document.getElementById('heatmap').naturalWidth > 0")
        assert page.evaluate("document.getElementById('heatmap').src").startswith("data:image/png;base64,")
        # the page fits a phone: nothing wider than the screen
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]

        page.click("#contest-open")
        other = next(c for c in ("animal", "face", "food") if c != label)
        page.select_option("#correct", other)
        page.fill("#comment", "this is a slice of pizza")
        page.click("#contest-send")
        page.wait_for_selector("#contest-status.ok")
        assert "saved as case 1" in page.text_content("#contest-status")
        shots = ROOT / "runs" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / f"serve_page_{viewport['width']}.png"), full_page=True)
        assert not errors, errors
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    row = sqlite3.connect(db).execute("SELECT correct, comment, input FROM feedback").fetchone()
    assert row[0] == f'"{other}"' and row[1] == "this is a slice of pizza" and row[2] == image.read_bytes()


def test_a_table_model_gets_a_form_of_its_columns(browser, table_model, tmp_path):
    model_dir, _ = table_model
    proc, url = start_server(model_dir, "--feedback-db", tmp_path / "feedback.sqlite")
    try:
        page = browser.new_page(viewport={"width": 390, "height": 844})
        page.goto(url)
        page.wait_for_selector("#row-input:not(.hidden)")
        assert page.locator("#fields input").count() == 3  # day, shop, size: not the date's parts
        assert page.get_attribute("#col-day", "type") == "date"
        page.fill("#col-day", "2025-03-01")
        page.fill("#col-shop", "east")
        page.fill("#col-size", "4.5")
        page.click("#row-input button[type=submit]")
        page.wait_for_selector("#result:not(.hidden)")
        assert float(page.text_content("#label")) > 0
        assert page.is_hidden("#pics")  # no image, no heatmap
        page.click("#contest-open")
        page.fill("#correct-value", "31.5")
        page.click("#contest-send")
        page.wait_for_selector("#contest-status.ok")
        page.screenshot(path=str(ROOT / "runs" / "screenshots" / "serve_table_390.png"), full_page=True)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    row = sqlite3.connect(tmp_path / "feedback.sqlite").execute("SELECT correct, input FROM feedback").fetchone()
    assert row[0] == "31.5" and '"shop": "east"' in row[1].decode()
