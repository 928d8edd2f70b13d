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
