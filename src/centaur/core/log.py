"""The `centaur` logger: warnings and progress notes go to stderr as plain lines."""
import logging
import sys


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the moment of writing, not at import time, so
    redirect_stderr and notebook or test captures see centaur's warnings."""

    def __init__(self):
        super().__init__()

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


logger = logging.getLogger("centaur")
if not logger.handlers:
    _handler = _StderrHandler()
    _handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def warn(message):
    """Log a warning the user should read (a skipped file, a class with one image)."""
    logger.warning(message)
