"""Contested predictions, stored durably: SQLite in WAL mode, one row per case.

Each row keeps the input (image bytes or the table row as JSON), the prediction the person
saw, the model version that made it, and the answer they say is right. `export_feedback`
turns the cases into a dataset that `centaur train` takes as is.
"""
import csv
import datetime
import hashlib
import json
import os
import shutil
import sqlite3
import threading
from pathlib import Path

from ..core.errors import CentaurError
from ..core.log import warn

SCHEMA_VERSION = 1
MARKER = ".centaur-feedback-export.json"  # in a folder export_feedback wrote: ours to replace
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

    One connection serves every thread of the server, so each use of it holds a lock: two
    people contesting at the same moment would otherwise interleave on one transaction, and
    one of their cases would be lost.

    >>> store = FeedbackStore("feedback.sqlite")  # doctest: +SKIP
    """

    def __init__(self, path):
        self.path = Path(path)
        self.lock = threading.Lock()
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
        with self.lock, self.db:  # isolation_level=None: the with block is our explicit transaction
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
        with self.lock:
            cur = self.db.execute("SELECT * FROM feedback ORDER BY id")
            names, rows = [d[0] for d in cur.description], cur.fetchall()
        for row in rows:
            case = dict(zip(names, row))
            case["prediction"], case["correct"] = json.loads(case["prediction"]), json.loads(case["correct"])
            yield case

    def count(self):
        with self.lock:
            return self.db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]

    def close(self):
        with self.lock:
            self.db.close()


def export_feedback(db_path, out, target="label", columns=None):
    """Write the contested cases as a dataset; returns (number of cases, path of the CSV).

    Images: out/<correct label>/<sha256 prefix><suffix> plus out/feedback.csv with columns
    file,label,predicted,model_version,created_at,comment (file relative to out), which
    `centaur train out/feedback.csv` reads. Rows: out/feedback.csv with the row's columns and
    `target` holding the corrected value, the columns in the order of `columns` where given.

    >>> export_feedback("models/emoji/feedback.sqlite", "retrain")  # doctest: +SKIP
    (12, PosixPath('retrain/feedback.csv'))
    """
    db_path, out = Path(db_path), Path(out)
    _check_out(out)
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
    cases, conflicts = _settle(cases)
    if conflicts:
        warn(f"{len({c['input_sha256'] for c in conflicts})} input(s) were contested with different answers and are "
             f"left out of the dataset until someone decides: see {out / 'conflicts.csv'}.")
    if out.is_dir():  # an earlier export of ours (checked): replaced whole, so nothing settled since lingers
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = []
    if any(c["input_kind"] == "image" for c in cases):
        table = []
        for case in cases:
            label = str(case["correct"])
            suffix = Path(case["input_name"] or "").suffix.lower() or ".png"
            rel = f"{_safe_folder(label)}/{case['input_sha256'][:16]}{suffix}"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / rel).write_bytes(case["input"])
            files.append(rel)
            table.append({"file": rel, "label": label, "predicted": case["prediction"].get("label"),
                          "model_version": case["model_version"], "created_at": case["created_at"],
                          "comment": case["comment"] or ""})
        columns = ["file", "label", "predicted", "model_version", "created_at", "comment"]
    else:
        table = [{**json.loads(c["input"]), target: c["correct"]} for c in cases]
        found = list(dict.fromkeys(k for r in table for k in r)) or [target]
        order = {name: i for i, name in enumerate(columns or [])}
        columns = sorted(found, key=lambda k: (k == target, order.get(k, len(order))))  # stable: others keep theirs
    csv_path = out / "feedback.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)
    _write_conflicts(conflicts, out / "conflicts.csv")
    (out / MARKER).write_text(json.dumps({"format": "centaur-feedback-export", "version": 1, "files": files}) + "\n")
    return len(cases), csv_path


def _check_out(out):
    """Refuse an out folder holding anything this export did not write, before anything is written."""
    if out.exists() and not out.is_dir():
        raise CentaurError(f"{str(out)!r} is a file; give a folder to write the contested cases to.")
    if not out.is_dir() or not os.listdir(out):
        return
    try:
        ours = set(json.loads((out / MARKER).read_text())["files"])
    except (OSError, ValueError, KeyError, TypeError):
        raise CentaurError(f"{str(out)!r} is not empty and is not an earlier feedback export (it has no readable "
                           f"{MARKER}); choose an empty or new folder, so nothing of yours is overwritten or mixed "
                           "in.") from None
    ours |= {MARKER, "feedback.csv", "conflicts.csv"}
    present = {(Path(folder) / name).relative_to(out).as_posix() for folder, _, names in os.walk(out) for name in names}
    foreign = sorted(present - ours)
    if foreign:
        raise CentaurError(f"{str(out)!r} is an earlier feedback export but also holds files it did not write "
                           f"({', '.join(foreign[:3])}{' ...' if len(foreign) > 3 else ''}); move them away or "
                           "choose another folder.")


def _settle(cases):
    """(cases to export, conflicting cases) from every stored case, oldest first.

    A prediction contested twice counts once, with its latest answer (the person changed their
    mind). One input contested with different answers (two people, two predictions of the same
    image) would teach a model both; it is left out and listed for someone to decide.
    """
    latest = {}
    for case in cases:
        latest[case["prediction_id"]] = case
    by_input = {}
    for case in latest.values():
        by_input.setdefault(case["input_sha256"], []).append(case)
    settled, conflicts = [], []
    for group in by_input.values():
        answers = {json.dumps(c["correct"], sort_keys=True) for c in group}
        if len(answers) == 1:
            settled.append(group[-1])
        else:
            conflicts.extend(group)
    return sorted(settled, key=lambda c: c["id"]), sorted(conflicts, key=lambda c: c["id"])


def _write_conflicts(conflicts, path):
    if not conflicts:
        return
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["input_sha256", "input_name", "correct", "prediction_id", "created_at", "comment"])
        for c in conflicts:
            writer.writerow([c["input_sha256"], c["input_name"] or "", json.dumps(c["correct"]), c["prediction_id"],
                             c["created_at"], c["comment"] or ""])


def _safe_folder(label):
    """A class name as a folder name: no separators, no '..', nothing hidden."""
    name = "".join("_" if ch in '/\\:*?"<>|' or ord(ch) < 32 else ch for ch in label).strip(". ")
    return name or "_"
