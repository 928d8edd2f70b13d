"""Downloading images from a real HTTP server on loopback, verifying folders, and applying cleaning decisions."""
import csv
import io
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from centaur.cli import main
from centaur.core.errors import CentaurError
from centaur.data.gather import (DecisionsError, apply_cleaning, download_images, read_url_list, undo_cleaning,
                                 url_file_stem)

from conftest import EMOJI, copy_emoji, write_bad_files

PNG = (EMOJI / "animal" / "badger.png").read_bytes()
PNG2 = (EMOJI / "food" / sorted(p.name for p in (EMOJI / "food").glob("*.png"))[0]).read_bytes()


def _jpeg():
    buf = io.BytesIO()
    Image.open(io.BytesIO(PNG)).convert("RGB").save(buf, format="JPEG")
    return buf.getvalue()


def _ico():
    buf = io.BytesIO()
    Image.open(io.BytesIO(PNG)).save(buf, format="ICO")
    return buf.getvalue()


JPEG, ICO = _jpeg(), _ico()
HTML = b"<html><body>Sorry, this image has moved.</body></html>"


class _Handler(BaseHTTPRequestHandler):
    """Routes for every way a download can go wrong; `hits` counts requests per path."""

    def log_message(self, *args):  # keep test output clean
        pass

    def send(self, status, body=b"", kind="image/png", length=True, headers=()):
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        if length:
            self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        server = self.server
        with server.lock:
            server.hits[self.path] = server.hits.get(self.path, 0) + 1
            hits = server.hits[self.path]
        path = self.path
        try:
            if path.startswith("/img/"):
                self.send(200, PNG2 if "food" in path else PNG)
            elif path == "/jpeg-said-png":
                self.send(200, JPEG, kind="image/png")
            elif path == "/octet":
                self.send(200, PNG, kind="application/octet-stream")
            elif path == "/missing":
                self.send(404, b"not found", kind="text/plain")
            elif path.startswith("/flaky"):  # 500 the first time, then the image
                self.send(500, b"oops", kind="text/plain") if hits == 1 else self.send(200, PNG)
            elif path == "/busy":  # 429 the first time, then the image
                self.send(429, b"", kind="text/plain", headers=[("Retry-After", "0")]) if hits == 1 \
                    else self.send(200, PNG)
            elif path == "/always500":
                self.send(503, b"down", kind="text/plain")
            elif path == "/hang":
                server.release.wait(10)  # never answers within the client's timeout
            elif path == "/big":  # says how big it is up front
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(50_000_000))
                self.end_headers()
            elif path == "/big-unannounced":  # no Content-Length: only counting the bytes finds out
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                for _ in range(100):
                    self.wfile.write(PNG + bytes(10_000))
            elif path == "/html":
                self.send(200, HTML, kind="text/html; charset=utf-8")
            elif path == "/lying":  # says PNG, sends a web page
                self.send(200, HTML, kind="image/png")
            elif path == "/truncated":
                self.send(200, PNG[: len(PNG) // 2])
            elif path == "/empty":
                self.send(200, b"")
            elif path == "/ico":
                self.send(200, ICO, kind="image/x-icon")
            elif path == "/redirect":
                self.send(302, b"", kind="", headers=[("Location", "/img/redirected.png")])
            elif path == "/redirect-ftp":
                self.send(302, b"", kind="", headers=[("Location", "ftp://127.0.0.1/x.png")])
            elif path == "/drip":  # each byte within the read timeout, the whole far too slow
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.end_headers()
                for byte in PNG[:40]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.send(404, b"no route", kind="text/plain")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading on purpose (size limit, timeout)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.hits, httpd.lock, httpd.release = {}, threading.Lock(), threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()


FAST = dict(timeout=2.0, retries=2, backoff=0.01)


def by_url(report):
    return {r.url: r for r in report.results}


# --- downloading: the good cases ---

def test_downloads_images_with_deterministic_names(server, tmp_path):
    urls = [f"{server.url}/img/a.png", f"{server.url}/img/food.png", f"{server.url}/jpeg-said-png",
            f"{server.url}/octet"]
    report = download_images(urls, tmp_path / "out", workers=4, **FAST)
    assert [r.status for r in report.results] == ["saved"] * 4, report.results
    assert not report.failures
    results = by_url(report)
    first = results[urls[0]].path
    assert first == tmp_path / "out" / f"{url_file_stem(urls[0])}.png"
    assert first.read_bytes() == PNG
    assert results[urls[1]].path.read_bytes() == PNG2
    # the suffix follows the bytes, not what the server claimed
    assert results[urls[2]].path.suffix == ".jpg"
    assert results[urls[3]].path.suffix == ".png"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(r.path.name for r in report.results)
    assert "4 saved, 0 already there, 0 failed" in report.summary()


def test_rerun_skips_existing_files_and_never_overwrites(server, tmp_path):
    url = f"{server.url}/img/keep.png"
    out = tmp_path / "out"
    out.mkdir()
    mine = out / f"{url_file_stem(url)}.jpg"
    mine.write_bytes(b"the user's own file")
    report = download_images([url, url], out, **FAST)
    assert [r.status for r in report.results] == ["exists", "duplicate"]
    assert report.results[1].reason == "same URL as line 1"
    assert mine.read_bytes() == b"the user's own file"
    assert report.paths == [mine]


def test_follows_redirects_to_http_only(server, tmp_path):
    report = download_images([f"{server.url}/redirect", f"{server.url}/redirect-ftp"], tmp_path, **FAST)
    ok, ftp = report.results
    assert ok.status == "saved" and ok.path.read_bytes() == PNG
    assert ftp.status == "failed" and "only http and https" in ftp.reason


# --- downloading: every failure is reported ---

def test_url_list_file_reports_bad_lines_by_number(server, tmp_path):
    listing = tmp_path / "urls.txt"
    listing.write_text("\n".join([
        "# my cats",                       # 1 comment
        f"{server.url}/img/1.png",         # 2
        "",                                # 3 blank
        "ftp://example.com/cat.png",       # 4
        "www.example.com/cat.png",         # 5 no scheme
        "http://",                         # 6 no host
        "http://127.0.0.1:99999/x.png",    # 7 bad port
        "http://example.com/my cat.png",   # 8 space inside
        f"   {server.url}/img/9.png   ",   # 9 surrounding spaces are fine
    ]) + "\n")
    good, bad = read_url_list(listing)
    assert [line for line, _ in good] == [2, 9]
    reasons = {r.line: r.reason for r in bad}
    assert sorted(reasons) == [4, 5, 6, 7, 8]
    assert "scheme 'ftp'" in reasons[4]
    assert "no http://" in reasons[5]
    assert "no host" in reasons[6]
    assert "malformed" in reasons[7]
    assert "spaces" in reasons[8]

    report = download_images(listing, tmp_path / "out", **FAST)
    assert len(report.saved) == 2 and len(report.failures) == 5
    written = report.to_csv(tmp_path / "failures.csv")
    rows = list(csv.DictReader(written.open()))
    assert [int(r["line"]) for r in rows] == [4, 5, 6, 7, 8]
    assert rows[0]["url"] == "ftp://example.com/cat.png" and rows[0]["reason"]


def test_http_errors_retry_only_when_it_can_help(server, tmp_path):
    urls = [f"{server.url}/missing", f"{server.url}/flaky/1", f"{server.url}/busy", f"{server.url}/always500"]
    report = download_images(urls, tmp_path, **FAST)
    missing, flaky, busy, down = report.results
    assert missing.status == "failed" and missing.reason.startswith("HTTP 404") and missing.attempts == 1
    assert server.hits["/missing"] == 1  # a 404 is never retried
    assert flaky.status == "saved" and flaky.attempts == 2 and flaky.path.read_bytes() == PNG
    assert busy.status == "saved" and busy.attempts == 2
    assert down.status == "failed" and "HTTP 503" in down.reason and "after 3 attempts" in down.reason
    assert server.hits["/always500"] == 3


def test_a_server_that_hangs_times_out(server, tmp_path):
    started = time.monotonic()
    report = download_images([f"{server.url}/hang", f"{server.url}/img/ok.png"], tmp_path,
                             timeout=0.3, retries=1, backoff=0.01)
    assert time.monotonic() - started < 5
    hang, ok = report.results
    assert hang.status == "failed" and "timed out" in hang.reason and hang.attempts == 2
    assert ok.status == "saved"


def test_a_download_that_drips_is_abandoned(server, tmp_path):
    started = time.monotonic()
    report = download_images([f"{server.url}/drip"], tmp_path, timeout=1.0, max_seconds=0.3, retries=0)
    assert time.monotonic() - started < 1.5  # not the 2 s the server takes to send it all
    assert report.results[0].status == "failed" and "too slow" in report.results[0].reason


def test_connection_refused_is_reported(tmp_path):
    import socket
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    report = download_images([f"http://127.0.0.1:{port}/x.png"], tmp_path, retries=1, backoff=0.01, timeout=1)
    r = report.results[0]
    assert r.status == "failed" and "cannot connect" in r.reason and r.attempts == 2


def test_files_over_the_size_limit_are_refused(server, tmp_path):
    urls = [f"{server.url}/big", f"{server.url}/big-unannounced"]
    report = download_images(urls, tmp_path / "out", max_bytes=100_000, **FAST)
    announced, counted = report.results
    assert announced.status == "failed" and "50,000,000 bytes" in announced.reason and "100,000" in announced.reason
    assert counted.status == "failed" and "stopped reading" in counted.reason
    assert announced.attempts == counted.attempts == 1  # not retried: the file will not shrink
    assert list((tmp_path / "out").iterdir()) == []  # nothing written, no partial files


def test_content_that_is_not_an_image_is_refused(server, tmp_path):
    urls = [f"{server.url}/html", f"{server.url}/lying", f"{server.url}/truncated", f"{server.url}/empty",
            f"{server.url}/ico"]
    report = download_images(urls, tmp_path / "out", **FAST)
    html, lying, truncated, empty, ico = report.results
    assert "not an image: the server sent text/html" in html.reason
    assert "not a usable image" in lying.reason and "not an image Pillow can read" in lying.reason
    assert "truncated or corrupt" in truncated.reason
    assert "empty" in empty.reason
    assert "format ICO" in ico.reason
    assert all(r.status == "failed" and r.attempts == 1 for r in report.results)
    assert list((tmp_path / "out").iterdir()) == []


def test_too_many_pixels_is_refused(server, tmp_path):
    report = download_images([f"{server.url}/img/x.png"], tmp_path, max_pixels=100, **FAST)
    assert "more than the limit of 100" in report.results[0].reason


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(CentaurError, match="workers must be a whole number of at least 1, got 0"):
        download_images([], tmp_path, workers=0)
    with pytest.raises(CentaurError, match="timeout must be a positive number"):
        download_images([], tmp_path, timeout=0)
    with pytest.raises(CentaurError, match="pass \\[url\\] for a single one"):
        download_images("https://example.com/cat.png", tmp_path)
    with pytest.raises(CentaurError, match="does not exist"):
        download_images(tmp_path / "nope.txt", tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CentaurError, match="is a file"):
        download_images([], tmp_path / "file")
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"http://a.org/1.png\nhttp://a.org/caf\xe9.png\n")
    with pytest.raises(CentaurError, match="not UTF-8 text \\(line 2\\)"):
        read_url_list(latin)


# --- the download command ---

def test_download_command(server, tmp_path, capsys):
    listing = tmp_path / "urls.txt"
    listing.write_text(f"{server.url}/img/c1.png\n{server.url}/missing\nnot-a-url\n")
    out = tmp_path / "out"
    assert main(["download", str(listing), "--out", str(out), "--retries", "0", "--timeout", "2"]) == 0
    err = capsys.readouterr().err
    assert "1 saved, 0 already there, 2 failed" in err
    assert "line 2:" in err and "HTTP 404" in err and "line 3:" in err
    rows = list(csv.DictReader((out / "download_failures.csv").open()))
    assert [r["line"] for r in rows] == ["2", "3"]

    # again, with the bad lines gone: the image is already there, the old failure list goes
    listing.write_text(f"{server.url}/img/c1.png\n")
    assert main(["download", str(listing), "--out", str(out)]) == 0
    assert "removed the old" in capsys.readouterr().err
    assert not (out / "download_failures.csv").exists()

    listing.write_text(f"{server.url}/missing\n")
    assert main(["download", str(listing), "--out", str(tmp_path / "none"), "--retries", "0"]) == 1


@pytest.mark.parametrize("argv, expected", [
    (["download", "{tmp}/nope.txt", "--out", "{tmp}/o"], "does not exist"),
    (["download", "{tmp}/empty.txt", "--out", "{tmp}/o"], "holds no URLs"),
    (["download", "{tmp}/empty.txt", "--out", "{tmp}/o", "--timeout", "soon"], "expected a positive number"),
    (["download", "{tmp}/empty.txt", "--out", "{tmp}/o", "--workers", "0"], "positive whole number"),
    (["download", "{tmp}/empty.txt"], "--out"),
    (["verify", "{tmp}/nope"], "does not exist"),
    (["clean", "--root", "{tmp}"], "give the decisions CSV"),
    (["clean", "{tmp}/d.csv"], "--root FOLDER"),
    (["clean", "{tmp}/d.csv", "--root", "{tmp}"], "does not exist"),
    (["clean", "--undo", "{tmp}/journal.csv"], "does not exist"),
])
def test_command_mistakes_are_one_line(capsys, tmp_path, argv, expected):
    (tmp_path / "empty.txt").write_text("# nothing yet\n\n")
    status = main([a.format(tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], err


# --- verify ---

def test_verify_command_lists_unusable_images(tmp_path, capsys):
    data = copy_emoji(tmp_path / "data", classes=("animal",), per_class=3)
    assert main(["verify", str(data)]) == 0
    assert "3 usable, 0 unusable" in capsys.readouterr().err
    bad = write_bad_files(data / "animal")
    trashed = data / ".centaur-trash" / "old" / "junk.png"  # hidden folders are not checked
    trashed.parent.mkdir(parents=True)
    trashed.write_bytes(b"junk")
    decisions = tmp_path / "bad.csv"
    assert main(["verify", str(data), "--decisions", str(decisions)]) == 1
    captured = capsys.readouterr()
    for path in bad.values():
        assert path.name in captured.out
    assert "3 usable, 4 unusable of 7 images" in captured.err
    # never over a file that exists (an image, an earlier list), never as anything but a CSV
    image = next((data / "animal").glob("*.png"))
    before = image.read_bytes()
    for target in (image, decisions, tmp_path / "bad.txt"):
        assert main(["verify", str(data), "--decisions", str(target)]) == 2
        assert "--decisions" in capsys.readouterr().err
    assert image.read_bytes() == before
    # the decisions it writes are what `clean` applies
    assert main(["clean", str(decisions), "--root", str(data)]) == 0
    capsys.readouterr()
    assert main(["verify", str(data)]) == 0


# --- cleaning ---

def write_decisions(path, rows, columns=("file", "action", "new_label")):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


@pytest.fixture
def pets(tmp_path):
    root = tmp_path / "pets"
    for label, names in {"cat": ["a.png", "b.png", "c.png"], "dog": ["d.png", "b.png"]}.items():
        (root / label).mkdir(parents=True)
        for name in names:
            (root / label / name).write_bytes(f"{label}/{name}".encode())
    return root


def snapshot(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_delete_moves_to_trash_and_relabel_avoids_clashes(pets, tmp_path):
    decisions = write_decisions(tmp_path / "d.csv", [
        ("cat/a.png", "delete", ""),
        ("cat/b.png", "relabel", "dog"),   # dog/b.png exists: becomes dog/b-1.png
        ("dog/d.png", "", ""),             # blank: keep
        ("dog/b.png", "Relabel", "bird"),  # a new class folder
        (str((pets / "cat" / "c.png").resolve()), "delete", ""),  # absolute, inside root
    ])
    before = snapshot(pets)
    planned = apply_cleaning(decisions, pets, dry_run=True)
    assert snapshot(pets) == before and planned.journal is None
    assert "would move 2 to the trash, would move 2 to a new label, kept 1" in planned.summary()

    result = apply_cleaning(decisions, pets)
    run = result.trash
    assert run.parent == pets / ".centaur-trash"
    assert (run / "cat" / "a.png").read_bytes() == b"cat/a.png"
    assert (pets / "dog" / "b-1.png").read_bytes() == b"cat/b.png"
    assert (pets / "dog" / "b.png").exists() is False
    assert (pets / "bird" / "b.png").read_bytes() == b"dog/b.png"
    assert (run / "cat" / "c.png").read_bytes() == b"cat/c.png" and (pets / "dog" / "d.png").exists()
    journal = list(csv.DictReader(result.journal.open()))
    assert [r["action"] for r in journal] == ["delete", "relabel", "relabel", "delete"]
    assert journal[0]["from"] == str((pets / "cat" / "a.png").absolute())

    undone = undo_cleaning(result.journal)
    assert len(undone.moves) == 4
    assert [s for s in snapshot(pets) if not s.startswith(".centaur-trash")] == before
    assert sorted(p.name for p in run.iterdir()) == ["cat", "journal.undo.csv", "journal.undone.csv"]
    assert (pets / "dog" / "b.png").read_bytes() == b"dog/b.png"
    assert (pets / "cat" / "b.png").read_bytes() == b"cat/b.png"
    with pytest.raises(CentaurError, match="does not exist"):
        undo_cleaning(result.journal)  # renamed to journal.undone.csv: it cannot run twice


def test_relabel_keeps_a_train_valid_split(tmp_path):
    root = tmp_path / "data"
    (root / "train" / "cat").mkdir(parents=True)
    (root / "train" / "cat" / "x.png").write_bytes(b"x")
    (root / "loose.png").write_bytes(b"l")
    decisions = write_decisions(tmp_path / "d.csv", [("train/cat/x.png", "relabel", "dog"),
                                                     ("loose.png", "relabel", "cat")])
    apply_cleaning(decisions, root)
    assert (root / "train" / "dog" / "x.png").exists()
    assert (root / "cat" / "loose.png").exists()


def test_every_problem_is_reported_and_nothing_moves(pets, tmp_path):
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"secret")
    os.symlink(tmp_path, pets / "cat" / "away")  # a linked folder: the file it leads to is outside root
    decisions = write_decisions(tmp_path / "d.csv", [
        ("cat/a.png", "delete", ""),          # 2: fine on its own
        ("cat/c.png", "delet", ""),           # 3: typo
        ("cat/nope.png", "delete", ""),       # 4: missing
        ("cat/b.png", "relabel", ""),         # 5: no label
        ("../secret.png", "delete", ""),      # 6: goes up
        (str(outside), "delete", ""),         # 7: absolute, outside
        ("cat/away/secret.png", "delete", ""),  # 8: through a link, out of root
        ("dog/d.png", "relabel", "a/b"),      # 9: label with a slash
        ("cat/./a.png", "keep", ""),          # 10: keep is fine
        ("cat/a.png", "delete", ""),          # 11: second decision about one file
        ("cat", "delete", ""),                # 12: a folder
    ])
    before = snapshot(pets)
    with pytest.raises(DecisionsError) as info:
        apply_cleaning(decisions, pets)
    problems = info.value.problems
    assert [p.split(":")[0].split(" (")[0] for p in problems] == [f"line {n}" for n in (3, 4, 5, 6, 7, 8, 9, 11, 12)]
    text = "\n".join(problems)
    assert "unknown action 'delet'" in text and "Did you mean: 'delete'" in text
    assert "'cat/nope.png' does not exist" in text
    assert "relabel needs a new_label" in text
    assert "goes up with '..'" in text
    assert "is not inside" in text and "a link to" in text
    assert "must be one folder name" in text
    assert "the same file as line 2" in text
    assert "is a folder" in text
    assert "9 problem(s)" in str(info.value) and "\n" not in str(info.value)
    assert snapshot(pets) == before and outside.exists()
    assert not (pets / ".centaur-trash").exists()


def test_links_in_root_are_moved_themselves_whatever_they_point_to(pets, tmp_path):
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(b"not ours")
    os.symlink(outside, pets / "cat" / "link.png")
    os.symlink(tmp_path / "gone.png", pets / "dog" / "dangling.png")  # as `verify` lists one: delete
    decisions = write_decisions(tmp_path / "d.csv", [("cat/link.png", "relabel", "dog"),
                                                     ("dog/dangling.png", "delete", "")])
    result = apply_cleaning(decisions, pets)
    assert (pets / "dog" / "link.png").is_symlink() and not (pets / "cat" / "link.png").is_symlink()
    assert not (pets / "dog" / "dangling.png").is_symlink()
    assert outside.read_bytes() == b"not ours"  # the target never moved
    undo_cleaning(result.journal)
    assert (pets / "cat" / "link.png").is_symlink() and (pets / "dog" / "dangling.png").is_symlink()


def test_decisions_csv_columns_are_checked(pets, tmp_path):
    decisions = write_decisions(tmp_path / "d.csv", [("cat/a.png", "delete")], columns=("file", "acton"))
    with pytest.raises(CentaurError, match="no 'action' column.*Did you mean: 'acton'"):
        apply_cleaning(decisions, pets)
    with pytest.raises(CentaurError, match="root .* does not exist"):
        apply_cleaning(decisions, pets / "nope")


def test_undo_refuses_when_a_file_is_back(pets, tmp_path):
    decisions = write_decisions(tmp_path / "d.csv", [("cat/a.png", "delete", ""), ("cat/c.png", "delete", "")])
    result = apply_cleaning(decisions, pets)
    (pets / "cat" / "a.png").write_bytes(b"a new file with the old name")
    with pytest.raises(DecisionsError, match="exists again"):
        undo_cleaning(result.journal)
    assert (pets / "cat" / "a.png").read_bytes() == b"a new file with the old name"
    assert not (pets / "cat" / "c.png").exists()  # nothing moved back


def test_clean_command(pets, tmp_path, capsys):
    decisions = write_decisions(tmp_path / "d.csv", [("cat/a.png", "delete", ""), ("cat/b.png", "relabel", "dgo")])
    assert main(["clean", str(decisions), "--root", str(pets), "--dry-run"]) == 0
    out = capsys.readouterr()
    assert "would delete" in out.out and "would move 1 to the trash" in out.err
    assert (pets / "cat" / "a.png").exists()

    assert main(["clean", str(decisions), "--root", str(pets)]) == 0
    err = capsys.readouterr().err
    journal = err.split("centaur clean --undo ")[1].split(")")[0]
    assert Path(journal).is_file() and not (pets / "cat" / "a.png").exists()
    assert main(["clean", "--undo", journal]) == 0
    assert "put 2 files back" in capsys.readouterr().err
    assert (pets / "cat" / "a.png").exists() and (pets / "cat" / "b.png").exists()

    bad = write_decisions(tmp_path / "bad.csv", [("cat/a.png", "remove", ""), ("cat/zz.png", "delete", "")])
    assert main(["clean", str(bad), "--root", str(pets)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: 2 problem(s)") and sum(line.startswith("error:") for line in lines) == 1
    assert "line 2" in lines[0] and "line 3" in lines[1]
