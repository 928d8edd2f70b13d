"""Gathering and cleaning a dataset: download images from a list of URLs, and apply a CSV of keep/delete/relabel decisions safely."""
from __future__ import annotations

import csv
import email.utils
import hashlib
import http.client
import io
import os
import shutil
import socket
import ssl
import string
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from PIL import Image

from ..core.errors import CentaurError, did_you_mean
from ..core.images import MAX_PIXELS, ImageError, open_image

# --- downloading --------------------------------------------------------------------------------

# 20 MB holds any photo worth training on (a 24 MP JPEG is about 10 MB) and keeps 8 workers
# under 200 MB of memory: each download is held in memory until its bytes are checked.
MAX_BYTES = 20_000_000
USER_AGENT = "centaur/0.1 (image download; +https://github.com/)"
FAILURES_CSV = "download_failures.csv"

# Suffix for each format Pillow reports, limited to the ones centaur trains on (IMAGE_EXTENSIONS):
# a file saved with another suffix would be invisible to `centaur train`.
_SUFFIXES = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp",
             "BMP": ".bmp", "TIFF": ".tif"}
# Servers (object stores, CDNs) often send images as generic bytes; the bytes decide for those.
_GENERIC_TYPES = {"", "application/octet-stream", "binary/octet-stream", "application/binary"}
# 408 and 429 say "not now", 5xx "something broke on our side": worth another try. Other 4xx won't change.
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}
_RETRY_AFTER_CAP = 30.0  # seconds: a Retry-After of an hour would stall the whole list
_URL_SAFE = string.punctuation.replace('"', "").replace("<", "").replace(">", "") + "%"


@dataclass
class DownloadResult:
    """What happened to one line of the URL list.

    status is one of: 'saved' (downloaded and checked), 'exists' (a file for this URL was
    already in the folder: not downloaded again, not overwritten), 'duplicate' (the same URL
    on an earlier line), 'invalid' (the line is not an http/https URL) or 'failed'.
    """

    line: int
    url: str
    status: str
    path: Path | None = None
    reason: str = ""
    attempts: int = 0


@dataclass
class DownloadReport:
    """Every line of a download run, good and bad; `failures` lists those that gave no image.

    >>> report = download_images(["https://example.com/cat.jpg"], "cats")   # doctest: +SKIP
    >>> print(report.summary())                                              # doctest: +SKIP
    1 saved, 0 already there, 0 failed (of 1 URLs) in cats
    """

    dest: Path
    results: list[DownloadResult] = field(default_factory=list)

    @property
    def saved(self):
        return [r for r in self.results if r.status == "saved"]

    @property
    def existing(self):
        return [r for r in self.results if r.status in ("exists", "duplicate")]

    @property
    def failures(self):
        return [r for r in self.results if r.status in ("failed", "invalid")]

    @property
    def paths(self):
        """Files of this list now in the folder: downloaded now or before."""
        return [r.path for r in self.results if r.path is not None and r.status in ("saved", "exists")]

    def summary(self):
        """One line: how many were saved, already there, and failed."""
        return (f"{len(self.saved)} saved, {len(self.existing)} already there, {len(self.failures)} failed "
                f"(of {len(self.results)} URLs) in {self.dest}")

    def to_csv(self, path):
        """Write the failures as line,url,reason (the line is the URL's line in the list, from 1)."""
        path = Path(path)
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["line", "url", "reason"])
            for r in self.failures:
                writer.writerow([r.line, r.url, r.reason])
        return path


class _Failure(Exception):
    """One download attempt failed; `retry` says whether another attempt might succeed."""

    def __init__(self, reason, retry=False, wait=None):
        super().__init__(reason)
        self.reason, self.retry, self.wait = reason, retry, wait


def read_url_list(urls):
    """Parse a URL list into ([(line, url)], [invalid DownloadResult]); never drops a line silently.

    `urls` is a list of strings (line = position from 1) or the path of a text file with one URL
    per line, where blank lines and lines starting with `#` are skipped.

    >>> read_url_list(["https://a.org/1.png", "ftp://a.org/2.png"])[1][0].reason
    "not an http or https URL (scheme 'ftp')"
    """
    if isinstance(urls, (str, os.PathLike)):
        text_path = Path(urls)
        if str(urls).lower().startswith(("http://", "https://")):
            raise CentaurError(f"got one URL {str(urls)!r} where a list of URLs or a text file of them was "
                               "expected; pass [url] for a single one.")
        if not text_path.is_file():
            what = "is a folder" if text_path.is_dir() else "does not exist"
            raise CentaurError(f"URL list {str(text_path)!r} {what}; give a text file with one URL per line.")
        raw = text_path.read_bytes()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = raw[: e.start].count(b"\n") + 1
            raise CentaurError(f"URL list {str(text_path)!r} is not UTF-8 text (line {line}); "
                               "save it as UTF-8 plain text with one URL per line.") from None
        lines = list(enumerate(text.splitlines(), start=1))
        from_file = True
    else:
        try:
            lines = list(enumerate(urls, start=1))
        except TypeError:
            raise CentaurError(f"urls must be a list of URLs or the path of a text file, got "
                               f"{type(urls).__name__}.") from None
        from_file = False

    good, bad = [], []
    for number, item in lines:
        if not isinstance(item, str):
            bad.append(DownloadResult(number, repr(item), "invalid", reason=f"not text ({type(item).__name__})"))
            continue
        url = item.strip()
        if from_file and (not url or url.startswith("#")):
            continue
        reason = _url_problem(url)
        if reason:
            bad.append(DownloadResult(number, url, "invalid", reason=reason))
        else:
            good.append((number, url))
    return good, bad


def _url_problem(url):
    """Why `url` cannot be downloaded, or '' when it looks fine."""
    if not url:
        return "empty line"
    if any(c.isspace() for c in url):
        return "has spaces inside; put one URL per line and write a space in a URL as %20"
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port  # raises for a port that is not a number or out of range
    except ValueError as e:
        return f"malformed URL ({e})"
    if parts.scheme.lower() not in ("http", "https"):
        if not parts.scheme:
            return "not a URL (no http:// or https:// in front)"
        return f"not an http or https URL (scheme {parts.scheme!r})"
    if not parts.hostname:
        return "malformed URL (no host name after //)"
    if port == 0:
        return "malformed URL (port 0)"
    return ""


def url_file_stem(url):
    """The file name (without suffix) a URL is saved under: 16 hex digits of its SHA-256.

    The same URL always gets the same name, so a second run skips what the first one saved.

    >>> url_file_stem("https://example.com/cat.jpg")
    '777460dbe029a0d1'
    """
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def download_images(urls, dest, *, workers=8, timeout=10.0, max_bytes=MAX_BYTES, retries=3, backoff=0.5,
                    max_seconds=120.0, max_pixels=MAX_PIXELS, user_agent=USER_AGENT):
    """Download images from URLs into `dest` in parallel; every failure is reported, none swallowed.

    urls: a list of URLs, or a text file with one per line (blank lines and `#` comments are
    skipped; other lines that are not http/https URLs are reported with their line number).
    Each file is named by a hash of its URL plus the suffix of its real format, so a rerun skips
    files already there and never overwrites one. A download must answer within `timeout` seconds
    (to connect, and between any two reads) and finish within `max_seconds`; connection errors,
    timeouts, 408, 429 and 5xx are retried `retries` times with exponential backoff (429's
    Retry-After is honoured up to 30 s), other answers such as 404 are not. A file is refused when
    its Content-Length or its bytes exceed `max_bytes` (reading stops at the limit), when the server
    says it is not an image, or when its bytes do not open as an image of at most `max_pixels`.
    Nothing is written for a refused file.

    Returns a DownloadReport: `report.failures` (line, url, reason), `report.to_csv(path)`.

    >>> report = download_images("urls.txt", "data/cats", workers=8, timeout=10)  # doctest: +SKIP
    >>> report.summary()                                                          # doctest: +SKIP
    '97 saved, 0 already there, 3 failed (of 100 URLs) in data/cats'
    """
    for name, value, low in (("workers", workers, 1), ("max_bytes", max_bytes, 1), ("retries", retries, 0),
                             ("max_pixels", max_pixels, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise CentaurError(f"{name} must be a whole number of at least {low}, got {value!r}.")
    for name, value in (("timeout", timeout), ("max_seconds", max_seconds), ("backoff", backoff)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 or \
                (name != "backoff" and value == 0):
            raise CentaurError(f"{name} must be a positive number of seconds, got {value!r}.")
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise CentaurError(f"{str(dest)!r} is a file; give a folder to download the images into.")
    entries, invalid = read_url_list(urls)
    dest.mkdir(parents=True, exist_ok=True)

    report = DownloadReport(dest, list(invalid))
    first_line = {}
    todo = []
    for number, url in entries:
        if url in first_line:
            report.results.append(DownloadResult(number, url, "duplicate", reason=f"same URL as line {first_line[url]}"))
        else:
            first_line[url] = number
            todo.append((number, url))

    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    settings = dict(opener=opener, timeout=float(timeout), max_bytes=max_bytes, retries=retries,
                    backoff=float(backoff), max_seconds=float(max_seconds), max_pixels=max_pixels,
                    headers={"User-Agent": user_agent, "Accept": "image/*"})
    pool = ThreadPoolExecutor(max_workers=min(workers, max(1, len(todo))), thread_name_prefix="centaur-download")
    try:
        futures = [pool.submit(_download_one, number, url, dest, **settings) for number, url in todo]
        report.results.extend(future.result() for future in futures)
    except BaseException:
        # Ctrl-C: drop what has not started; running downloads end at their next timeout.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    report.results.sort(key=lambda r: r.line)
    return report


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to http and https (urllib would also follow one to ftp)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise _Failure(f"redirected to a {scheme or 'relative'} URL {newurl!r}, only http and https are followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _download_one(number, url, dest, *, opener, timeout, max_bytes, retries, backoff, max_seconds, max_pixels,
                  headers):
    """Download, check and save one URL; returns its DownloadResult and never raises for the URL's sake."""
    stem = url_file_stem(url)
    existing = sorted(p for p in dest.glob(stem + ".*") if not p.name.endswith(".part"))
    if existing:
        return DownloadResult(number, url, "exists", path=existing[0], reason="already downloaded")
    attempt = 0
    while True:
        attempt += 1
        try:
            data = _fetch(opener, url, timeout, max_bytes, max_seconds, headers)
            path = _save(data, url, dest, stem, max_pixels)
        except _Failure as failure:
            if failure.retry and attempt <= retries:
                wait = failure.wait if failure.wait is not None else backoff * 2 ** (attempt - 1)
                time.sleep(min(wait, _RETRY_AFTER_CAP))
                continue
            tries = f" (after {attempt} attempts)" if attempt > 1 else ""
            return DownloadResult(number, url, "failed", reason=failure.reason + tries, attempts=attempt)
        except FileExistsError as e:  # another process saved the same URL meanwhile
            return DownloadResult(number, url, "exists", path=Path(e.filename), reason="already downloaded",
                                  attempts=attempt)
        except OSError as e:  # our disk, not the server: full, read-only, no permission
            return DownloadResult(number, url, "failed", reason=f"cannot write into {str(dest)!r}: {e}",
                                  attempts=attempt)
        except Exception as e:  # noqa: BLE001 - one odd URL must not stop a list of thousands; it is reported
            return DownloadResult(number, url, "failed", reason=f"unexpected error ({type(e).__name__}: {e})",
                                  attempts=attempt)
        return DownloadResult(number, url, "saved", path=path, attempts=attempt)


def _request_url(url):
    """The URL with non-ASCII characters percent-encoded and an IDNA host, as http.client needs."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.netloc
    if not netloc.isascii():
        try:
            host = parts.hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise _Failure(f"host name {parts.hostname!r} is not a valid international domain name") from None
        netloc = netloc.replace(parts.hostname, host) if parts.hostname in netloc else host
    rest = urllib.parse.quote(urllib.parse.urlunsplit(("", "", parts.path, parts.query, "")), safe=_URL_SAFE)
    return urllib.parse.urlunsplit((parts.scheme, netloc, "", "", "")) + rest


def _fetch(opener, url, timeout, max_bytes, max_seconds, headers):
    """The body of one GET, checked for status, type and size; raises _Failure."""
    started = time.monotonic()
    request = urllib.request.Request(_request_url(url), headers=headers)
    try:
        with opener.open(request, timeout=timeout) as response:
            kind = response.headers.get_content_type() if response.headers.get("Content-Type") else ""
            if not (kind.startswith("image/") or kind in _GENERIC_TYPES):
                raise _Failure(f"not an image: the server sent {kind}")
            declared = response.headers.get("Content-Length")
            if declared and declared.strip().isdigit() and int(declared) > max_bytes:
                raise _Failure(f"too large: {int(declared):,} bytes, more than the limit of {max_bytes:,} "
                               "(raise max_bytes / --max-bytes to allow it)")
            chunks, size = [], 0
            while True:
                # read1 returns what has arrived; read(n) would wait for all n bytes, so a server
                # dripping one byte at a time could hold it past max_seconds.
                chunk = response.read1(min(65536, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > max_bytes:
                    raise _Failure(f"too large: more than the limit of {max_bytes:,} bytes, stopped reading "
                                   "(raise max_bytes / --max-bytes to allow it)")
                if time.monotonic() - started > max_seconds:
                    raise _Failure(f"too slow: not finished after {max_seconds:g} s ({size:,} bytes read)", retry=True)
            return b"".join(chunks)
    except _Failure:
        raise
    except urllib.error.HTTPError as e:
        wait = _retry_after(e.headers.get("Retry-After")) if e.code == 429 else None
        e.close()
        raise _Failure(f"HTTP {e.code} {e.reason}".rstrip(), retry=e.code in _RETRY_STATUS, wait=wait) from None
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            raise _Failure(f"timed out: no answer within {timeout:g} s", retry=True) from None
        if isinstance(reason, socket.gaierror):  # "try again" is a busy resolver; other answers stay
            raise _Failure(f"unknown host ({reason.strerror or reason})",
                           retry=reason.errno == socket.EAI_AGAIN) from None
        if isinstance(reason, ssl.SSLError):  # a bad certificate does not fix itself
            raise _Failure(f"TLS error ({reason})") from None
        raise _Failure(f"cannot connect ({reason})", retry=True) from None
    except (socket.timeout, TimeoutError):
        raise _Failure(f"timed out: no data for {timeout:g} s", retry=True) from None
    except http.client.InvalidURL as e:
        raise _Failure(f"malformed URL ({e})") from None
    except http.client.IncompleteRead as e:
        raise _Failure(f"connection closed early ({len(e.partial):,} bytes read)", retry=True) from None
    except (http.client.HTTPException, ConnectionError) as e:
        raise _Failure(f"connection broken ({type(e).__name__}: {e})".replace(": )", ")"), retry=True) from None
    except OSError as e:  # TLS errors and other socket trouble
        raise _Failure(f"network error ({e})", retry=True) from None
    except ValueError as e:  # http.client refuses some URLs urlsplit accepts (control characters)
        raise _Failure(f"malformed URL ({e})") from None


def _retry_after(value):
    """Seconds from a Retry-After header (a number or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _save(data, url, dest, stem, max_pixels):
    """Check that `data` is an image centaur can use and write it as dest/<stem><suffix>, never overwriting."""
    if not data:
        raise _Failure("empty file (0 bytes)")
    try:
        open_image(data, max_pixels=max_pixels, name=url).close()
    except ImageError as e:
        raise _Failure(f"not a usable image: {e.reason}") from None
    with Image.open(io.BytesIO(data)) as img:  # only the header, for the format
        kind = img.format
    suffix = _SUFFIXES.get(kind)
    if suffix is None:
        raise _Failure(f"image format {kind} is not one centaur trains on "
                       f"({', '.join(sorted(set(_SUFFIXES.values())))})")
    path = dest / (stem + suffix)
    part = dest / f"{stem}.{threading.get_ident()}.part"
    part.write_bytes(data)
    try:
        # A hard link fails if the name exists, so even a concurrent run cannot overwrite a file.
        os.link(part, path)
    except FileExistsError:
        raise FileExistsError(0, "exists", str(path)) from None
    except OSError:  # a file system without hard links
        if path.exists():
            raise FileExistsError(0, "exists", str(path)) from None
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)
    return path


# --- cleaning -----------------------------------------------------------------------------------

ACTIONS = ("keep", "delete", "relabel")
TRASH = ".centaur-trash"
JOURNAL_COLUMNS = ["action", "from", "to"]


class DecisionsError(CentaurError):
    """A decisions CSV or journal with problems; `problems` lists each one with its CSV line.

    The message is one line (the first three problems); `problems` holds them all.
    """

    def __init__(self, what, problems):
        self.what, self.problems = what, list(problems)
        shown = "; ".join(self.problems[:3])
        more = f"; and {len(self.problems) - 3} more" if len(self.problems) > 3 else ""
        super().__init__(f"{len(self.problems)} problem(s) in {what}, so nothing was moved: {shown}{more}.")

    def __reduce__(self):
        return (type(self), (self.what, self.problems))


@dataclass
class Move:
    """One file move of a cleaning run (action is 'delete' or 'relabel'; paths are absolute)."""

    action: str
    source: Path
    destination: Path
    line: int = 0


@dataclass
class CleaningResult:
    """What a cleaning run moved (or would move, in a dry run) and where its journal is."""

    moves: list[Move]
    kept: int
    journal: Path | None
    trash: Path | None
    dry_run: bool = False

    def summary(self):
        """One line: how many files went to the trash, were relabelled and were kept."""
        deleted = sum(m.action == "delete" for m in self.moves)
        relabelled = sum(m.action == "relabel" for m in self.moves)
        verb = "would move" if self.dry_run else "moved"
        text = f"{verb} {deleted} to the trash, {verb} {relabelled} to a new label, kept {self.kept}"
        if self.journal is not None:
            text += f"; journal {self.journal} (undo with: centaur clean --undo {self.journal})"
        return text


def apply_cleaning(csv_path, root, trash=None, *, dry_run=False):
    """Apply a CSV of decisions (file, action, new_label) to the images under `root`, undoably.

    action is keep (or blank), delete or relabel. delete moves the file into the trash folder
    (`trash`, default root/.centaur-trash, in a new <timestamp>/ subfolder for this run, keeping
    its path relative to root): nothing is ever deleted outright. relabel moves the file into
    the folder <new_label> beside its current class folder (root/<new_label>/ for root/<label>/x.jpg,
    root/train/<new_label>/ for root/train/<label>/x.jpg, so a train/valid split is kept); a file
    already there with the same name is never overwritten: the moved one gets a -1, -2... suffix.
    Paths are relative to root (absolute ones must lie inside it); ../, links out of root,
    unknown actions, missing files and missing labels are all reported together, by CSV line,
    and then nothing is moved. Each move is written to <trash run folder>/journal.csv as it
    happens, so `undo_cleaning(journal)` puts everything back. `dry_run` plans without moving.

    >>> result = apply_cleaning("decisions.csv", "data/pets", dry_run=True)   # doctest: +SKIP
    >>> result.summary()                                                       # doctest: +SKIP
    'would move 3 to the trash, would move 2 to a new label, kept 95'
    """
    root = Path(root)
    if not root.is_dir():
        what = "is a file" if root.exists() else "does not exist"
        raise CentaurError(f"root {str(root)!r} {what}; give the folder of images the CSV's file paths are "
                           "relative to.")
    real_root = Path(os.path.realpath(root))
    rows = _read_decisions(csv_path)
    trash_base = Path(trash) if trash is not None else root / TRASH
    if trash_base.exists() and not trash_base.is_dir():
        raise CentaurError(f"trash {str(trash_base)!r} is a file; give a folder (or leave it out for "
                           f"{str(root / TRASH)!r}).")
    run_folder = _new_run_folder(trash_base)
    real_trash = Path(os.path.realpath(trash_base))

    problems, moves, kept = [], [], 0
    decided = {}  # real path -> CSV line, to catch two decisions about one file
    taken = set()  # destinations already planned in this run
    for number, row in rows:
        file, action, label = row["file"].strip(), row["action"].strip().lower(), row.get("new_label", "").strip()
        where = f"line {number}"
        if not file:
            problems.append(f"{where}: the file column is empty")
            continue
        if action in ("", "keep"):
            kept += 1
            continue
        if action not in ACTIONS:
            problems.append(f"{where} ({file}): unknown action {action!r}; expected keep, delete or relabel."
                            + did_you_mean(action, ACTIONS))
            continue
        path, problem = _confined(file, root, real_root, real_trash)
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        real = os.path.realpath(path.parent) + os.sep + path.name
        if real in decided:
            problems.append(f"{where} ({file}): the same file as line {decided[real]}; keep one decision per file")
            continue
        decided[real] = number
        if action == "delete":
            target = run_folder / path.relative_to(root)
        else:
            problem = _label_problem(label)
            if problem:
                problems.append(f"{where} ({file}): {problem}")
                continue
            home = path.parent.parent if path.parent != root else root
            if path.parent.name == label and path.parent != root:
                kept += 1  # already where it belongs
                continue
            target = home / label / path.name
        target = _free_name(target, taken)
        taken.add(target)
        moves.append(Move(action, path.absolute(), target.absolute(), number))
    if problems:
        raise DecisionsError(repr(str(csv_path)), problems)

    if dry_run or not moves:
        return CleaningResult(moves, kept, None, run_folder if any(m.action == "delete" for m in moves) else None,
                              dry_run=dry_run)
    run_folder.mkdir(parents=True)
    journal = run_folder / "journal.csv"
    _apply_moves(moves, journal, "undo with: centaur clean --undo " + str(journal))
    return CleaningResult(moves, kept, journal, run_folder)


def undo_cleaning(journal, *, dry_run=False):
    """Move every file of a cleaning run back to where it was, from its journal.csv.

    Checks first that each moved file is still where the journal says and that nothing now sits
    at its old place; if any check fails, nothing is moved. Returns the CleaningResult of the undo.

    >>> undo_cleaning("data/pets/.centaur-trash/20250101-120000/journal.csv")   # doctest: +SKIP
    """
    journal = Path(journal)
    if not journal.is_file():
        raise CentaurError(f"journal {str(journal)!r} does not exist; give the journal.csv that "
                           "`centaur clean` printed.")
    with open(journal, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != JOURNAL_COLUMNS:
            raise CentaurError(f"{str(journal)!r} is not a cleaning journal (columns {reader.fieldnames}, "
                               f"expected {JOURNAL_COLUMNS}).")
        entries = [(number, row) for number, row in enumerate(reader, start=2)]
    problems, moves = [], []
    for number, row in reversed(entries):  # last move first, so a chain of moves unwinds in order
        if row["action"] not in ("delete", "relabel"):
            problems.append(f"line {number}: unknown action {row['action']!r}")
            continue
        now, before = Path(row["to"]), Path(row["from"])
        if not now.is_file() and not now.is_symlink():
            problems.append(f"line {number}: {str(now)!r} is no longer there")
        elif before.exists() or before.is_symlink():
            problems.append(f"line {number}: {str(before)!r} exists again; move it away first")
        else:
            moves.append(Move(row["action"], now, before, number))
    if problems:
        raise DecisionsError(f"journal {str(journal)!r}", problems)
    if not dry_run:
        done = journal.with_name(journal.stem + ".undo.csv")
        _apply_moves(moves, done, "the moves back are listed in it")
        journal.replace(journal.with_name(journal.stem + ".undone.csv"))  # a second undo finds nothing to do
    return CleaningResult(moves, 0, None, None, dry_run=dry_run)


def _read_decisions(csv_path):
    """[(line number, row dict)] from a decisions CSV whose columns are checked."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        what = "is a folder" if csv_path.is_dir() else "does not exist"
        raise CentaurError(f"decisions CSV {str(csv_path)!r} {what}; give a CSV with columns file, action "
                           "and new_label.")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip().lower() for c in reader.fieldnames or []]
            missing = [c for c in ("file", "action") if c not in columns]
            if missing:
                hint = did_you_mean(missing[0], columns)
                raise CentaurError(f"{str(csv_path)!r} has no {missing[0]!r} column (columns: {columns}); "
                                   "expected file, action and, for relabel, new_label." + hint)
            rows = []
            for row in reader:
                if None in row:
                    raise CentaurError(f"{str(csv_path)!r} line {reader.line_num} has more fields than the "
                                       f"{len(columns)} columns; quote file names that contain commas.")
                clean = {k.strip().lower(): (v or "") for k, v in row.items()}
                if not any(clean.values()):
                    continue  # a blank line
                rows.append((reader.line_num, clean))
    except UnicodeDecodeError:
        raise CentaurError(f"{str(csv_path)!r} is not UTF-8 text; save it as a UTF-8 CSV.") from None
    except csv.Error as e:
        raise CentaurError(f"{str(csv_path)!r} is not a readable CSV ({e}).") from None
    return rows


def _confined(file, root, real_root, real_trash):
    """(path under root, '') for a CSV file entry, or (None, why it is refused)."""
    if "\x00" in file:
        return None, f"{file!r} contains a NUL character"
    given = Path(file)
    path = given if given.is_absolute() else root / given
    if ".." in given.parts:
        return None, f"{file!r} goes up with '..'; give paths inside {str(root)!r}"
    if path.is_symlink():
        # a link whose own entry is under root (dangling, or to a file elsewhere, as `verify` lists
        # them) is moved itself, never what it points to: safe whatever the target
        parent = Path(os.path.realpath(path.parent))
        if parent.is_relative_to(real_root) and not parent.is_relative_to(real_trash):
            return root / parent.relative_to(real_root) / path.name, ""
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(real_root):
        link = f" (a link to {str(real)!r})" if not given.is_absolute() and ".." not in given.parts else ""
        return None, f"{file!r} is not inside {str(root)!r}{link}; only files under root are cleaned"
    if given.is_absolute():  # the user may give the resolved root: express the path through `root`
        path = root / real.relative_to(real_root) if not path.is_relative_to(root) else path
    if real.is_relative_to(real_trash):
        return None, f"{file!r} is already in the trash"
    if not path.exists():
        return None, f"{file!r} does not exist under {str(root)!r}"
    if not path.is_file():
        return None, f"{file!r} is a folder, not a file"
    return path, ""


def _label_problem(label):
    """Why `label` cannot be a class folder name, or ''."""
    if not label:
        return "relabel needs a new_label; fill in the class to move it to"
    if "/" in label or "\\" in label or label in (".", "..") or "\x00" in label:
        return f"new_label {label!r} must be one folder name, without / or \\"
    if label.startswith("."):
        return f"new_label {label!r} starts with '.', and hidden folders are skipped when training"
    return ""


def _free_name(target, taken):
    """`target`, or target-1, target-2... if that name exists or is planned already."""
    candidate, n = target, 0
    while candidate.exists() or candidate.is_symlink() or candidate in taken:
        n += 1
        candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
    return candidate


def _new_run_folder(trash_base):
    """trash_base/<timestamp>, with -1, -2... when a run already used that second."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = trash_base / stamp, 0
    while candidate.exists():
        n += 1
        candidate = trash_base / f"{stamp}-{n}"
    return candidate


def _apply_moves(moves, journal, hint):
    """Move the files, writing each move to `journal` as soon as it is done (for undo after a crash)."""
    with open(journal, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(JOURNAL_COLUMNS)
        f.flush()
        for move in moves:
            try:
                move.destination.parent.mkdir(parents=True, exist_ok=True)
                _move_no_clobber(move.source, move.destination)
            except OSError as e:
                raise OSError(f"stopped at {str(move.source)!r} -> {str(move.destination)!r} ({e}); the moves "
                              f"done so far are in {str(journal)!r} ({hint})") from e
            writer.writerow([move.action, str(move.source), str(move.destination)])
            f.flush()


def _move_no_clobber(source, destination):
    """Move a file (or a link, as a link) to `destination`, refusing to replace anything there."""
    try:
        # link + unlink: the link fails if the name exists, so nothing is ever overwritten.
        os.link(source, destination, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:  # another file system, or no hard links there
        if destination.exists() or destination.is_symlink():
            raise FileExistsError(17, "refusing to overwrite", str(destination)) from None
        shutil.move(str(source), str(destination))
        return
    os.unlink(source)
