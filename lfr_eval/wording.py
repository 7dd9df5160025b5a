"""Counted nouns in messages: "1 search", "2 searches", "1 person", "1,120 people".

One function, :func:`plural`, used by the CLI, the report and the app so that no message says
"1 searches" or "1 people".
"""

from __future__ import annotations

#: Nouns whose plural is not the regular one (and a few verbs that agree with a count).
IRREGULAR: dict[str, str] = {
    "person": "people",
    "is": "are",
    "has": "have",
    "was": "were",
    "does": "do",
    "matches": "match",
    "mixes": "mix",
    "lies": "lie",
}


def plural_of(noun: str) -> str:
    """The plural of an English noun as these messages use them ("search" → "searches",
    "entry" → "entries", "person" → "people"). A phrase is inflected on its last word."""
    head, _, last = noun.rpartition(" ")
    prefix = f"{head} " if head else ""
    if last in IRREGULAR:
        return prefix + IRREGULAR[last]
    if last.endswith(("s", "sh", "ch", "x", "z")):
        return f"{prefix}{last}es"
    if last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        return f"{prefix}{last[:-1]}ies"
    return f"{prefix}{last}s"


def plural(count: int | float, noun: str, plural_form: str | None = None, *,
           number: bool = True) -> str:  # fmt: skip
    """``count`` and ``noun`` in the form the count needs.

    Parameters
    ----------
    count : int
        How many (shown with thousands separators: ``1,120``).
    noun : str
        The singular ("search", "person", "non-mated search").
    plural_form : str, optional
        The plural when :func:`plural_of` gets it wrong.
    number : bool
        False: the noun alone ("people"), for messages that print the count elsewhere.

    Examples
    --------
    >>> plural(1, "search"), plural(2, "search"), plural(1_120, "person")
    ('1 search', '2 searches', '1,120 people')
    >>> plural(1, "enrolled person", number=False)
    'enrolled person'
    """
    word = noun if count == 1 else (plural_form or plural_of(noun))
    if not number:
        return word
    shown = f"{int(count):,}" if float(count).is_integer() else f"{count:,}"
    return f"{shown} {word}"
