"""Batch prediction into a CSV or Parquet file, chunk by chunk, resumable after an interruption.

Inputs too large for memory (a folder of a million images, a table of a hundred million rows)
are read in chunks; each chunk's predictions go to their own file in OUT.parts/, written
under a temporary name and renamed when complete, so a chunk file is whole or absent. A
manifest says what is being predicted (model weights, inputs, options). Run the same command
again after Ctrl-C or a kill and the finished chunks are skipped; at the end the chunks are
joined in input order into OUT (again via a temporary file and a rename) and OUT.parts/ is
removed. So no row is missing or there twice, whatever happened in between.

Images can be predicted by several worker processes, each with its own copy of the model and
its share of the CPU threads; a table is read and predicted in this process, because reading
a CSV is sequential and a table model predicts far faster than the rows can be parsed.
"""
import hashlib
import json
import math
import os
import shutil
import sys
from pathlib import Path

from .core.errors import CentaurError
from .core.files import write_atomically
from .models.model_dir import model_version, read_meta

CHUNK_IMAGES = 512        # images per chunk: a few seconds of work, so little is redone after a kill
CHUNK_ROWS = 100_000      # table rows per chunk
CHECK_CSV_BYTES = 2**29   # a CSV up to 512 MB is first checked for short lines, as training does
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
FLOAT_FORMAT = "%.7g"     # numbers in a CSV: float32's precision (7 significant digits, 95.80287)


def predict_to_file(model_dir, sources, out, chunk_size=None, workers=1, top_k=3, batch_size=32, threads=None,
                    on_chunk=None):
    """Predict images (files or folders) or one table into `out` (.csv or .parquet); returns a summary dict.

    Resumable: if OUT.parts/ holds chunks of the same job (same model weights, inputs and
    options), they are kept and only the rest is predicted. workers: processes predicting
    images at once (tables always use one). on_chunk(done, total): called after each chunk
    is written (total is None for a table, whose length is not known until the end).

    >>> predict_to_file("models/emoji", ["photos/"], "predictions.parquet")  # doctest: +SKIP
    {'rows': 120000, 'chunks': 235, 'resumed_chunks': 0, 'failed': 3, 'out': 'predictions.parquet'}
    """
    model_dir, out = Path(model_dir), Path(out)
    _, meta = read_meta(model_dir)
    table = meta.get("kind") == "tabular"
    if table and len(sources) != 1:
        raise CentaurError(f"a table model predicts one table at a time; got {len(sources)} paths.")
    _check_writable(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:  # a table's predictions were once written as CSV whatever the name: p.json held CSV
        raise CentaurError(f"--out {str(out)!r} must end in .csv or .parquet (the format to write), got "
                           f"{out.suffix or 'no extension'!r}; e.g. --out {out.with_suffix('.csv').name}.")
    for name, value, least in (("chunk_size", chunk_size, 1), ("workers", workers, 1)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise CentaurError(f"{name} must be a whole number of at least {least}, got {value!r}.")
    job = _Job(out, fmt)
    common = {"model": str(model_dir.resolve()), "weights": model_version(model_dir), "format": fmt}
    if table:
        source = Path(sources[0])
        if not source.is_file():
            raise CentaurError(f"table {str(source)!r} does not exist; give a CSV or Parquet file.")
        stat = source.stat()
        identity = {**common, "kind": "table", "table": str(source.resolve()), "bytes": stat.st_size,
                    "mtime_ns": stat.st_mtime_ns, "chunk_size": chunk_size or CHUNK_ROWS}
        job.start(identity)
        summary = _predict_table(job, model_dir, source, chunk_size or CHUNK_ROWS, threads, on_chunk)
    else:
        from .data.getters import image_paths  # imports pandas: only when it is needed
        files = image_paths(sources)
        digest = hashlib.sha256("\n".join(map(str, files)).encode()).hexdigest()
        size = chunk_size or CHUNK_IMAGES
        identity = {**common, "kind": "images", "files": len(files), "files_sha256": digest, "chunk_size": size,
                    "top_k": top_k}
        job.start(identity)
        summary = _predict_images(job, model_dir, meta, files, size, workers, top_k, batch_size, threads, on_chunk)
    job.assemble(summary["chunks"])
    return {**summary, "out": str(out)}


def _check_writable(out):
    if out.is_dir():
        raise CentaurError(f"--out {str(out)!r} is a folder; give a file name ending in .csv or .parquet.")
    existing = next(p for p in (out.parent.resolve(), *out.parent.resolve().parents) if p.exists())
    if not os.access(existing, os.W_OK):
        raise CentaurError(f"cannot write predictions to {str(out)!r}: {str(existing)!r} is not writable. "
                           "Choose another --out.")


class _Job:
    """OUT.parts/: the manifest, chunk-000000.<fmt> files and their chunk-000000.json statistics."""

    def __init__(self, out, fmt):
        self.out, self.fmt = out, fmt
        self.parts = out.with_name(out.name + ".parts")
        self.ext = "csv" if fmt == "csv" else "parquet"

    def start(self, identity):
        manifest = self.parts / "manifest.json"
        if manifest.is_file():
            try:
                before = json.loads(manifest.read_text())
            except (OSError, json.JSONDecodeError):
                before = None
            if before != identity:
                changed = sorted(k for k in identity if not isinstance(before, dict) or before.get(k) != identity[k])
                raise CentaurError(f"{str(self.parts)!r} holds an unfinished prediction of another job (differs in: "
                                   f"{', '.join(changed) or 'everything'}). Run the command that started it to "
                                   "finish it, or delete that folder to start over.")
        else:
            self.parts.mkdir(parents=True, exist_ok=True)
            write_atomically(manifest, json.dumps(identity, indent=1).encode())
        for tmp in self.parts.glob("*.tmp"):  # a chunk being written when the run was stopped
            tmp.unlink()
        self.done = {int(p.stem.split("-")[1]) for p in self.parts.glob(f"chunk-*.{self.ext}")}

    def path(self, i):
        return self.parts / f"chunk-{i:06d}.{self.ext}"

    def stats(self, i):
        return json.loads((self.parts / f"chunk-{i:06d}.json").read_text())

    def assemble(self, n_chunks):
        """Join chunks 0..n_chunks-1 in order into OUT (a temporary file, then a rename); remove OUT.parts/."""
        missing = [i for i in range(n_chunks) if not self.path(i).is_file()]
        if missing:
            raise CentaurError(f"chunks {missing[:5]} are missing from {str(self.parts)!r}; run the command again.")
        tmp = self.out.with_name(self.out.name + ".tmp")
        if self.fmt == "csv":
            with open(tmp, "wb") as dst:
                for i in range(n_chunks):
                    with open(self.path(i), "rb") as src:
                        header = src.readline()
                        if i == 0:
                            dst.write(header)
                        shutil.copyfileobj(src, dst, 1 << 20)
        else:
            import pyarrow.parquet as pq
            writer = None
            try:
                for i in range(n_chunks):
                    part = pq.read_table(self.path(i))
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, part.schema)
                    writer.write_table(part.cast(writer.schema))
            finally:
                if writer is not None:
                    writer.close()
        os.replace(tmp, self.out)
        shutil.rmtree(self.parts)

    def write(self, i, frame, stats, schema=None):
        """Write chunk i (a DataFrame) and its statistics, each atomically; the data file last."""
        write_atomically(self.parts / f"chunk-{i:06d}.json", json.dumps(stats).encode())
        tmp = self.path(i).with_name(self.path(i).name + ".tmp")
        if self.fmt == "csv":
            # predictions are float32 (about 7 significant digits); written in full as float64 they carry
            # noise (95.80287170410156), so 7 significant digits: within one float32 step of the value
            frame.to_csv(tmp, index=frame.index.name is not None, float_format=FLOAT_FORMAT)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq
            if frame.index.name is not None:  # a table's row numbers: a plain column, as in the CSV
                frame = frame.reset_index()
            pq.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False), tmp)
        os.replace(tmp, self.path(i))


# --- tables ---

def _table_chunks(source, chunk_size):
    """DataFrames of chunk_size rows, indexed by row number in the whole table."""
    import pandas as pd
    from .data.getters import check_csv_fields, text_column_names
    if source.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq
        start = 0
        for batch in pq.ParquetFile(source).iter_batches(batch_size=chunk_size):
            df = batch.to_pandas()
            df.index = pd.RangeIndex(start, start + len(df))
            start += len(df)
            yield text_column_names(df)
        return
    from .data.table_files import COMPRESSED, SPREADSHEETS, read_user_table, sniff_separator
    with open(source, "rb") as f:
        raw = f.read(65536)
    try:
        raw.decode("utf-8")
        utf8 = True
    except UnicodeDecodeError as e:
        utf8 = e.start >= len(raw) - 3  # only the last character cut in two by the 64 kB
    head = raw.decode("utf-8", errors="replace")
    if source.suffix.lower() in (*COMPRESSED, *SPREADSHEETS) or not utf8 or sniff_separator(head) != ",":
        # another separator or encoding, a compressed file or a spreadsheet: read whole (or refused) as
        # training reads it
        df = text_column_names(read_user_table(source))
        for start in range(0, len(df), chunk_size):
            yield df.iloc[start:start + chunk_size]
        return
    if source.stat().st_size <= CHECK_CSV_BYTES:
        check_csv_fields(source)
    try:
        for df in pd.read_csv(source, chunksize=chunk_size):  # pandas numbers the rows across chunks
            yield text_column_names(df)
    except UnicodeDecodeError as e:
        raise CentaurError(f"could not read table {str(source)!r}: it is not UTF-8 text ({e.reason} at byte "
                           f"{e.start} of a chunk); save it as UTF-8 (Save As > CSV UTF-8).") from e
    except pd.errors.ParserError as e:
        raise CentaurError(f"could not read table {str(source)!r}: {e}") from e


def _predict_table(job, model_dir, source, chunk_size, threads, on_chunk):
    from .inference import TabularPredictor
    from .data.table_files import blank_overflow
    predictor = TabularPredictor(model_dir, threads=threads)
    n_chunks = resumed = 0
    for i, df in enumerate(_table_chunks(source, chunk_size)):
        n_chunks = i + 1
        if i in job.done:
            resumed += 1
            continue
        result = predictor.predict_table(blank_overflow(df))
        result.index.name = "row"
        stats = {"rows": len(result), "unseen": {k: int(v) for k, v in predictor.unseen_.items()},
                 "rows_unseen": int((predictor.unseen_rows_ > 0).sum())}
        job.write(i, result, stats)
        if on_chunk is not None:
            on_chunk(n_chunks, None)
    if n_chunks == 0:  # an empty table: one empty chunk, so the file still gets its header
        empty = predictor.predict_table(next(_empty_table(source)))
        empty.index.name = "row"
        job.write(0, empty, {"rows": 0, "unseen": {}, "rows_unseen": 0})
        n_chunks = 1
    rows, unseen, rows_unseen = 0, {}, 0
    for i in range(n_chunks):
        s = job.stats(i)
        rows, rows_unseen = rows + s["rows"], rows_unseen + s["rows_unseen"]
        for col, n in s["unseen"].items():
            unseen[col] = unseen.get(col, 0) + n
    return {"rows": rows, "chunks": n_chunks, "resumed_chunks": resumed, "unseen": unseen, "rows_unseen": rows_unseen}


def _empty_table(source):
    import pandas as pd
    from .data.getters import read_table, text_column_names
    from .data.table_files import COMPRESSED
    if source.suffix.lower() in COMPRESSED:
        from .data.table_files import read_user_table
        yield text_column_names(read_user_table(source, say=False).iloc[:0])
        return
    yield text_column_names(read_table(source) if source.suffix.lower() in (".parquet", ".pq")
                            else pd.read_csv(source, nrows=0))


# --- images ---

IMAGE_COLUMNS = {"single_label": ["file", "label", "probability", "top_k", "error"],
                 "multi_label": ["file", "labels", "probabilities", "error"],
                 "regression": ["file", "value", "error"]}


def _image_frame(rows, task):
    """Predict_many's dicts as a table: lists and dicts as JSON text, a missing value as empty."""
    import pandas as pd
    columns = IMAGE_COLUMNS[task]
    flat = [{c: (json.dumps(r[c]) if isinstance(r.get(c), (list, dict)) else r.get(c)) for c in columns}
            for r in rows]
    frame = pd.DataFrame(flat, columns=columns)
    for c in columns:
        if c in ("probability",) or (c == "value" and not any(isinstance(r.get(c), list) for r in rows)):
            frame[c] = frame[c].astype("float64")
        else:
            frame[c] = frame[c].astype(object)
    return frame


def _image_schema(task, frame):
    """The same Parquet types in every chunk (a chunk without failures would otherwise make 'error' null)."""
    import pyarrow as pa
    return pa.schema([(c, pa.float64() if frame[c].dtype.kind == "f" else pa.string()) for c in frame.columns])


_worker = {}


def _worker_init(model_dir, threads, batch_size):
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops the pool
    from .inference import Predictor
    _worker["predictor"] = Predictor(model_dir, threads=threads, batch_size=batch_size)


def _image_chunk(job, i, files, top_k, predictor=None):
    predictor = predictor or _worker["predictor"]
    rows = list(predictor.predict_many(files, top_k=top_k))
    frame = _image_frame(rows, predictor.task)
    failed = sum(1 for r in rows if r.get("error"))
    job.write(i, frame, {"rows": len(rows), "failed": failed}, schema=_image_schema(predictor.task, frame))
    return i


def _predict_images(job, model_dir, meta, files, chunk_size, workers, top_k, batch_size, threads, on_chunk):
    n_chunks = max(1, math.ceil(len(files) / chunk_size))
    todo = [i for i in range(n_chunks) if i not in job.done]
    resumed, done = n_chunks - len(todo), n_chunks - len(todo)

    def chunk(i):
        return files[i * chunk_size:(i + 1) * chunk_size]

    if todo and (workers <= 1 or len(todo) <= 1):
        from .inference import Predictor
        predictor = Predictor(model_dir, threads=threads, batch_size=batch_size)
        for i in todo:
            _image_chunk(job, i, chunk(i), top_k, predictor)
            done += 1
            if on_chunk is not None:
                on_chunk(done, n_chunks)
    elif todo:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
        per_worker = max(1, (threads or os.cpu_count() or 1) // workers)
        # spawn, not fork: a forked copy of a process that has started torch's thread pools can hang
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                                   initargs=(str(model_dir), per_worker, batch_size))
        pending, queue = set(), iter(todo)
        try:
            while True:
                while len(pending) < 2 * workers and (i := next(queue, None)) is not None:
                    pending.add(pool.submit(_image_chunk, job, i, chunk(i), top_k))
                if not pending:
                    break
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    future.result()
                    done += 1
                    if on_chunk is not None:
                        on_chunk(done, n_chunks)
        finally:
            # on Ctrl-C the chunks not started are dropped; those running finish and are kept
            pool.shutdown(wait=True, cancel_futures=True)
    failed = sum(job.stats(i)["failed"] for i in range(n_chunks))
    return {"rows": len(files), "chunks": n_chunks, "resumed_chunks": resumed, "failed": failed}


def print_progress(done, total):
    """on_chunk for a terminal: one line per chunk on standard error."""
    print(f"chunk {done}/{total} written" if total else f"chunk {done} written", file=sys.stderr, flush=True)
