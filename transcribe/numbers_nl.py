"""Dutch number words, read the way Whisper writes them, for the redactor.

Whisper writes a spoken number either as digits or as Dutch words: single digits ("nul zes"),
compounds ("vijfendertig", "tweeëntwintig"), hundreds and thousands ("vierhonderdtwintig",
"tweeduizend vijfentwintig") and years said in two halves ("negentien zevenentachtig", even as
one word: "negentienzevenentachtig"). The redactor needs the digits behind those words to count
and check a sequence, so this module turns one word into its digits; joining words into one
number is the redactor's job (it knows the separators).

Accents are ignored ("één" = "een", "tweeëntwintig" = "tweeentwintig"); whether a bare "een" is
the article or the digit 1 cannot be told from the word, so :func:`is_ambiguous_een` lets the
caller decide from the neighbours.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

__all__ = [
    "MONTHS",
    "WEEKDAYS",
    "cardinal_words",
    "is_ambiguous_een",
    "normalise_word",
    "parse_cardinal",
    "parse_cardinal_words",
    "parse_ordinal",
    "word_digits",
]

_UNITS = {
    "nul": 0,
    "een": 1,
    "twee": 2,
    "drie": 3,
    "vier": 4,
    "vijf": 5,
    "zes": 6,
    "zeven": 7,
    "acht": 8,
    "negen": 9,
}
_TEENS = {
    "tien": 10,
    "elf": 11,
    "twaalf": 12,
    "dertien": 13,
    "veertien": 14,
    "vijftien": 15,
    "zestien": 16,
    "zeventien": 17,
    "achttien": 18,
    "negentien": 19,
}
_TENS = {
    "twintig": 20,
    "dertig": 30,
    "veertig": 40,
    "vijftig": 50,
    "zestig": 60,
    "zeventig": 70,
    "tachtig": 80,
    "negentig": 90,
}
_MULTIPLIERS = {"honderd": 100, "duizend": 1000, "miljoen": 1_000_000}
_SMALL = {**_UNITS, **_TEENS, **_TENS}
_MORPHEMES = sorted([*_SMALL, *_MULTIPLIERS, "en"], key=len, reverse=True)
_IRREGULAR_ORDINALS = {"eerste": 1, "derde": 3, "achtste": 8}

MONTHS = {
    "januari": 1,
    "februari": 2,
    "maart": 3,
    "april": 4,
    "mei": 5,
    "juni": 6,
    "juli": 7,
    "augustus": 8,
    "september": 9,
    "oktober": 10,
    "november": 11,
    "december": 12,
}
"""Dutch month names (lower case, no accents) and their numbers."""

WEEKDAYS = frozenset(
    ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
)
"""Dutch weekday names: a weekday before a date belongs to the date."""


def normalise_word(word: str) -> str:
    """Lower-case and drop accents, so "Één" and "tweeëntwintig" match the tables."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def is_ambiguous_een(word: str) -> bool:
    """True for "een"/"Een" without accents: the article as often as the digit 1."""
    return word.lower() == "een"


def _split(word: str) -> list[list[str]]:
    """Every way to write ``word`` as number morphemes (usually zero or one)."""
    results: list[list[str]] = []

    def walk(pos: int, parts: list[str]) -> None:
        if pos == len(word):
            results.append(parts)
            return
        for morpheme in _MORPHEMES:
            if word.startswith(morpheme, pos):
                walk(pos + len(morpheme), [*parts, morpheme])

    walk(0, [])
    return results


def _below_100(parts: list[str], i: int) -> list[tuple[int, int]]:
    """Parses of 1..99 at ``parts[i]`` as (value, next index): unit, teen, ten, unit-en-ten."""
    if i >= len(parts) or parts[i] not in _SMALL or parts[i] == "nul":
        return []
    found = [(_SMALL[parts[i]], i + 1)]
    tens = parts[i + 2] if i + 2 < len(parts) else ""
    if parts[i] in _UNITS and tens in _TENS and parts[i + 1] == "en":
        found.append((_UNITS[parts[i]] + _TENS[tens], i + 3))
    return found


_LEVELS = ("honderd", "duizend", "miljoen")


def _below(parts: list[str], i: int, level: int) -> list[tuple[int, int]]:
    """Parses at ``parts[i]`` of a number of a given size, as (value, next index).

    Level 0 is below 100, 1 below 1000 ("[head] honderd [en] [tail]"), 2 below a million
    ("[head] duizend [tail]"), 3 below a billion ("[head] miljoen [tail]").
    """
    if level == 0:
        return _below_100(parts, i)
    multiplier = _LEVELS[level - 1]
    factor = _MULTIPLIERS[multiplier]
    head_level = 0 if level == 1 else 1
    tail_level = level - 1
    found = list(_below(parts, i, tail_level))
    heads = [(1, i), *_below(parts, i, head_level)]
    for head, j in heads:
        if j < len(parts) and parts[j] == multiplier:
            total = head * factor
            found.append((total, j + 1))
            for k in (j + 1, j + 2):
                if k == j + 2 and parts[j + 1 : j + 2] != ["en"]:
                    continue
                found.extend((total + tail, end) for tail, end in _below(parts, k, tail_level))
    return found


@lru_cache(maxsize=4096)
def parse_cardinal(word: str) -> int | None:
    """The value of one Dutch cardinal written as one word, or None if it is not one.

    Args:
        word: "nul", "één", "vijfendertig", "honderdvijftig", "negentienhonderdzevenentachtig";
            several words are joined by the caller first ("zes en veertig" -> "zesenveertig").

    Returns:
        The value; None for anything else, including a sequence of digits written as one word
        ("tweedrie"), which is not a number but two.
    """
    norm = normalise_word(word)
    if norm == "nul":
        return 0
    for parts in _split(norm):
        for value, end in _below(parts, 0, len(_LEVELS)):
            if end == len(parts):
                return value
    return None


@lru_cache(maxsize=4096)
def parse_cardinal_words(words: tuple[str, ...]) -> int | None:
    """The value of one Dutch cardinal written as several words, or None.

    Like :func:`parse_cardinal` on the words joined ("zes en veertig" -> 46, "tweeduizend
    vijfentwintig" -> 2025), but a space must fall between two morphemes: "vijf tien" is the
    digits 5 and 10 read in pairs ("nul vijf, tien"), never 15, which is written "vijftien".
    """
    norms = [normalise_word(word) for word in words]
    if len(norms) == 1:
        return parse_cardinal(norms[0])
    if not norms or not all(norms):
        return None
    joined = "".join(norms)
    spaces = set()
    offset = 0
    for norm in norms[:-1]:
        offset += len(norm)
        spaces.add(offset)
    for parts in _split(joined):
        bounds, offset = set(), 0
        for part in parts:
            offset += len(part)
            bounds.add(offset)
        if not spaces <= bounds:
            continue
        for value, end in _below(parts, 0, len(_LEVELS)):
            if end == len(parts):
                return value
    return None


@lru_cache(maxsize=4096)
def word_digits(word: str) -> str | None:
    """The digits one number word stands for, or None.

    Besides cardinals this reads a year said in two halves and written as one word
    ("negentienzevenentachtig" -> "1987", "twintigtwaalf" -> "2012"), which is not a cardinal
    but is how Whisper writes a spoken year.
    """
    value = parse_cardinal(word)
    if value is not None:
        return str(value)
    norm = normalise_word(word)
    for century in (*_TEENS, "twintig"):
        if norm.startswith(century) and _SMALL.get(century, 0) >= 11:
            rest = parse_cardinal(norm[len(century) :])
            if rest is not None and 10 <= rest <= 99:
                return f"{_SMALL[century]}{rest}"
    return None


@lru_cache(maxsize=1024)
def parse_ordinal(word: str) -> int | None:
    """The value of a Dutch ordinal ("eerste", "twaalfde", "eenentwintigste"), or None.

    Only dates need these ("de twaalfde maart"); a number read out digit by digit never uses them.
    """
    norm = normalise_word(word)
    if norm in _IRREGULAR_ORDINALS:
        return _IRREGULAR_ORDINALS[norm]
    for suffix in ("ste", "de"):
        if norm.endswith(suffix) and len(norm) > len(suffix):
            value = parse_cardinal(norm[: -len(suffix)])
            if value is not None and value > 0:
                return value
    return None


def cardinal_words(number: int) -> str:
    """Write ``0 <= number < 10**6`` as one Dutch word, the inverse of :func:`parse_cardinal`.

    Used by the tests to speak random numbers the way Whisper may write them.
    """
    if not 0 <= number < 1_000_000:
        raise ValueError(f"cardinal_words handles 0..999999, got {number}")
    if number == 0:
        return "nul"
    names = {v: k for k, v in _SMALL.items()}
    words = ""
    thousands, rest = divmod(number, 1000)
    if thousands:
        words += ("" if thousands == 1 else cardinal_words(thousands)) + "duizend"
    hundreds, rest = divmod(rest, 100)
    if hundreds:
        words += ("" if hundreds == 1 else names[hundreds]) + "honderd"
    if rest and rest in names:
        words += names[rest]
    elif rest:
        tens, unit = divmod(rest, 10)
        joiner = "ën" if names[unit].endswith("e") else "en"
        words += names[unit] + joiner + names[tens * 10]
    return words
