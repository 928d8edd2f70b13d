"""The `centaur` logger: warnings and progress notes go to stderr as plain lines."""
import logging
import sys

logger = logging.getLogger("centaur")
if not logger.handlers:
    _handler = logging.StreamHandler(sys.stderr)
    _handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    logger.addHandler(_handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def warn(message):
    """Log a warning the user should read (a skipped file, a class with one image)."""
    logger.warning(message)
