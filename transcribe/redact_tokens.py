"""Tokens and number units of one speaker's segments, the redactor's view of the text.

One speaker's segments are tokenised into one stream, so a number read across a pause (two
Whisper segments) is one sequence here; every token remembers its segment and character
offsets, so a finding maps back to each segment it touches. A *unit* is one number as
written or spoken: a digit group ("0317"), a number word ("vijfendertig") or several words
that make one number ("zes en veertig", "tweeduizend vijfentwintig").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from transcribe.numbers_nl import (
    MONTHS,
    is_ambiguous_een,
    normalise_word,
    parse_cardinal,
    parse_cardinal_words,
    word_digits,
)

_TOKEN = re.compile(r"(?P<num>\d+)|(?P<word>[^\W\d_]+(?:['\u2019][^\W\d_]+)*)|(?P<punct>\S)")

SOFT_PUNCT = frozenset(",.-/():;\u2013\u2014\u2026")  # and en dash, em dash, ellipsis
"""Punctuation Whisper puts between the groups of one number ("0317, 452, 967", "06-12")."""

FILLERS = frozenset(
    ("eh", "ehm", "euh", "uh", "uhm", "um", "hm", "hmm", "ja", "jaja", "ok", "oke", "okay")
)
"""Hesitations and confirmations a caller says inside a number ("nul drie één zeven, ja, vier
vijf twee"); they do not end it. Not "en": "tussen 1000 en 2000 euro" is two amounts."""

_MAX_WORDS_PER_NUMBER = 7


@dataclass(slots=True)
class Token:
    """One word, digit group or punctuation mark of a segment.

    ``pos`` counts words and digit groups over the whole call in time order, so a keyword in
    the other party's previous turn can be measured against a number in this one.
    """

    seg: int
    start: int
    end: int
    text: str
    kind: str  # "num", "word" or "punct"
    norm: str
    glued: bool  # no space between this token and the previous one, in the same segment
    pos: int


@dataclass(frozen=True, slots=True)
class Unit:
    """One number, written or spoken: tokens ``first..last`` of the stream mean ``digits``."""

    first: int
    last: int
    digits: str
    spoken: bool


def tokenize(text: str, *, seg: int, pos: int) -> list[Token]:
    """Split one segment into tokens; ``pos`` is the call-wide index of its first word."""
    tokens: list[Token] = []
    previous_end = -1
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "punct"
        raw = match.group()
        norm = normalise_word(raw) if kind == "word" else raw
        glued = match.start() == previous_end
        tokens.append(Token(seg, match.start(), match.end(), raw, kind, norm, glued, pos))
        if kind != "punct":
            pos += 1
        previous_end = match.end()
    return tokens


def is_soft(token: Token) -> bool:
    """Whether ``token`` may sit between two groups of one number without ending it."""
    if token.kind == "punct":
        return token.text in SOFT_PUNCT
    return token.kind == "word" and token.norm in FILLERS


def _number_words_at(tokens: Sequence[Token], i: int) -> tuple[int, str] | None:
    """The longest number starting at word ``i``: (last token index, digits)."""
    if tokens[i].kind != "word":
        return None
    words = [tokens[i].norm]
    single = word_digits(words[0])
    if single is None:
        return None
    best = (i, single)
    j = i
    while j + 1 < len(tokens) and j + 1 - i < _MAX_WORDS_PER_NUMBER:
        nxt = tokens[j + 1]
        if nxt.kind != "word" or nxt.seg != tokens[j].seg or nxt.glued:
            break
        if nxt.norm != "en" and parse_cardinal(nxt.norm) is None:
            break
        words.append(nxt.norm)
        j += 1
        # Word by word, not joined: "nul vijf, tien" is 0, 5, 10, not 0 and "vijftien".
        value = parse_cardinal_words(tuple(words))
        if value is not None:
            best = (j, str(value))
    return best


def build_units(tokens: Sequence[Token]) -> list[Unit]:
    """Find every number in the stream, digits and words alike, in order.

    A bare "een" counts as 1 only next to another spoken number or before a month ("een twee
    drie", "een april"); elsewhere it is the article ("een nieuw nummer", "een 06-nummer").
    """
    units: list[Unit] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind == "num":
            units.append(Unit(i, i, token.text, spoken=False))
            i += 1
            continue
        found = _number_words_at(tokens, i)
        if found is None:
            i += 1
            continue
        last, digits = found
        units.append(Unit(i, last, digits, spoken=True))
        i = last + 1
    return [u for k, u in enumerate(units) if not _is_article(tokens, units, k)]


def _is_article(tokens: Sequence[Token], units: Sequence[Unit], k: int) -> bool:
    unit = units[k]
    if unit.first != unit.last or not is_ambiguous_een(tokens[unit.first].text):
        return False
    after = next_index(tokens, unit.last)
    if after is not None and tokens[after].norm in MONTHS:
        return False
    for other in (k - 1, k + 1):
        if not 0 <= other < len(units) or not units[other].spoken:
            continue
        left, right = sorted((units[other], unit), key=lambda u: u.first)
        if joined_softly(tokens, left, right):
            return False
    return True


def next_index(tokens: Sequence[Token], i: int) -> int | None:
    """Index of the token after ``i`` skipping soft punctuation, or None at the end."""
    j = i + 1
    while j < len(tokens) and tokens[j].kind == "punct" and tokens[j].text in SOFT_PUNCT:
        j += 1
    return j if j < len(tokens) else None


def previous_index(tokens: Sequence[Token], i: int) -> int | None:
    """Index of the token before ``i`` skipping soft punctuation, or None at the start."""
    j = i - 1
    while j >= 0 and tokens[j].kind == "punct" and tokens[j].text in SOFT_PUNCT:
        j -= 1
    return j if j >= 0 else None


def joined_softly(tokens: Sequence[Token], left: Unit, right: Unit) -> bool:
    """Whether only soft tokens stand between two units, so they may be one number."""
    return all(is_soft(tokens[j]) for j in range(left.last + 1, right.first))


def runs(
    tokens: Sequence[Token], units: Sequence[Unit], blocked: Sequence[bool]
) -> list[list[Unit]]:
    """Group consecutive units that are one sequence ("0317, 452, 967"); blocked tokens
    (already found or kept) end a sequence."""
    groups: list[list[Unit]] = []
    for unit in units:
        if any(blocked[unit.first : unit.last + 1]):
            continue
        if groups:
            previous = groups[-1][-1]
            between = range(previous.last + 1, unit.first)
            if all(is_soft(tokens[j]) and not blocked[j] for j in between):
                groups[-1].append(unit)
                continue
        groups.append([unit])
    return groups
