"""How many actions the workbench saves: a simulated person labels data/emoji (373 real images, 6
classes, the folder names as the truth) by lassoing clusters of the layout, clicking away the odd
ones out and using "find similar", until 90% of the images carry their right label; compared
with labeling one image at a time (one action per image)."""
import numpy as np
import pytest
import torch

from centaur.core.errors import CentaurError
from centaur.label.embeddings import Embedder
from centaur.label.simulate import simulate_cluster_labeling

from conftest import EMOJI


@pytest.fixture(scope="module")
def emoji_vectors():
    """Last-layer vectors of every image in data/emoji at 96 px, and each image's class folder."""
    files = sorted(f for folder in sorted(EMOJI.iterdir()) if folder.is_dir() for f in folder.glob("*.png"))
    embedder = Embedder("lite0", size=96)
    vectors = [embedder.embed_batch(torch.stack([embedder.load(f) for f in files[i:i + 64]]))["last"]
               for i in range(0, len(files), 64)]
    return np.concatenate(vectors), np.array([f.parent.name for f in files])


def _show(name, result):
    print(f"\n{name}: {result['actions']} actions to label {result['labeled']} of {result['images']} images "
          f"(one at a time: {result['one_at_a_time']}), ratio {result['ratio']:.2f}, moves {result['moves']}")


def test_cluster_labeling_needs_fewer_than_half_the_actions(emoji_vectors):
    vectors, truth = emoji_vectors
    assert len(vectors) == 373 and len(set(truth)) == 6
    full = simulate_cluster_labeling(vectors, truth, target=0.9)
    lasso_only = simulate_cluster_labeling(vectors, truth, target=0.9, similar=False, separate=False)
    trained = simulate_cluster_labeling(vectors, truth, target=0.9, predicted=True)
    _show("lasso, find similar, LDA", full)
    _show("lasso on the PCA layout only", lasso_only)
    _show("lasso, find similar, LDA, select predicted", trained)
    for result in (full, lasso_only, trained):
        assert result["labeled"] >= 0.9 * 373
        assert result["one_at_a_time"] == 336  # ceil(0.9 x 373)
        # every action counted: at least a lasso and a key press per move, plus each click away
        moves = result["moves"]
        assert result["actions"] == (2 * (moves["lasso"] + moves["single"]) + 3 * moves["similar"]
                                     + 4 * moves["prediction"] + moves["clicks_away"] + moves["switch"])
    # The question: cluster labeling reaches 90% in fewer than half the actions.
    assert full["actions"] < 0.5 * full["one_at_a_time"], full["moves"]
    # Lassoing alone saves less; "find similar" picks up what the 2D layout scatters.
    assert lasso_only["actions"] < 0.7 * lasso_only["one_at_a_time"]
    assert full["actions"] < lasso_only["actions"]
    assert full["moves"]["similar"] > 0
    # Training and checking what it predicts, class by class, saves a little more.
    assert trained["moves"]["prediction"] > 0 and trained["actions"] <= full["actions"]


def test_well_separated_classes_take_a_few_lassos():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 32)) * 10
    truth = np.repeat([0, 1, 2], 50)
    vectors = centres[truth] + rng.normal(size=(150, 32))
    result = simulate_cluster_labeling(vectors, truth, target=0.9, similar=False, separate=False)
    # three clean clusters: a lasso and a key press each, nothing to click away
    assert result["actions"] <= 8 and result["moves"]["clicks_away"] == 0, result["log"]


def test_checks_its_input():
    with pytest.raises(CentaurError, match="one true class per row"):
        simulate_cluster_labeling(np.zeros((5, 3)), [0, 1])
    with pytest.raises(CentaurError, match="target"):
        simulate_cluster_labeling(np.ones((5, 3)), [0, 1, 0, 1, 0], target=1.5)
