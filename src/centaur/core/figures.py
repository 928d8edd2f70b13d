"""Figures drawn without a display, as PNG: matplotlib's object API, never pyplot.

pyplot keeps global state (the backend, the current figure) that a notebook's inline display,
a server's threads and a report would fight over; a Figure made directly touches none of it.
"""
import io
from pathlib import Path


class PNG(bytes):
    """The bytes of a PNG file, which a Jupyter notebook shows as the picture.

    Still bytes (a server base64-encodes it, a file takes it as it is); only its repr is short,
    because a notebook stores the text form beside the picture and a console prints it.

    >>> PNG(b"...")._repr_png_()
    b'...'
    >>> PNG(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(4) + b"IHDR" + (640).to_bytes(4, "big") + (704).to_bytes(4, "big"))
    <PNG 640x704, 24 bytes>
    """

    def _repr_png_(self):
        return bytes(self)

    def __repr__(self):
        size = _size_text(len(self))
        # the IHDR chunk comes first: width and height are big-endian at bytes 16-24
        if len(self) >= 24 and self[:8] == b"\x89PNG\r\n\x1a\n" and self[12:16] == b"IHDR":
            width, height = int.from_bytes(self[16:20], "big"), int.from_bytes(self[20:24], "big")
            return f"<PNG {width}x{height}, {size}>"
        return f"<PNG, {size}>"

    __str__ = __repr__


def _size_text(n):
    """'812 bytes', '98 KB', '2.4 MB' (1 KB = 1024 bytes)."""
    if n < 1024:
        return f"{n} byte{'' if n == 1 else 's'}"
    if n < 1024 ** 2:
        return f"{round(n / 1024)} KB"
    return f"{n / 1024 ** 2:.1f} MB"


def new_figure(width, height, rows=1, cols=1):
    """(figure, axes as a rows x cols array) of the given size in inches."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height))
    return fig, fig.subplots(rows, cols, squeeze=False)


def save_png(fig, path=None, dpi=90):
    """The figure as PNG bytes, also written to `path` (its folder made) when one is given."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=dpi)
    data = PNG(buf.getvalue())
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return data
