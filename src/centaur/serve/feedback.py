"""Contested predictions, stored durably: SQLite in WAL mode, one row per case.

Each row keeps the input (image bytes or the table row as JSON), the prediction the person
saw, the model version that made it, and the answer they say is right. `export_feedback`
turns the cases into a dataset that `centaur train` takes as is.
"""
import csv
import datetime
import hashlib
import json
import sqlite3
from pathlib import Path

from ..core.errors import CentaurError

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    model_version TEXT NOT NULL,
    prediction_id TEXT NOT NULL,
    input_kind TEXT NOT NULL,          -- 'image' or 'row'
    input_name TEXT,                   -- the uploaded file's name, if any
    input_sha256 TEXT NOT NULL,
    input BLOB NOT NULL,               -- image bytes, or the row as UTF-8 JSON
    prediction TEXT NOT NULL,          -- JSON of what the person was shown
    correct TEXT NOT NULL,             -- JSON: the label or value they say is right
    comment TEXT
);
"""


class FeedbackStore:
    """Append-only store of contested predictions in one SQLite file.

    >>> store = FeedbackStore("feedback.sqlite")  # doctest: +SKIP
    """

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")  # a case the page called saved survives a power cut
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as e:
            raise CentaurError(f"cannot open the feedback store {str(self.path)!r}: {e}.") from None
        if version > SCHEMA_VERSION:
            raise CentaurError(f"the feedback store {str(self.path)!r} was written by a newer centaur (schema "
                               f"{version}, this one reads {SCHEMA_VERSION}); upgrade centaur.")
        self.db.executescript(SCHEMA + f"PRAGMA user_version={SCHEMA_VERSION};")

    def add(self, *, model_version, prediction_id, input_kind, input_bytes, prediction, correct,
            input_name=None, comment=None):
        """Store one case; returns its id. Committed before returning."""
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with self.db:  # isolation_level=None: the with block is our explicit transaction
            self.db.execute("BEGIN IMMEDIATE")
            cur = self.db.execute(
                "INSERT INTO feedback (created_at, model_version, prediction_id, input_kind, input_name, "
                "input_sha256, input, prediction, correct, comment) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now, model_version, prediction_id, input_kind, input_name,
                 hashlib.sha256(input_bytes).hexdigest(), input_bytes, json.dumps(prediction),
                 json.dumps(correct), comment))
        return cur.lastrowid

    def cases(self):
        """Every case as a dict, oldest first (input bytes under 'input')."""
        cur = self.db.execute("SELECT * FROM feedback ORDER BY id")
        names = [d[0] for d in cur.description]
        for row in cur:
            case = dict(zip(names, row))
            case["prediction"], case["correct"] = json.loads(case["prediction"]), json.loads(case["correct"])
            yield case

    def count(self):
        return self.db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]

    def close(self):
        self.db.close()


def export_feedback(db_path, out, target="label"):
    """Write the contested cases as a dataset; returns (number of cases, path of the CSV).

    Images: out/<correct label>/<sha256 prefix><suffix> plus out/feedback.csv with columns
    file,label,predicted,model_version,created_at,comment (file relative to out), which
    `centaur train out/feedback.csv` reads. Rows: out/feedback.csv with the row's columns and
    `target` holding the corrected value.

    >>> export_feedback("models/emoji/feedback.sqlite", "retrain")  # doctest: +SKIP
    (12, PosixPath('retrain/feedback.csv'))
    """
    db_path, out = Path(db_path), Path(out)
    if not db_path.is_file():
        raise CentaurError(f"no feedback store at {str(db_path)!r}; it is created when `centaur serve` gets "
                           "its first contested prediction.")
    store = FeedbackStore(db_path)
    try:
        cases = list(store.cases())
    finally:
        store.close()
    if not cases:
        raise CentaurError(f"the feedback store {str(db_path)!r} holds no cases yet.")
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / "feedback.csv"
    images = [c for c in cases if c["input_kind"] == "image"]
    rows = [c for c in cases if c["input_kind"] == "row"]
    with open(csv_path, "w", newline="") as f:
        if images:
            writer = csv.writer(f)
            writer.writerow(["file", "label", "predicted", "model_version", "created_at", "comment"])
            for case in images:
                label = str(case["correct"])
                suffix = Path(case["input_name"] or "").suffix.lower() or ".png"
                rel = Path(_safe_folder(label)) / f"{case['input_sha256'][:16]}{suffix}"
                (out / rel).parent.mkdir(parents=True, exist_ok=True)
                (out / rel).write_bytes(case["input"])
                writer.writerow([rel.as_posix(), label, case["prediction"].get("label"), case["model_version"],
                                 case["created_at"], case["comment"] or ""])
        else:
            records = [{**json.loads(c["input"]), target: c["correct"]} for c in rows]
            columns = list(dict.fromkeys(k for r in records for k in r))
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(records)
    return len(cases), csv_path


def _safe_folder(label):
    """A class name as a folder name: no separators, no '..', nothing hidden."""
    name = "".join("_" if ch in '/\\:*?"<>|' or ord(ch) < 32 else ch for ch in label).strip(". ")
    return name or "_"
