"""Writing a file so that a crash never leaves half of it: readers see the old file or the new one."""
import os
import threading
from pathlib import Path


def write_atomically(path, data):
    """Write bytes or text (UTF-8, newlines as given) to `path` through a temporary file beside it
    and os.replace; its folder is created if missing. Returns the path.

    >>> write_atomically("out/labels.csv", "path,label\\n")  # doctest: +SKIP
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # hidden, and named for this process and thread, so two writers never share a temporary file
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8", newline="")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
