"""The workbench's label store: labels, undo history, restarts, concurrent writers, clear refusals;
on SQLite files and, where PostgreSQL can be started here, on a throwaway PostgreSQL cluster."""
import importlib.util
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

from centaur.core.errors import CentaurError
from centaur.label.store import SCHEMA_VERSION, LabelStore, hide_password


# ---- a throwaway PostgreSQL cluster ------------------------------------------------------------
def find_postgres_binary(name):
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL cluster in a temp folder on a free loopback port; yields its base URL."""
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed: pip install 'psycopg[binary]'")
    initdb, pg_ctl = find_postgres_binary("initdb"), find_postgres_binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL (initdb, pg_ctl) is not installed")
    run_as = []
    folder = tempfile.mkdtemp(prefix="centaur-postgres-")
    if os.geteuid() == 0:  # postgres refuses to run as root: run it as the `postgres` user
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no `postgres` user to run PostgreSQL as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = os.path.join(folder, "data"), free_port()
    try:
        subprocess.run(run_as + [initdb, "-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"],
                       check=True, capture_output=True, timeout=120)
        # fsync=off: a test cluster need not survive a power cut, and it keeps the tests fast
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(run_as + [pg_ctl, "-D", data, "-o", options, "-l", os.path.join(folder, "log"), "-w", "start"],
                       check=True, capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"could not start PostgreSQL: {error} {detail.decode(errors='replace')[-300:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(run_as + [pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request, tmp_path):
    """Where a fresh store lives: an SQLite file in tmp_path, or a new schema on the test cluster."""
    if request.param == "sqlite":
        return str(tmp_path / "project" / ".centaur" / "labels.sqlite")
    import psycopg

    # A schema per test in one database: quicker than a database each, and it is how a team keeps
    # several projects in one database (the URL's search_path picks the project).
    server = request.getfixturevalue("postgres_server")
    name = "project_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server + "/postgres", autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {name}")
    return f"{server}/postgres?options=-csearch_path%3D{name}"


def raw_execute(location, sql, parameters=()):
    """Run SQL on the store's database behind its back (to fake a newer version, read changes)."""
    if location.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(location, autocommit=True) as connection:
            cursor = connection.execute(sql.replace("?", "%s"), parameters)
            return cursor.fetchall() if cursor.description else []
    connection = sqlite3.connect(location, isolation_level=None)
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def image_records(count, prefix="img"):
    return [dict(path=f"{prefix}/{i:05d}.jpg", status="ok", error=None, size=1000 + i, mtime=1.7e9 + i / 8)
            for i in range(count)]


@pytest.fixture
def store(location):
    store = LabelStore(location)
    yield store
    store.close()


# ---- labels --------------------------------------------------------------------------------------
def test_label_relabel_unlabel(store):
    a, b, c = store.add_images(image_records(3))
    action = store.apply([a, b], "  cat ", author="ann", how="lasso")
    assert action["label"] == "cat" and action["count"] == 2 and action["id"] is not None
    assert action["at"].startswith("20") and action["at"].endswith("+00:00")
    assert store.labels() == {a: "cat", b: "cat"}
    assert store.apply([b, c], "dog")["count"] == 2
    assert store.labels() == {a: "cat", b: "dog", c: "dog"}
    assert store.label_counts() == {"cat": 1, "dog": 2}
    assert store.apply([a, c], None)["count"] == 2
    assert store.labels() == {b: "dog"}
    # already carrying the label: not counted; nothing changed at all: no action recorded
    assert store.apply([a, b], "dog")["count"] == 1
    before = store.history()
    nothing = store.apply([a, b], "dog")
    assert nothing["count"] == 0 and nothing["id"] is None and store.history() == before
    assert store.apply([], "dog")["count"] == 0


def test_undo_redo_whole_bulk_action(store):
    ids = store.add_images(image_records(2000))
    store.apply(ids[:500], "cat")
    big = store.apply(ids, "dog", how="similar")  # 2000 images, one action
    assert big["count"] == 2000
    undone = store.undo(author="ann")
    assert undone == dict(id=big["id"], label="dog", count=2000, undone=True)
    labels = store.labels()
    assert len(labels) == 500 and set(labels.values()) == {"cat"}
    assert store.history(limit=1)[0]["undone"] is True
    assert store.redo() == dict(id=big["id"], label="dog", count=2000, undone=False)
    assert store.label_counts() == {"dog": 2000}
    assert store.redo() is None  # nothing undone
    store.undo()
    store.undo()
    assert store.labels() == {} and store.undo() is None
    assert store.redo()["label"] == "cat" and store.redo()["label"] == "dog"
    assert store.label_counts() == {"dog": 2000}


def test_each_person_undoes_their_own_work_and_never_overwrites_anothers(store):
    a, b, c, d = store.add_images(image_records(4))
    store.apply([a, b], "cat", author="ann")
    store.apply([c], "dog", author="bob")  # bob labeled last: ann's Ctrl+Z must not take it back
    assert store.undo(author="ann", own=True)["label"] == "cat"
    assert store.labels() == {c: "dog"}
    assert store.redo(author="bob", own=True) is None  # bob undid nothing
    assert store.redo(author="ann", own=True)["label"] == "cat"
    store.apply([b, d], "bird", author="bob")  # bob relabels one of ann's images
    with pytest.raises(CentaurError, match="cannot undo 'cat': 1 of its images was labeled again since by bob"):
        store.undo(author="ann", own=True)
    assert store.labels() == {a: "cat", b: "bird", c: "dog", d: "bird"}  # nothing half undone
    assert store.undo(author="bob", own=True)["label"] == "bird"
    assert store.undo(author="ann", own=True)["label"] == "cat"  # now nothing of bob's is in the way
    assert store.labels() == {c: "dog"}
    store.apply([a], "owl", author="bob")
    with pytest.raises(CentaurError, match="cannot redo 'cat'.*by bob"):  # redo would overwrite bob's owl
        store.redo(author="ann", own=True)
    assert store.undo()["label"] == "owl"  # without own: the newest action, whoever made it


def test_labels_keep_the_order_they_were_first_given_and_case_variants_are_refused(store):
    a, b, c = store.add_images(image_records(3))
    store.apply([a], "zebra")
    store.apply([b], "antelope")
    assert store.label_order() == ["zebra", "antelope"]  # not alphabetical: keys and colours stay put
    store.apply([c], "moth")
    assert store.label_order() == ["zebra", "antelope", "moth"]
    with pytest.raises(CentaurError, match="differs from the existing 'zebra' only in case"):
        store.apply([c], "Zebra")
    for reserved in ("CON", "nul", "com1", "LPT9.txt"):
        with pytest.raises(CentaurError, match="Windows keeps for devices"):
            store.apply([c], reserved)
    store.apply([c], "console")  # a name that merely starts like one is fine


def test_new_action_clears_redo(store):
    a, b = store.add_images(image_records(2))
    store.apply([a], "cat")
    store.apply([b], "dog")
    store.undo()
    store.apply([a], "bird")
    assert store.redo() is None
    assert store.labels() == {a: "bird"}
    assert store.undo()["label"] == "bird"
    assert store.labels() == {a: "cat"}
    # redo brings back what was just undone, never the action the new one replaced
    assert store.redo()["label"] == "bird" and store.redo() is None
    assert store.labels() == {a: "bird"}


def test_version_changes_with_every_change_of_labels(store):
    a, b = store.add_images(image_records(2))
    seen = [store.version()]
    store.apply([a], "cat")
    store.apply([b], "dog")
    seen.append(store.version())
    store.undo()
    seen.append(store.version())
    store.undo()
    seen.append(store.version())
    assert len(set(seen)) == 4  # two undos in a row are two different states
    store.redo()
    assert store.version() == seen[2]  # the same labels again: the same version


def test_restart_keeps_labels_and_undo_history(location):
    store = LabelStore(location)
    a, b, c = store.add_images(image_records(3))
    store.apply([a, b], "cat", author="ann")
    store.apply([b, c], "dog", author="bob", how="lasso")
    store.apply([c], "bird")
    store.undo()
    store.set_meta("model", {"accuracy": 0.9, "classes": ["cat", "dog"]})
    history = store.history()
    store.close()

    store = LabelStore(location)
    assert store.add_images(image_records(3)) == [a, b, c]  # ids are stable
    assert store.labels() == {a: "cat", b: "dog", c: "dog"}
    assert store.history() == history
    assert store.get_meta("model") == {"accuracy": 0.9, "classes": ["cat", "dog"]}
    assert store.redo()["label"] == "bird"
    store.undo()
    assert store.undo()["label"] == "dog"
    assert store.labels() == {a: "cat", b: "cat"}
    store.close()
    with pytest.raises(CentaurError, match="was closed"):
        store.labels()


def test_label_records_say_who_how_when(store):
    a, b = store.add_images(image_records(2))
    first = store.apply([a, b], "cat", author="ann", how="lasso")
    store.apply([b], "dog", author="bob", how="prediction")
    records = store.label_records()
    assert [(r["image_id"], r["path"], r["label"], r["author"], r["how"]) for r in records] == [
        (a, "img/00000.jpg", "cat", "ann", "lasso"), (b, "img/00001.jpg", "dog", "bob", "prediction")]
    store.undo()  # b's label goes back to cat, and so does who/how/when made it
    assert store.label_records()[1] == dict(image_id=b, path="img/00001.jpg", label="cat", author="ann",
                                            how="lasso", at=first["at"])
    newest = store.history()[0]
    assert {k: newest[k] for k in ("label", "count", "author", "how", "undone")} == dict(
        label="dog", count=1, author="bob", how="prediction", undone=True)


def test_unknown_ids_refused_and_nothing_written(store):
    a, b = store.add_images(image_records(2))
    with pytest.raises(CentaurError, match=r"no image with id 999, 1000 .*nothing was labeled"):
        store.apply([a, 999, b, 1000], "cat")
    assert store.labels() == {} and store.history() == []
    with pytest.raises(CentaurError, match="image ids are integers"):
        store.apply(["1"], "cat")
    with pytest.raises(CentaurError, match="no image with id 999"):
        store.set_status(999, "unreadable")


@pytest.mark.parametrize("label", ["", "   ", "a/b", "a\\b", "tab\there", "new\nline", "bell\x07", ".", "..",
                                   ".hidden", ".centaur", "x" * 101, 3])
def test_bad_labels_refused(tmp_path, label):
    store = LabelStore(tmp_path / "labels.sqlite")
    (a,) = store.add_images(image_records(1))
    with pytest.raises(CentaurError, match="label"):
        store.apply([a], label)
    assert store.labels() == {} and store.history() == []
    store.apply([a], "x" * 100)  # the longest allowed
    store.apply([a], "golden retriever (adult)")
    store.close()


def test_images_insert_update_status(store):
    ids = store.add_images(image_records(3))
    assert ids == sorted(ids) and len(set(ids)) == 3
    first = store.images()[0]
    assert first == dict(id=ids[0], path="img/00000.jpg", status="ok", error=None, size=1000, mtime=1.7e9)
    changed = dict(path="img/00001.jpg", status="too_large", error="40000x40000 pixels", size=5, mtime=2.0)
    new = dict(path="more/new.png", status="ok", error=None, size=1, mtime=3.0)
    assert store.add_images([new, changed]) == [ids[-1] + 1, ids[1]]
    assert store.images()[1]["status"] == "too_large" and store.images()[1]["size"] == 5
    store.set_status(ids[2], "unreadable", "truncated JPEG")
    assert store.images()[2]["error"] == "truncated JPEG"
    with pytest.raises(CentaurError, match="image status 'broken'"):
        store.add_images([dict(new, status="broken")])
    with pytest.raises(CentaurError, match="relative to the project folder"):
        store.add_images([dict(new, path="/etc/passwd")])
    with pytest.raises(CentaurError, match="relative to the project folder"):
        store.add_images([dict(new, path="../outside.jpg")])
    odd = store.add_images([dict(new, path="./odd\\name.jpg")])  # a backslash is part of a Linux file name
    assert store.images()[-1]["id"] == odd[0] and store.images()[-1]["path"] == "odd\\name.jpg"


def test_meta(store):
    assert store.get_meta("model") is None and store.get_meta("model", 5) == 5
    store.set_meta("model", {"name": "lite0", "classes": ["a", "b"]})
    store.set_meta("model", {"name": "lite0", "classes": ["a"]})
    assert store.get_meta("model") == {"name": "lite0", "classes": ["a"]}
    with pytest.raises(CentaurError, match="plain JSON"):
        store.set_meta("bad", object())


# ---- refusals with clear messages ----------------------------------------------------------------
def test_newer_schema_refused(location):
    LabelStore(location).close()
    raw_execute(location, "UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(CentaurError, match=rf"newer centaur \(store version {SCHEMA_VERSION + 1}; this centaur "
                                           rf"reads up to {SCHEMA_VERSION}\).*pip install -U centaur"):
        LabelStore(location)


def test_not_a_database_refused(tmp_path):
    path = tmp_path / "labels.sqlite"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(CentaurError, match="is not a centaur label store"):
        LabelStore(path)
    assert path.read_text().startswith("these are my notes")  # left as it was

    other = tmp_path / "other.sqlite"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE invoices (number INTEGER)")
    connection.close()
    with pytest.raises(CentaurError, match="SQLite database of something else.*invoices"):
        LabelStore(other)


def test_store_path_that_cannot_be_created(tmp_path):
    with pytest.raises(CentaurError, match="is a folder"):
        LabelStore(tmp_path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CentaurError, match="cannot create the folder"):
        LabelStore(tmp_path / "afile" / ".centaur" / "labels.sqlite")


UNWRITABLE = """
import os, sqlite3, sys
from centaur.core.errors import CentaurError
from centaur.label.store import LabelStore
if len(sys.argv) > 2:  # root ignores permissions: become nobody, after importing (root's Python is root's alone)
    os.setgid(int(sys.argv[2])); os.setuid(int(sys.argv[2]))
for path in (sys.argv[1] + "/.centaur/labels.sqlite", sys.argv[1] + "/labels.sqlite"):
    try:
        LabelStore(path)
    except CentaurError as error:
        print(error)
    else:
        print("OPENED", path)
"""


def test_unwritable_folder_refused(tmp_path):
    """A real permission error: a read-only folder, opened by a user who is not root."""
    folder = Path(tempfile.mkdtemp(prefix="centaur-readonly-"))  # tmp_path is root's alone; nobody can't enter
    try:
        folder.chmod(0o555)
        argv = [sys.executable, "-c", UNWRITABLE, str(folder)]
        if os.geteuid() == 0:
            argv.append(str(pwd.getpwnam("nobody").pw_uid))
        src = str(Path(__file__).resolve().parents[1] / "src")
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                                env=dict(os.environ, PYTHONPATH=src))
        lines = result.stdout.splitlines()
        assert result.returncode == 0 and len(lines) == 2, result.stderr
        assert "cannot create the folder" in lines[0] and "Permission denied" in lines[0]
        assert "cannot write the label store" in lines[1] and "--store" in lines[1]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(folder)


def test_missing_psycopg_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    with pytest.raises(CentaurError, match=r"pip install 'psycopg\[binary\]'"):
        LabelStore("postgresql://ann:secret@db.example/labels")
    assert hide_password("postgresql://ann:secret@db.example/labels") == "postgresql://ann:***@db.example/labels"
    assert hide_password("postgresql://db.example/labels") == "postgresql://db.example/labels"


# ---- durability and concurrency ------------------------------------------------------------------
def test_sqlite_is_in_wal_mode_with_full_sync(tmp_path):
    path = tmp_path / "labels.sqlite"
    store = LabelStore(path)
    (a,) = store.add_images(image_records(1))
    store.apply([a], "cat")
    assert raw_execute(str(path), "PRAGMA journal_mode") == [("wal",)]  # WAL is stored in the file itself
    assert path.with_name("labels.sqlite-wal").exists()
    assert store._execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert store._execute("PRAGMA foreign_keys").fetchone()[0] == 1
    # another connection sees the label at once: it is committed, not waiting in a buffer
    assert raw_execute(str(path), "SELECT label FROM labels") == [("cat",)]
    store.close()


WRITER = """
import os, sys, time
from centaur.label.store import LabelStore
location, writer, actions, folder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
store = LabelStore(location)
ids = [image["id"] for image in store.images()]
open(os.path.join(folder, f"ready{writer}"), "w").close()
while not os.path.exists(os.path.join(folder, "go")):
    time.sleep(0.005)
for i in range(actions):
    # both writers keep relabeling the same few images, so each label they read is contested
    store.apply([ids[i % len(ids)], ids[(i * 7 + writer) % len(ids)]], f"w{writer}-{i}", author=f"writer{writer}")
    time.sleep(0.001)  # a pause between actions, as people have, lets the other writer in
store.close()
"""


def test_two_processes_lose_no_writes(location, tmp_path):
    """2 processes x 200 actions on the same images at once: every action is there, and each
    image's chain of changes links up (every 'label before' is the label the previous action left)."""
    store = LabelStore(location)
    ids = store.add_images(image_records(10))
    actions, src = 200, str(Path(__file__).resolve().parents[1] / "src")
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, location, str(w), str(actions), str(tmp_path)],
                                env=dict(os.environ, PYTHONPATH=src), stderr=subprocess.PIPE, text=True)
               for w in range(2)]
    deadline = time.time() + 60
    while not all((tmp_path / f"ready{w}").exists() for w in range(2)) and time.time() < deadline:
        time.sleep(0.005)
    (tmp_path / "go").touch()
    for writer in writers:
        assert writer.wait(timeout=120) == 0, writer.stderr.read()

    history = store.history(limit=10_000)
    expected = {f"w{w}-{i}": len({i % 10, (i * 7 + w) % 10}) for w in range(2) for i in range(actions)}
    assert {h["label"]: h["count"] for h in history} == expected
    authors = [h["author"] for h in reversed(history)]
    assert sum(a != b for a, b in zip(authors, authors[1:])) >= 20, "the two writers never took turns"
    changes = raw_execute(location, "SELECT image_id, label_before, label_after FROM changes ORDER BY action_id")
    assert len(changes) == sum(expected.values())
    last = {}
    for image_id, before, after in changes:
        assert before == last.get(image_id), f"image {image_id}: a write was lost"
        last[image_id] = after
    assert store.labels() == last
    for _ in range(2 * actions):  # undoing everything leads back to no labels at all
        store.undo()
    assert store.labels() == {} and store.undo() is None
    assert len(ids) == 10
    store.close()


def test_threads_sharing_one_store_and_separate_connections(tmp_path):
    path = tmp_path / "labels.sqlite"
    shared = LabelStore(path)
    ids = shared.add_images(image_records(5))
    errors = []

    def label(store, name):
        try:
            for i in range(50):
                store.apply([ids[i % 5]], f"{name}-{i}")
        except Exception as error:  # surfaced by the assert below, not lost in a thread
            errors.append(error)

    own = [LabelStore(path) for _ in range(2)]
    threads = [threading.Thread(target=label, args=(shared, f"s{t}")) for t in range(2)]
    threads += [threading.Thread(target=label, args=(store, f"o{t}")) for t, store in enumerate(own)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(shared.history(limit=1000)) == 200
    for store in own:
        store.close()
    shared.close()
