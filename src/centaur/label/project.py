"""A labeling project: a folder of images, its label store, its cached embeddings, and what the
machine has learned from the labels so far.

Everything the workbench knows lives in the folder's `.centaur/` (or a store given elsewhere):
labels and their undo history in SQLite, embeddings as chunk files, thumbnails, the last trained
head's predictions. Stop the server at any moment and start it again: nothing is lost.
"""
import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ..core.errors import CentaurError, check_choice
from ..core.files import write_atomically
from ..core.images import MAX_PIXELS, open_image
from ..data.getters import get_image_files
from .store import LabelStore

STATE = ".centaur"
THUMB_SIZE = 96
BROWSER_FORMATS = {"JPEG", "PNG", "GIF", "WEBP", "BMP"}  # sent as they are; other images as PNG


class UnknownImage(CentaurError):
    """An image id the project does not have (the page answers 404)."""


class Project:
    """The folder's images and everything computed or decided about them.

    >>> project = Project("photos/")             # doctest: +SKIP
    >>> project.scan(); project.embed()          # doctest: +SKIP
    >>> project.label([1, 2, 3], "healthy")      # doctest: +SKIP
    """

    def __init__(self, folder, store=None, size=160, max_pixels=MAX_PIXELS):
        self.root = check_folder(folder)
        self.state = self.root / STATE
        try:
            self.state.mkdir(exist_ok=True)
            (self.state / "thumbs").mkdir(exist_ok=True)
        except OSError as e:
            raise CentaurError(f"cannot write the workbench's state to {str(self.state)!r} ({e.strerror}); "
                               "make the folder writable, or give --store a path elsewhere.") from None
        self._claim = claim_folder(self.state)
        self.store = LabelStore(store or self.state / "labels.sqlite")
        self.size, self.max_pixels = size, max_pixels
        self.embedder, self.cache = None, None
        self.progress = dict(state="idle", done=0, total=0, errors=0, message="")
        self.model = None  # the last HeadResult, with the rows it was trained on
        self._lock = threading.RLock()
        self._vectors = None  # (number of images, {layer: (N, D) float32 rows aligned with images()})
        self._vectors_changed = 0  # counts loads and in-place additions, for the similar index
        self._layouts = {}
        self._indexes = {}  # layer -> (the vectors it was built from, SimilarIndex)
        self._label_rows = None
        self._images = None
        self._worker, self._finetune = None, None
        self._stop = threading.Event()
        self._export_lock = threading.Lock()
        self._load_predictions()

    # ---- images ---------------------------------------------------------------------------
    def scan(self):
        """Register image files not seen before (hidden folders such as .centaur are skipped).

        Returns the number of images added. A folder without any image is a CentaurError."""
        files = get_image_files(self.root)
        if not files and not self.store.images():
            raise CentaurError(f"no images in {str(self.root)!r} (looked for .jpg, .png, .webp, ... in all "
                               "subfolders); put the images to label there.")
        known = {r["path"]: r for r in self.store.images()}
        new, replaced = [], []
        for f in files:
            rel = f.relative_to(self.root).as_posix()
            st = f.stat()
            record = dict(path=rel, status="ok", error=None, size=st.st_size, mtime=st.st_mtime)
            if rel not in known:
                new.append(record)
            elif known[rel]["status"] != "ok" and (known[rel]["mtime"], known[rel]["size"]) != (st.st_mtime, st.st_size):
                replaced.append(record)  # an unreadable image replaced by a good copy is tried again
        if new or replaced:
            self.store.add_images(new + replaced)
            with self._lock:
                self._images = None
        return len(new)

    def images(self):
        """The project's images in id order; the row of an image in every array the workbench sends."""
        with self._lock:
            if self._images is None:
                self._images = self.store.images()
                self._row = {r["id"]: i for i, r in enumerate(self._images)}
            return self._images

    def rows(self, image_ids):
        """Rows of image ids in images(); an id the project does not have is a CentaurError."""
        self.images()
        missing = [i for i in image_ids if i not in self._row]
        if missing:
            raise UnknownImage(f"no image with id {', '.join(map(str, missing[:5]))} in this project; reload the "
                               "page to see the project's current images.")
        return np.array([self._row[i] for i in image_ids], dtype=np.int64)

    def path(self, image_id):
        return self.root / self.images()[int(self.rows([image_id])[0])]["path"]

    def resolve(self, relative):
        """A path from a browser, confined to the project folder (no '..', no absolute paths, no links out)."""
        if not isinstance(relative, str) or not relative or "\x00" in relative:
            raise CentaurError("give an image path relative to the project folder.")
        target = (self.root / relative).resolve()
        if not target.is_relative_to(self.root) or STATE in target.relative_to(self.root).parts:
            raise CentaurError(f"path {relative!r} is outside the project folder; only its images are served.")
        if not target.is_file():
            raise CentaurError(f"no file {relative!r} in the project folder.")
        return target

    def viewable(self, path):
        """(bytes, media type) of an image file for the browser, or ImageError.

        Only images leave the server: links in the folder are followed, as `centaur train` does,
        so a link to anything else (a text file, a key) must not be sent as it is. Formats
        browsers show are sent unchanged; others (TIFF, ...) as a PNG, decoded within the pixel limit.
        """
        from PIL import Image, UnidentifiedImageError
        try:
            with Image.open(path) as header:  # the format from the file's first bytes, no pixels decoded
                kind, pixels = header.format, header.width * header.height
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
            kind, pixels = None, 0
        if kind in BROWSER_FORMATS and pixels <= self.max_pixels:
            return Path(path).read_bytes(), Image.MIME[kind]
        img = open_image(path, self.max_pixels)  # refuses non-images and decompression bombs, with the reason
        buffer = io.BytesIO()
        img.save(buffer, "PNG")
        return buffer.getvalue(), "image/png"

    def thumbnail(self, image_id):
        """A small JPEG of the image (cached on disk under .centaur/thumbs)."""
        cached = self.state / "thumbs" / f"{int(image_id)}.jpg"
        if cached.is_file():
            return cached.read_bytes()
        img = open_image(self.path(image_id), self.max_pixels)
        img.thumbnail((THUMB_SIZE, THUMB_SIZE))
        buffer = io.BytesIO()
        img.save(buffer, "JPEG", quality=80)
        write_atomically(cached, buffer.getvalue())
        return buffer.getvalue()

    # ---- embeddings -----------------------------------------------------------------------
    def _open_cache(self):
        from .embeddings import Embedder, EmbeddingCache
        if self.embedder is None:
            self.embedder = Embedder(size=self.size)
            self.cache = EmbeddingCache(self.state / "embeddings", self.embedder.meta)
        return self.embedder, self.cache

    def embed(self, batch_size=32):
        """Embed every readable image not yet in the cache (in this thread); marks unreadable ones."""
        from .embeddings import embed_missing
        embedder, cache = self._open_cache()
        items = [(r["id"], self.root / r["path"]) for r in self.images() if r["status"] == "ok"]
        done = cache.ids()
        todo = [item for item in items if item[0] not in done]
        self.progress.update(state="embedding", done=0, total=len(todo), errors=0,
                             message=f"embedding {len(todo)} images")

        def progress(done, total):
            self.progress.update(done=done, total=total)

        errors = embed_missing(cache, embedder, todo, batch_size=batch_size, progress=progress, stop=self._stop,
                               on_batch=self._add_vectors)
        for image_id, message in errors.items():
            status = "too_large" if "pixels" in message else "unreadable"
            self.store.set_status(image_id, status, message)
        with self._lock:
            self._images = None  # statuses changed; the vectors in memory took every batch already
        stopped = self._stop.is_set()
        self.progress.update(state="stopped" if stopped else "ready", errors=len(errors),
                             message=f"{len(cache)} image{'' if len(cache) == 1 else 's'} embedded")
        return errors

    def start(self):
        """Scan and embed in a background thread, so the workbench opens at once."""
        if self._worker is not None and self._worker.is_alive():
            return False

        def work():
            try:
                self.scan()
                self.embed()
            except Exception as e:  # the page shows it; the server keeps serving labels
                self.progress.update(state="failed", message=str(e))

        self._stop.clear()
        self._worker = threading.Thread(target=work, name="centaur-embed", daemon=True)
        self._worker.start()
        return True

    def stop(self, timeout=30):
        self._stop.set()
        if self._worker is not None:
            self._worker.join(timeout)

    def _add_vectors(self, ids, vectors):
        """Write a freshly embedded batch into the vectors in memory, so the next layout shows it
        without reading the whole cache again (which, on a large folder, cost more than embedding)."""
        with self._lock:
            if self._vectors is None or self._vectors[0] != len(self.images()):
                return  # not loaded, or loaded for other images: the next vectors() reads the cache, batch included
            rows = np.array([self._row.get(int(i), -1) for i in ids], dtype=np.int64)
            keep = rows >= 0
            for name, values in vectors.items():
                if name in self._vectors[1]:
                    self._vectors[1][name][rows[keep]] = values[keep]
            self._vectors_changed += 1  # the similar index, built from these arrays, is stale now

    def vectors(self, layer):
        """(N, D) float32 for layer, rows aligned with images(); rows not embedded yet are NaN."""
        with self._lock:
            images = self.images()
            if self._vectors is None or self._vectors[0] != len(images):
                _, cache = self._open_cache()
                ids, by_layer = cache.load()
                rows = np.array([self._row.get(int(i), -1) for i in ids], dtype=np.int64)
                keep = rows >= 0
                aligned = {}
                for name, values in by_layer.items():
                    out = np.full((len(images), values.shape[1]), np.nan, dtype=np.float32)
                    out[rows[keep]] = values[keep]
                    aligned[name] = out
                self._vectors = (len(images), aligned)
                self._vectors_changed += 1
            if layer not in self._vectors[1]:
                check_choice("layer", layer, list(self._vectors[1]) or ["early", "middle", "last"])
            return self._vectors[1][layer]

    def embedded(self):
        """Bool (N,): which images have embeddings."""
        vectors = self.vectors("last")
        return ~np.isnan(vectors[:, 0])

    # ---- layout, similar ------------------------------------------------------------------
    def layout(self, layer="last", method="pca"):
        """(N, 2) float32 in [0, 1], NaN for images not embedded; cached until images or labels change."""
        from .projection import methods, project
        check_choice("projection", method, methods(len(self.label_names())))
        label_rows = self.label_rows()
        vectors = self.vectors(layer)
        ok = ~np.isnan(vectors[:, 0])
        key = (layer, method, int(ok.sum()), self.store_version() if method == "lda" else None)
        with self._lock:
            if key in self._layouts:
                return self._layouts[key]
        coords = np.full((len(vectors), 2), np.nan, dtype=np.float32)
        if ok.sum() >= 1:  # one or two images too: laid out side by side
            coords[ok] = project(vectors[ok], method, labels=label_rows[ok] if method == "lda" else None)
        with self._lock:
            self._layouts = {k: v for k, v in self._layouts.items() if k[:2] != key[:2]}
            self._layouts[key] = coords
        return coords

    def similar(self, image_ids, k=50, layer="last", unlabeled_only=True):
        """Images most like the given ones across the whole project, best first: (ids, scores)."""
        from .similar import SimilarIndex
        rows = self.rows(image_ids)
        vectors = self.vectors(layer)
        ok = ~np.isnan(vectors[:, 0])
        with self._lock:
            index = self._indexes.get(layer)
            if index is None or index[0] != self._vectors_changed:  # once per state of the vectors, not per query
                index = self._indexes[layer] = (self._vectors_changed, SimilarIndex(np.nan_to_num(vectors)))
        rows = rows[ok[rows]]
        if len(rows) == 0:
            raise CentaurError("none of the selected images is embedded yet; wait for the embedding to finish.")
        exclude = np.flatnonzero(~ok)
        if unlabeled_only:
            exclude = np.union1d(exclude, np.flatnonzero(self.label_rows() >= 0))
        found, scores = index[1].query(rows, k=k, exclude=exclude)
        images = self.images()
        return [images[int(r)]["id"] for r in found], [float(s) for s in scores]

    # ---- labels ---------------------------------------------------------------------------
    def label(self, image_ids, label, author="local", how="manual"):
        """Label (label None: unlabel) images as one action that undo reverses whole."""
        self.rows(image_ids)
        return self.store.apply(list(image_ids), label, author=author, how=how)

    def label_names(self):
        """Labels in the order they were first given: a label's number key and colour stay put when
        others are added (alphabetical order moved them)."""
        return self.store.label_order()

    def label_rows(self):
        """Int (N,): index of each image's label in label_names(), -1 when unlabeled (cached per version
        of the labels: find similar and layouts ask for it on every call)."""
        key = (self.store_version(), len(self.images()))
        with self._lock:
            if self._label_rows is not None and self._label_rows[0] == key:
                return self._label_rows[1]
        names = {name: i for i, name in enumerate(self.label_names())}
        labels = self.store.labels()
        rows = np.full(len(self.images()), -1, dtype=np.int64)
        if labels:
            found = self.rows([i for i in labels if i in self._row])
            rows[found] = [names[labels[self.images()[r]["id"]]] for r in found]
        rows.flags.writeable = False  # shared by every caller until the labels change
        with self._lock:
            self._label_rows = (key, rows)
        return rows

    def store_version(self):
        return self.store.version()

    # ---- training -------------------------------------------------------------------------
    def train(self, folds=5):
        """Train a head on the cached last-layer embeddings of the labeled images (seconds)."""
        from .learn import train_head
        version = self.store_version()  # read first: labels added while it trains make the model stale
        vectors = self.vectors("last")
        ok = ~np.isnan(vectors[:, 0])
        labels = self.store.labels()
        per_row = [labels.get(r["id"]) if ok[i] else None for i, r in enumerate(self.images())]
        if sum(label is not None for label in per_row) == 0:
            raise CentaurError("no labeled image is embedded yet: label some images (and let the embedding "
                               "finish) before training.")
        result = train_head(np.nan_to_num(vectors), per_row, folds=folds)
        result.probs[~ok] = np.nan
        with self._lock:
            self.model = result
            self._predicted_ids = [r["id"] for r in self.images()]
        self._save_predictions(result, version)
        return result

    def predictions(self):
        """(classes, probs (N, K) aligned with images(), NaN where unknown) or None before training."""
        with self._lock:
            if self.model is None:
                return None
            index = {image_id: row for row, image_id in enumerate(self._predicted_ids)}
            probs = np.full((len(self.images()), len(self.model.classes)), np.nan, dtype=np.float32)
            for row, r in enumerate(self.images()):
                if r["id"] in index:
                    probs[row] = self.model.probs[index[r["id"]]]
            return self.model.classes, probs

    def _save_predictions(self, result, version):
        buffer = io.BytesIO()
        np.savez(buffer, probs=result.probs.astype(np.float32), ids=np.array(self._predicted_ids, dtype=np.int64),
                 weight=result.weight.astype(np.float32), bias=result.bias.astype(np.float32))
        write_atomically(self.state / "predictions.npz", buffer.getvalue())
        summary = dict(classes=result.classes, accuracy=result.accuracy, interval=list(result.interval),
                       num_labeled=result.num_labeled, counts=result.counts, folds=result.folds,
                       seconds=result.seconds, at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       version=version)  # the labels it learned from; export retrains when they changed
        self.store.set_meta("model", summary)

    def _load_predictions(self):
        """The last trained head's predictions, so a restarted workbench still fades and queues."""
        summary, path = self.store.get_meta("model"), self.state / "predictions.npz"
        if not summary or not path.is_file():
            return
        from .learn import HeadResult
        try:
            with np.load(path, allow_pickle=False) as saved:
                probs, ids, weight, bias = saved["probs"], saved["ids"], saved["weight"], saved["bias"]
        except (OSError, ValueError, KeyError):
            return  # damaged: the next training writes it again
        self.model = HeadResult(classes=summary["classes"], weight=weight, bias=bias, accuracy=summary["accuracy"],
                                interval=tuple(summary["interval"]), num_labeled=summary["num_labeled"],
                                counts=summary["counts"], folds=summary["folds"], seconds=summary["seconds"],
                                probs=probs)
        self._predicted_ids = ids.tolist()

    def model_summary(self):
        return self.store.get_meta("model") if self.model is not None else None

    # ---- export ---------------------------------------------------------------------------
    def export(self, out=None, what=("labels", "predictions", "folders", "model"), mode="link"):
        """Write labels (CSV, JSON), predictions, a folder per class and the model directory under `out`
        (by default .centaur/export). Returns {what: path}."""
        with self._export_lock:  # two clicks, two tabs: one export at a time (they share temporary folders)
            return self._export(out, what, mode)

    def _export(self, out, what, mode):
        from . import export
        what = [check_choice("export", w, export.EXPORT_PARTS) for w in what]
        out = Path(out) if out is not None else self.state / "export"
        records = self.store.label_records()
        if not records:
            raise CentaurError("no labels to export yet; label some images first.")
        # everything that can refuse the export does so before the first file is written
        export.check_export_folder(out)
        if "folders" in what:
            export.check_class_folders(self.root, records, out / "classes")
        written = {}
        if self.model is not None and ("predictions" in what or "model" in what):
            summary = self.store.get_meta("model") or {}
            if summary.get("version") != self.store_version():  # labels changed since: the model would be stale
                try:
                    result = self.train()
                    written["retrained"] = (f"the labels changed since the last training, so it was trained again: "
                                            f"accuracy {result.accuracy:.3f} on {result.num_labeled} labels")
                except CentaurError as e:
                    written["not_written"] = f"predictions and model, as the labels changed since training: {e}"
                    what = [w for w in what if w not in ("predictions", "model")]
        export.mark_export_folder(out)
        if written.get("not_written"):  # an earlier export's model no longer matches the labels beside it
            export.remove_stale(out)
        if "labels" in what:
            export.write_labels_csv(records, out / "labels.csv", root=self.root)
            export.write_labels_json(records, out / "labels.json")
            written["labels"] = str(out / "labels.csv")
            written["labels_json"] = str(out / "labels.json")
        predicted = self.predictions()
        if "predictions" in what and predicted is not None:
            classes, probs = predicted
            labels = self.store.labels()
            ok = ~np.isnan(probs[:, 0])
            images = [r for r, keep in zip(self.images(), ok) if keep]
            export.write_predictions_csv([r["path"] for r in images], classes, probs[ok], out / "predictions.csv",
                                         labels=[labels.get(r["id"], "") for r in images])
            written["predictions"] = str(out / "predictions.csv")
        if "folders" in what:
            export.write_class_folders(self.root, records, out / "classes", mode=mode)
            written["folders"] = str(out / "classes")
        if "model" in what and self.model is not None:
            embedder, _ = self._open_cache()
            export.write_model_dir(self.model, embedder.meta, out / "model")
            written["model"] = str(out / "model")
        return written

    # ---- full fine-tune ---------------------------------------------------------------------
    def finetune(self, epochs=3, size=None, extra=()):
        """Fine-tune the whole network on the labels in the background: `centaur train` on a folder per
        class, in its own process (its log in .centaur/finetune/train.log, the model in .../model)."""
        from . import export
        if self._finetune is not None and self._finetune.poll() is None:
            raise CentaurError("a fine-tune is already running; wait for it to finish.")
        folder = self.state / "finetune"
        folder.mkdir(exist_ok=True)
        export.write_class_folders(self.root, self.store.label_records(), folder / "classes")
        command = [sys.executable, "-m", "centaur.cli", "train", str(folder / "classes"), "--out",
                   str(folder / "model"), "--epochs", str(int(epochs)), *(["--size", str(int(size))] if size else []),
                   *extra]
        with open(folder / "train.log", "wb") as log:
            self._finetune = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
        self._finetune_started, self._finetune_ended = time.time(), None
        return self.finetune_status()

    def finetune_status(self):
        """{'state': idle|running|done|failed, 'log': its last lines, 'model': the model folder when done}."""
        folder = self.state / "finetune"
        log = (folder / "train.log").read_text(errors="replace") if (folder / "train.log").is_file() else ""
        tail = "\n".join(log.replace("\r", "\n").splitlines()[-12:])
        if self._finetune is None:
            return dict(state="idle", log=tail, model=None)
        code = self._finetune.poll()
        state = "running" if code is None else ("done" if code == 0 else "failed")
        if code is not None and self._finetune_ended is None:
            self._finetune_ended = time.time()  # the clock stops when the run does
        return dict(state=state, log=tail, model=str(folder / "model") if state == "done" else None,
                    seconds=round((self._finetune_ended or time.time()) - self._finetune_started, 1))

    def summary(self):
        """What the page's header shows: counts, labels, embedding progress, the model."""
        images = self.images()
        status = {}
        for r in images:
            status[r["status"]] = status.get(r["status"], 0) + 1
        return dict(root=str(self.root), images=len(images), status=status, labels=self.store.label_counts(),
                    progress=dict(self.progress), model=self.model_summary(),
                    version=self.store_version())

    def close(self):
        self.stop()
        if self._finetune is not None and self._finetune.poll() is None:
            self._finetune.send_signal(signal.SIGINT)  # it keeps its last finished epoch's checkpoint
            try:
                self._finetune.wait(30)
            except subprocess.TimeoutExpired:
                self._finetune.kill()
        self.store.close()
        if self._claim is not None:
            self._claim.close()  # closing the file releases the lock
            self._claim = None


def claim_folder(state):
    """Hold .centaur/workbench.lock for as long as this project is open, so a second workbench on the
    same folder stops with a clear line instead of writing the same embedding chunks (labels alone
    would be safe: the store takes turns). The lock goes with the process, however it ends."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks this way; the store still keeps labels safe
        return None
    handle = open(state / "workbench.lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise CentaurError(f"{str(state.parent)!r} is already open in another workbench ({holder}); use that one, "
                           "or stop it first.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"process {os.getpid()}")
    handle.flush()
    return handle


def check_folder(folder):
    """The project folder, resolved; a clear error for a missing, non-folder or unreadable path."""
    root = Path(folder).expanduser()
    if not root.exists():
        raise CentaurError(f"folder {str(root)!r} does not exist; give the folder of images to label.")
    if not root.is_dir():
        raise CentaurError(f"{str(root)!r} is a file; give the folder that holds the images to label.")
    try:
        next(os.scandir(root), None)
    except PermissionError:
        raise CentaurError(f"no permission to read folder {str(root)!r}; check its permissions.") from None
    return root.resolve()

