"""Words for messages and reports: a count with its noun in the right number."""


def plural(count, noun, plural_form=None):
    """`count` and `noun`, the noun made plural unless count is exactly 1 (English: 0 takes the plural).

    The plural is noun + "s" unless `plural_form` gives another; in a phrase ("validation image",
    "duplicate pair") the last word is the one that changes. Counts of 1,000 and more get commas.

    >>> plural(1, "duplicate pair"), plural(3, "duplicate pair"), plural(0, "file")
    ('1 duplicate pair', '3 duplicate pairs', '0 files')
    >>> plural(1, "row"), plural(2, "value"), plural(12500, "validation image")
    ('1 row', '2 values', '12,500 validation images')
    >>> plural(2, "match", "matches")
    '2 matches'
    """
    word = noun if count == 1 else (plural_form or noun + "s")
    return f"{count:,} {word}"


def named(noun, names, n=10, plural_form=None):
    """How many, and the first `n` of them: a list of classes in a repr or a message.

    >>> named("class", ["animal", "face", "food"], plural_form="classes")
    '3 classes (animal, face, food)'
    >>> named("label", "abcdefghijkl", n=3)
    '12 labels (a, b, c, ...)'
    """
    names = [str(x) for x in names]
    shown = ", ".join(names[:n]) + (", ..." if len(names) > n else "")
    return f"{plural(len(names), noun, plural_form)} ({shown})"
