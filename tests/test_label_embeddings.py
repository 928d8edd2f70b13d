"""The workbench's embeddings: the pretrained network's vectors at three depths for real emoji,
and the on-disk cache that keeps them across restarts, crashes and added images."""
import json
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from centaur.core.errors import CentaurError
from centaur.label import embeddings
from centaur.label.embeddings import LAYERS, EmbeddingCache, Embedder, embed_missing

from conftest import EMOJI, write_bad_files

CLASSES = ("animal", "food", "transport")  # things, not faces or flags: the pixels alone do poorly here


@pytest.fixture(scope="module")
def embedder():
    return Embedder("lite0", size=160)


@pytest.fixture(scope="module")
def emoji_items():
    files = [f for cls in CLASSES for f in sorted((EMOJI / cls).glob("*.png"))]
    labels = np.array([CLASSES.index(f.parent.name) for f in files])
    return [(i + 100, str(f)) for i, f in enumerate(files)], labels


@pytest.fixture(scope="module")
def embedded(embedder, emoji_items, tmp_path_factory):
    """The three classes embedded once through embed_missing, as the workbench does."""
    items, labels = emoji_items
    cache = EmbeddingCache(tmp_path_factory.mktemp("project") / ".centaur" / "embeddings", embedder.meta)
    calls = []
    errors = embed_missing(cache, embedder, items, batch_size=32, progress=lambda d, t: calls.append((d, t)))
    return cache, errors, calls


class CountingEmbedder:
    """An Embedder that counts the images it embeds (to see what embed_missing recomputes)."""

    def __init__(self, embedder):
        self.embedder, self.meta, self.embedded = embedder, embedder.meta, 0

    def load(self, path):
        return self.embedder.load(path)

    def embed_batch(self, images):
        self.embedded += len(images)
        return self.embedder.embed_batch(images)


def fake_vectors(n, seed=0, dims=(4, 6, 8)):
    rng = np.random.default_rng(seed)
    return {layer: rng.standard_normal((n, d)).astype(np.float32) for layer, d in zip(LAYERS, dims)}


META = {"arch": "lite0", "size": 160, "weights": "test", "dims": {"early": 4, "middle": 6, "last": 8}}


def chunk_files(folder):
    return sorted(Path(folder).glob("chunk-*.npz"))


def png_header(width, height):
    """A PNG that claims width x height pixels but holds almost no data (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


# --- the embedder --------------------------------------------------------------------------------

def test_embedder_cuts_three_depths_and_describes_them(embedder):
    assert embedder.meta["dims"] == {"early": 40, "middle": 112, "last": 1280}
    assert embedder.meta["layers"] == {"early": "blocks.2", "middle": "blocks.4", "last": "conv_head"}
    assert json.loads(json.dumps(embedder.meta)) == embedder.meta  # saved beside the cache as JSON
    assert embedder.meta["mean"] == [0.5, 0.5, 0.5] and embedder.meta["size"] == 160
    image = embedder.load(EMOJI / "animal" / "bear.png")
    assert image.dtype == torch.uint8 and image.shape == (3, 160, 160)
    out = embedder.embed_batch(torch.stack([image, image.flip(-1)]))
    assert list(out) == list(LAYERS)
    assert all(v.dtype == np.float32 and v.shape == (2, embedder.meta["dims"][k]) for k, v in out.items())
    assert (out["last"] >= 0).all()  # after ReLU6: pooled activations are never negative


def test_embedder_agrees_with_the_unfolded_float32_network(embedder):
    """Folding BatchNorm and bfloat16 change the vectors only slightly: same images, same directions."""
    from centaur.models.backbones import create_backbone
    from centaur.models.heads import body_of
    images = torch.stack([embedder.load(f) for f in sorted((EMOJI / "food").glob("*.png"))[:8]])
    with torch.inference_mode():
        reference = body_of(create_backbone("lite0")[0]).eval()((images.float() / 255 - 0.5) / 0.5).mean((2, 3))
    cosine = F.cosine_similarity(torch.from_numpy(embedder.embed_batch(images)["last"]), reference, dim=1)
    assert cosine.min() > 0.99


def test_embed_batch_refuses_the_wrong_input(embedder):
    with pytest.raises(CentaurError, match=r"uint8 tensor \(B, 3, 160, 160\).*got torch.float32"):
        embedder.embed_batch(torch.zeros(2, 3, 160, 160))
    with pytest.raises(CentaurError, match=r"got torch.uint8 \(2, 3, 96, 96\)"):
        embedder.embed_batch(torch.zeros(2, 3, 96, 96, dtype=torch.uint8))
    with pytest.raises(CentaurError, match="size must be an int"):
        Embedder(size=7)


def test_last_layer_separates_the_classes(embedded, embedder, emoji_items):
    """Nearest neighbours in the last layer share their class far more often than chance (1/3)
    and than nearest neighbours by pixels."""
    cache, errors, _ = embedded
    items, labels = emoji_items
    assert errors == {}
    ids, vectors = cache.load()
    assert sorted(ids.tolist()) == [i for i, _ in items]
    order = np.argsort(ids)  # ids were given in file order
    def nearest_neighbour_accuracy(x):
        x = F.normalize(torch.as_tensor(x, dtype=torch.float32), dim=1)
        similarity = x @ x.T
        similarity.fill_diagonal_(-2)
        return float((labels[similarity.argmax(1).numpy()] == labels).mean())
    last = nearest_neighbour_accuracy(vectors["last"][order])
    pixels = nearest_neighbour_accuracy(torch.stack(
        [F.interpolate(embedder.load(p)[None].float(), size=(32, 32), mode="area")[0].flatten() for _, p in items]))
    assert last >= 0.75, last
    assert last >= pixels + 0.08, (last, pixels)
    for layer in LAYERS:
        assert nearest_neighbour_accuracy(vectors[layer][order]) > 0.55, layer


def test_progress_reports_every_batch(embedded, emoji_items):
    _, _, calls = embedded
    total = len(emoji_items[0])
    assert calls[-1] == (total, total)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls) and len(calls) == -(-total // 32)


# --- embed_missing --------------------------------------------------------------------------------

def test_only_added_images_are_embedded_and_a_restart_reloads(embedder, emoji_items, tmp_path):
    items = emoji_items[0][:24]
    counting = CountingEmbedder(embedder)
    cache = EmbeddingCache(tmp_path / "embeddings", embedder.meta)
    embed_missing(cache, counting, items[:10], batch_size=8)
    assert counting.embedded == 10 and len(cache) == 10
    calls = []
    embed_missing(cache, counting, items, batch_size=8, progress=lambda d, t: calls.append((d, t)))
    assert counting.embedded == 24 and calls == [(8, 14), (14, 14)]  # only the 14 new ones
    ids, vectors = cache.load()

    reopened = EmbeddingCache(tmp_path / "embeddings", embedder.meta)  # the workbench restarted
    assert reopened.ids() == {i for i, _ in items}
    embed_missing(reopened, counting, items, batch_size=8)
    assert counting.embedded == 24  # nothing recomputed
    ids2, vectors2 = reopened.load()
    np.testing.assert_array_equal(ids, ids2)
    assert all(np.array_equal(vectors[k], vectors2[k]) for k in LAYERS)


def test_a_changed_embedder_starts_the_cache_over(embedder, emoji_items, tmp_path):
    items = emoji_items[0][:6]
    cache = EmbeddingCache(tmp_path / "embeddings", embedder.meta)
    embed_missing(cache, embedder, items)
    old_files = chunk_files(tmp_path / "embeddings")
    assert old_files and len(cache) == 6
    other = Embedder("lite0", size=96)
    stale = EmbeddingCache(tmp_path / "embeddings", other.meta)
    assert len(stale) == 0 and not any(f.exists() for f in old_files)
    assert json.loads((tmp_path / "embeddings" / "meta.json").read_text())["size"] == 96
    counting = CountingEmbedder(other)
    embed_missing(stale, counting, items)
    assert counting.embedded == 6
    assert stale.load()[1]["last"].shape == (6, 1280)


def test_bad_images_are_reported_not_raised(embedder, emoji_items, tmp_path):
    bad = write_bad_files(tmp_path / "bad")
    bomb = tmp_path / "bad" / "huge.png"
    bomb.write_bytes(png_header(7000, 7000))  # 49 megapixels: over centaur's 40 MP limit
    good = emoji_items[0][:3]
    items = good + [(1, str(bad["truncated"])), (2, str(bad["junk"])), (3, str(bomb)), (4, str(tmp_path / "gone.png"))]
    cache = EmbeddingCache(tmp_path / "embeddings", embedder.meta)
    errors = embed_missing(cache, embedder, items, batch_size=4)
    assert sorted(errors) == [1, 2, 3, 4]
    assert "truncated" in errors[1] and "more than the limit" in errors[3] and "no such file" in errors[4]
    assert cache.ids() == {i for i, _ in good}


def test_stop_event_ends_between_batches(embedder, emoji_items, tmp_path):
    stop = threading.Event()
    calls = []
    def progress(done, total):
        calls.append(done)
        stop.set()  # the user closed the workbench while the first batch ran
    cache = EmbeddingCache(tmp_path / "embeddings", embedder.meta)
    embed_missing(cache, embedder, emoji_items[0][:20], batch_size=4, progress=progress, stop=stop)
    assert calls == [4] and len(cache) == 4


# --- the cache on disk ---------------------------------------------------------------------------

def test_cache_round_trip_float16_on_disk_float32_out(tmp_path):
    cache = EmbeddingCache(tmp_path / "e", META)
    assert len(cache) == 0 and cache.load()[1]["last"].shape == (0, 8)
    vectors = fake_vectors(5)
    cache.add([3, 1, 4, 15, 9], vectors)
    ids, loaded = cache.load()
    assert ids.dtype == np.int64 and ids.tolist() == [3, 1, 4, 15, 9]
    for layer in LAYERS:
        assert loaded[layer].dtype == np.float32
        np.testing.assert_allclose(loaded[layer], vectors[layer], rtol=1e-3, atol=1e-3)
    with np.load(chunk_files(tmp_path / "e")[0], allow_pickle=False) as npz:
        assert npz["last"].dtype == np.float16
    assert json.loads((tmp_path / "e" / "meta.json").read_text()) == META


def test_later_chunk_wins_for_a_repeated_id(tmp_path):
    cache = EmbeddingCache(tmp_path / "e", META)
    first, second = fake_vectors(3, seed=1), fake_vectors(2, seed=2)
    cache.add([1, 2, 3], first)
    cache.add([2, 7], second)
    ids, loaded = cache.load()
    assert ids.tolist() == [1, 3, 2, 7] and len(cache) == 4
    np.testing.assert_allclose(loaded["last"][2], second["last"][0], atol=1e-2)


def test_small_chunks_are_merged_and_nothing_is_lost(tmp_path):
    cache = EmbeddingCache(tmp_path / "e", META)
    expected = {}
    for i in range(40):  # 40 batches of 2, ids repeating so later batches overwrite earlier ones
        vectors = fake_vectors(2, seed=i)
        ids = [i % 25, 100 + i]
        cache.add(ids, vectors)
        for row, image_id in enumerate(ids):
            expected[image_id] = vectors["last"][row]
    assert len(chunk_files(tmp_path / "e")) < 16
    ids, loaded = EmbeddingCache(tmp_path / "e", META).load()
    assert sorted(ids.tolist()) == sorted(expected)
    for row, image_id in enumerate(ids.tolist()):
        np.testing.assert_allclose(loaded["last"][row], expected[image_id], atol=1e-2)


def test_merging_never_revives_an_overwritten_vector(tmp_path):
    """An old small chunk merged after a newer large one must not bring back the old vector."""
    cache = EmbeddingCache(tmp_path / "e", META)
    old, new = fake_vectors(1, seed=1), fake_vectors(20, seed=2)
    cache.add([999], old)  # chunk 1, small
    cache.add([999] + list(range(19)), new)  # chunk 2, a larger tier: image 999 embedded again
    for i in range(15):  # chunks 3-17: with chunk 1 that is 16 small chunks, merged into number 17
        cache.add([1000 + i], fake_vectors(1, seed=10 + i))
    assert len(chunk_files(tmp_path / "e")) == 2
    ids, loaded = cache.load()
    np.testing.assert_allclose(loaded["last"][ids.tolist().index(999)], new["last"][0], atol=1e-2)
    assert len(ids) == len(set(ids.tolist())) == 35


def test_a_crash_mid_write_leaves_no_half_chunk(tmp_path, monkeypatch):
    cache = EmbeddingCache(tmp_path / "e", META)
    cache.add([1], fake_vectors(1))
    def savez_then_crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip file")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(embeddings.np, "savez", savez_then_crash)
    with pytest.raises(CentaurError, match="No space left on device.*free disk space"):
        cache.add([2], fake_vectors(1))
    monkeypatch.undo()
    assert len(chunk_files(tmp_path / "e")) == 1 and not list((tmp_path / "e").glob(".tmp-*"))
    (tmp_path / "e" / ".tmp-99-1-chunk-000002.npz").write_bytes(b"killed before os.replace")
    reopened = EmbeddingCache(tmp_path / "e", META)
    assert reopened.ids() == {1} and not list((tmp_path / "e").glob(".tmp-*"))


def test_no_pickle_is_ever_loaded(tmp_path):
    """A cache folder may come from elsewhere (a shared project): a chunk holding pickled objects
    is refused (np.load allow_pickle=False) and dropped, so its images are embedded again."""
    cache = EmbeddingCache(tmp_path / "e", META)
    cache.add([1, 2], fake_vectors(2))
    planted = tmp_path / "e" / "chunk-000009.npz"
    np.savez(planted, ids=np.array([5], dtype=object), last=np.array([[{"code": "run me"}]], dtype=object))
    damaged = tmp_path / "e" / "chunk-000010.npz"
    damaged.write_bytes(chunk_files(tmp_path / "e")[0].read_bytes()[:50])  # cut off mid-file
    reopened = EmbeddingCache(tmp_path / "e", META)
    assert reopened.ids() == {1, 2} and not planted.exists() and not damaged.exists()
    assert reopened.load()[0].tolist() == [1, 2]
    for path in chunk_files(tmp_path / "e"):
        with np.load(path, allow_pickle=False) as npz:
            assert all(npz[name].dtype != object for name in npz.files)


def test_cache_refuses_mismatched_vectors(tmp_path):
    cache = EmbeddingCache(tmp_path / "e", META)
    with pytest.raises(CentaurError, match=r"layer 'last' must be \(2, D\) for 2 ids, got shape \(3, 8\)"):
        cache.add([1, 2], {"last": np.zeros((3, 8))})
