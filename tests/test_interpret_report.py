"""The report on a dataset with planted problems: duplicates across the split and flipped labels;
subgroups; bad input; the HTML opened in headless Chromium."""
import io
import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from centaur.core.errors import CentaurError
from centaur.core.images import open_image
from centaur.interpret.data_checks import check_data
from centaur.interpret.predictions import read_split
from centaur.interpret.report import build_report
from centaur.inference import Predictor

from conftest import EMOJI, ROOT, run_centaur

CLASSES = ("animal", "face", "food")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """train/ and valid/ folders of real emoji with 6 duplicates planted across the split (4 resized
    and re-encoded as JPEG, 2 byte-for-byte) and 4 training images filed under a wrong class."""
    root = tmp_path_factory.mktemp("planted") / "data"
    files = {c: sorted((EMOJI / c).glob("*.png")) for c in CLASSES}
    for c in CLASSES:
        for side, chosen in (("train", files[c][:14]), ("valid", files[c][14:19])):
            (root / side / c).mkdir(parents=True, exist_ok=True)
            for f in chosen:
                shutil.copy(f, root / side / c / f.name)
    duplicates = []
    for k, (c, i) in enumerate([("animal", 0), ("face", 1), ("food", 2), ("animal", 3), ("face", 4), ("food", 5)]):
        src = root / "train" / c / files[c][i].name
        if k < 4:  # resized to 80% and saved as JPEG: the same picture, different bytes
            img = open_image(src)
            img = img.resize((int(img.width * 0.8), int(img.height * 0.8)))
            dst = root / "valid" / c / f"copy_{src.stem}.jpg"
            img.save(dst, quality=85)
        else:
            dst = root / "valid" / c / f"copy_{src.name}"
            shutil.copy(src, dst)
        duplicates.append((f"train/{c}/{src.name}", dst.relative_to(root).as_posix()))
    flips = []
    for c, wrong, i in [("animal", "food", 8), ("face", "animal", 9), ("food", "face", 10), ("animal", "face", 11)]:
        src = root / "train" / c / files[c][i].name
        dst = root / "train" / wrong / f"flipped_{src.name}"
        src.rename(dst)
        flips.append(dst.relative_to(root).as_posix())
    out = root.parent / "model"
    result = run_centaur("train", root, "--out", out, "--size", "64", "--epochs", "2", "--bs", "16")
    assert result.returncode == 0, result.stderr
    return root, out, duplicates, flips


def test_planted_duplicates_and_label_flips_are_found(planted):
    root, model_dir, duplicates, flips = planted
    predictor = Predictor(model_dir)
    _, split = read_split(model_dir, root)
    found = check_data(predictor, root, split)
    across = {frozenset((d["a"], d["b"])) for d in found["duplicates"] if d["across_split"]}
    planted_pairs = {frozenset(p) for p in duplicates}
    hits = across & planted_pairs
    flagged = {i["file"] for i in found["label_issues"]}
    flip_hits = flagged & set(flips)
    print(f"duplicates across the split: {len(hits)}/{len(planted_pairs)} planted found, {len(across)} flagged "
          f"(precision {len(hits) / max(1, len(across)):.2f}); label flips: {len(flip_hits)}/{len(flips)} found, "
          f"{len(flagged)} flagged (precision {len(flip_hits) / max(1, len(flagged)):.2f})")
    assert len(hits) == len(planted_pairs)  # every planted duplicate across the split is found
    assert len(hits) / len(across) >= 0.6
    assert len(flip_hits) >= 3  # most flipped labels are found ...
    assert len(flip_hits) / len(flagged) >= 0.3  # ... among a short list a person can review
    suggested = {i["file"]: i["suggested"] for i in found["label_issues"]}
    for f in flip_hits:  # the suggestion is the class the image was taken from
        original = next(c for c in CLASSES if (EMOJI / c / f.split("flipped_", 1)[1]).is_file())
        assert suggested[f] == original


def test_unreadable_files_are_left_out_of_the_data_checks_and_named(planted, tmp_path):
    root, model_dir, _, _ = planted
    broken = tmp_path / "data"
    shutil.copytree(root, broken)
    _, split = read_split(model_dir, broken)
    garbage = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 2  # a PNG signature, then nothing that decodes
    bad_train = [f for f, _ in split["train"][:2]]
    bad_valid = split["valid"][0][0]
    for f in bad_train:
        (broken / f).write_bytes(garbage)  # two copies of one broken file: not two images that leak
    (broken / bad_valid).write_bytes((root / bad_valid).read_bytes()[:200])  # truncated
    found = check_data(Predictor(model_dir), broken, split)
    assert sorted(found["unreadable"]) == sorted(bad_train + [bad_valid])
    assert found["n"] == len(split["train"]) + len(split["valid"]) - 3
    assert not [d for d in found["duplicates"] if {d["a"], d["b"]} & set(found["unreadable"])]
    html = build_report(model_dir, broken).to_html()
    assert "3 files could not be read and are left out" in html and "2 training files could not be read" in html
    assert f"this report read them from {broken}" in html


def test_report_with_groups_renders_in_chromium(planted, tmp_path):
    root, model_dir, _, _ = planted
    _, split = read_split(model_dir, root)
    valid = [f for f, _ in split["valid"]]
    # a camera per image (alternating), a farm by class, plus a stray row that matches nothing
    lines = ["file,camera,farm"] + [f"{f},{'phone' if i % 2 else 'dslr'},{f.split('/')[1]}"
                                    for i, f in enumerate(valid)] + ["valid/nowhere.png,phone,x"]
    groups = tmp_path / "groups.csv"
    groups.write_text("\n".join(lines) + "\n")
    out = tmp_path / "report.html"
    result = run_centaur("report", model_dir, root, "--groups", groups, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "line " + str(len(lines)) in result.stderr and "1 row of groups.csv matches no validation file" in result.stderr
    assert "across the training/validation split" in result.stderr  # the planted leakage is warned about
    html = out.read_text()
    for section in ("Evaluation", "Confusion", "Top losses", "Subgroups", "Data checks", "Model card", "Datasheet",
                    "camera x farm", "too small to judge", "TO BE WRITTEN", "leakage", "95% CI"):
        assert section in html, section
    assert "src=\"http" not in html and "src='http" not in html  # self-contained: every image embedded
    from conftest import CHROMIUM, FLAGS
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CENTAUR_REQUIRE_BROWSER"):
            pytest.fail("no Chromium for the report test")
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(out.as_uri())
        assert page.locator("h2").count() >= 7
        broken = page.evaluate("[...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).length")
        assert broken == 0 and page.evaluate("document.images.length") > 10
        shots = ROOT / "runs" / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(shots / "report.png"), full_page=True)
        browser.close()


def test_report_names_each_interval_and_says_how_to_split_images_by_group(planted, tmp_path):
    root, model_dir, _, _ = planted
    randomly = tmp_path / "model"  # the same model, as if its validation images had been drawn at random
    shutil.copytree(model_dir, randomly)
    meta = json.loads((randomly / "model.json").read_text())
    meta["provenance"]["split"] = "random"
    (randomly / "model.json").write_text(json.dumps(meta))
    _, split = read_split(model_dir, root)
    groups = tmp_path / "groups.csv"
    groups.write_text("file,camera\n" + "".join(f"{f},{'phone' if i % 2 else 'dslr'}\n"
                                                 for i, (f, _) in enumerate(split["valid"])))
    report = build_report(randomly, root, groups=groups, checks=False)
    html = " ".join(report.to_html().split())
    n = len(split["valid"])
    assert f"{n} validation images (random split)" in html
    assert "Wilson score intervals for accuracy and error rate" in html and "percentile bootstraps" in html
    assert "Newcombe" in html
    assert "Split by group: move each group's images, whole, into train/ or valid/" in html
    assert "percentile bootstraps over the validation images.</p>" not in html  # not for every figure


def test_report_bad_input(planted, tmp_path):
    root, model_dir, _, _ = planted
    no_split = tmp_path / "old_model"
    shutil.copytree(model_dir, no_split)
    (no_split / "split.json").unlink()
    result = run_centaur("report", no_split, root)
    assert result.returncode == 2 and "no validation set recorded" in result.stderr
    one_value = tmp_path / "one.csv"
    _, split = read_split(model_dir, root)
    one_value.write_text("file,farm\n" + "".join(f"{f},north\n" for f, _ in split["valid"]))
    with pytest.raises(CentaurError, match="two or more groups"):
        build_report(model_dir, root, groups=one_value, checks=False)
    nothing = tmp_path / "nothing.csv"
    nothing.write_text("file,farm\nsomewhere/else.png,north\nother.png,south\n")
    with pytest.raises(CentaurError, match="line 2"):
        build_report(model_dir, root, groups=nothing, checks=False)
    wrong_col = tmp_path / "wrong.csv"
    wrong_col.write_text("files,farm\na.png,north\n")
    with pytest.raises(CentaurError, match="Did you mean"):
        build_report(model_dir, root, groups=wrong_col, checks=False)
    result = run_centaur("report", model_dir, tmp_path / "moved")
    assert result.returncode == 2 and "does not exist" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_centaur("report", model_dir, empty)
    assert result.returncode == 2 and "none of the" in result.stderr
