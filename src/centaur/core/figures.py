"""Figures drawn without a display, as PNG: matplotlib's object API, never pyplot.

pyplot keeps global state (the backend, the current figure) that a notebook's inline display,
a server's threads and a report would fight over; a Figure made directly touches none of it.
"""
import io
from pathlib import Path


class PNG(bytes):
    """The bytes of a PNG file, which a Jupyter notebook shows as the picture.

    >>> PNG(b"...")._repr_png_()
    b'...'
    """

    def _repr_png_(self):
        return bytes(self)


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
