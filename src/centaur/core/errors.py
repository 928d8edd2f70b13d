"""Errors a user can act on: what was given, what was expected, how to fix it."""
import difflib


class CentaurError(ValueError):
    """A mistake in what the user gave us (a path, a name, an option, a file).

    The CLI prints its message on one line and exits with status 2; from Python it is an
    ordinary ValueError, so `except ValueError` still works.
    """


def did_you_mean(name, choices, n=3):
    """Return ' Did you mean: a, b?' for the closest names in `choices`, or ''.

    >>> did_you_mean("lite", ["lite0", "resnet18"])
    " Did you mean: 'lite0'?"
    """
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=n, cutoff=0.5)
    if not close:
        low = str(name).lower()
        close = [c for c in map(str, choices) if low and low in c.lower()][:n]
    return f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""


def check_choice(name, value, choices):
    """Raise CentaurError unless `value` is one of `choices`, suggesting the nearest ones."""
    if value not in choices:
        raise CentaurError(
            f"unknown {name} {value!r}; expected one of {', '.join(map(repr, choices))}."
            + did_you_mean(value, choices)
        )
    return value
