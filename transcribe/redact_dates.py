"""Dates: a date of birth is hidden, every other date is kept (a repair on "dinsdag 13 januari").

A date is a date of birth when a keyword says so ("geboortedatum", "geboren", "geboortejaar")
within a few words, or when it is a full date older than :data:`ADULT_BIRTH_YEAR`.
Recognised forms: a day, a month name and a year in digits or words ("12 maart 1987", "twaalf
maart negentien zevenentachtig", "de twaalfde maart"), numbers with date separators
("12-03-1987", "1987-03-12", "12/3/87"), and with a keyword nearby a date read as bare numbers
("twaalf drie negentien zevenentachtig") or a bare year ("geboren in 1987").
"""

from __future__ import annotations

import datetime
from itertools import pairwise

from transcribe.numbers_nl import MONTHS, WEEKDAYS, parse_ordinal
from transcribe.redact_detect import KEEP, Stream
from transcribe.redact_tokens import Token, Unit

ADULT_BIRTH_YEAR = datetime.date.today().year - 16
"""A full date in this year or earlier is taken for a date of birth even without a keyword:
the agent's question is often in the other party's turn, Whisper mishears the customer's
"geboren" ("geworden" in a sample call), and an old full date is rarely anything else here."""

_MONTH_ABBREVIATIONS = {
    "jan": 1,
    "feb": 2,
    "mrt": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
    "sept": 9,
    "okt": 10,
    "nov": 11,
    "dec": 12,
}
_DATE_SEPARATORS = frozenset("-/.")
_APOSTROPHES = ("'", "\u2019")
_DOB = "DATE_OF_BIRTH"


def _dob_keyword(stream: Stream, first: int, last: int) -> bool:
    return _DOB in stream.near(first, last, before=12, after=4)


def _full_year(digits: str) -> int | None:
    """A year from "1987" or "87" (two digits: the most recent such year not in the future)."""
    if len(digits) == 4 and 1900 <= int(digits) <= 2099:
        return int(digits)
    if len(digits) == 2:
        this_year = datetime.date.today().year
        year = this_year - this_year % 100 + int(digits)
        return year if year <= this_year else year - 100
    return None


def _day_before(stream: Stream, month: int) -> int | None:
    """First token of the day before a month name: "12", "twaalf", "twaalfde", "12e"."""
    tokens = stream.tokens
    i = month - 1
    if i < 0 or tokens[i].seg != tokens[month].seg:
        return None
    if tokens[i].kind == "word" and tokens[i].norm in ("e", "ste", "de") and tokens[i].glued:
        i -= 1  # "12e maart"
    unit = stream.unit_ending(i)
    if unit is not None and 1 <= int(unit.digits) <= 31:
        return unit.first
    if tokens[i].kind == "word" and (parse_ordinal(tokens[i].norm) or 0) in range(1, 32):
        return i
    return None


def _year_after(stream: Stream, month: int) -> int | None:
    """Last token of a year after a month name: "1987", "negentien zevenentachtig", "'87"."""
    tokens = stream.tokens
    j = month + 1
    if j < len(tokens) and tokens[j].text == ",":
        j += 1
    if j < len(tokens) and tokens[j].text in _APOSTROPHES:
        j += 1
    first = stream.unit_at(j)
    if first is None:
        return None
    if len(first.digits) == 4 and _full_year(first.digits):
        return first.last
    second = stream.unit_at(first.last + 1)
    if first.digits in ("19", "20") and second is not None and len(second.digits) == 2:
        return second.last  # "negentien zevenentachtig"
    if len(first.digits) == 2 and tokens[j - 1].text in _APOSTROPHES:
        return first.last
    return None


def _year_digits(stream: Stream, first: int, last: int) -> str:
    return "".join(u.digits for u in stream.units if first <= u.first and u.last <= last)


def detect_word_dates(stream: Stream) -> None:
    """Dates with a month name: hide a date of birth, keep the others out of number sequences."""
    tokens = stream.tokens
    for m, token in enumerate(tokens):
        if token.kind != "word" or not stream.free(m, m):
            continue
        day = None
        if token.norm in MONTHS:
            day = _day_before(stream, m)
        elif token.norm in _MONTH_ABBREVIATIONS:
            day = _day_before(stream, m)
            if day is None:
                continue  # "jan" alone is a name
        else:
            continue
        year_last = _year_after(stream, m)
        if day is None and year_last is None:
            continue
        first = day if day is not None else m
        if first > 0 and tokens[first - 1].norm in WEEKDAYS:
            first -= 1
        last = year_last if year_last is not None else m
        if not stream.free(first, last):
            continue
        year = _full_year(_year_digits(stream, m + 1, last)) if year_last is not None else None
        old = day is not None and year is not None and year <= ADULT_BIRTH_YEAR
        stream.claim(first, last, _DOB if old or _dob_keyword(stream, first, last) else KEEP)


def numeric_date(tokens: list[Token], group: list[Unit], *, keyword: bool) -> int | None:
    """The year of a date written as numbers ("12-03-1987"), or None if ``group`` is not one.

    Without a keyword only date separators make a date, so "12 03 87" stays a number; with one,
    the numbers may be spoken ("twaalf drie negentien zevenentachtig").
    """
    parts = [u.digits for u in group]
    separators = {tokens[j].text for a, b in pairwise(group) for j in range(a.last + 1, b.first)}
    written = len(parts) == 3 and len(separators) == 1 and separators <= _DATE_SEPARATORS
    if not (written or keyword):
        return None
    if len(parts) == 4 and parts[2] in ("19", "20") and len(parts[3]) == 2:
        parts = [parts[0], parts[1], parts[2] + parts[3]]
    if len(parts) != 3:
        return None
    if len(parts[0]) == 4:
        parts = parts[::-1]  # 1987-03-12
    day, month, year = parts
    if len(day) > 2 or len(month) > 2 or not (1 <= int(day) <= 31 and 1 <= int(month) <= 12):
        return None
    return _full_year(year)


def birth_year(stream: Stream, group: list[Unit]) -> bool:
    """Whether a sequence is a bare year right after "geboren (in)" or "geboortejaar"."""
    digits = "".join(u.digits for u in group)
    if len(digits) != 4 or len(group) > 2 or _full_year(digits) is None:
        return False
    return _DOB in stream.near(group[0].first, group[-1].last, before=3, after=0)


def year_list(tokens: list[Token], group: list[Unit]) -> bool:
    """Whether a sequence is a list of years ("in 2019, 2020 en 2021"), not one number."""
    if len(group) < 2 or any(len(u.digits) != 4 or u.spoken for u in group):
        return False
    if any(not 1900 <= int(u.digits) <= 2099 for u in group):
        return False
    return all(
        tokens[j].text == "," for a, b in pairwise(group) for j in range(a.last + 1, b.first)
    )


def is_birth_date(year: int, *, keyword: bool) -> bool:
    """Whether a full date with ``year`` is hidden as a date of birth."""
    return keyword or year <= ADULT_BIRTH_YEAR
