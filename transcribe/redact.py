"""Redact personal data in Dutch call transcripts: each item becomes a typed placeholder.

Analysts see only the redacted text, so the rule is *when in doubt, redact*: a checksum decides
the placeholder's type, never whether a number is hidden. Whisper writes spoken digits as
digits ("0317, 452, 967"), as Dutch words ("nul zes, vier acht", "vijfendertig"), or both, and
a caller's pause splits a number over segments; both are read as one sequence.

Detected, in this order (see :mod:`redact_detect`, :mod:`redact_dates`):

- ``[EMAIL]``: "mark.jansen@voorbeeld.nl" and spoken "mark punt jansen apenstaartje voorbeeld
  punt nl" (also Whisper's "apen starten").
- ``[IBAN]``: a country code, check digits, a bank code and an account number, written or
  spoken ("NL30 Rabot 0317, 452, 967"), checksum or not; or a bank name and 6+ digits.
- ``[POSTCODE]``: "3528 BK", "3528BK", "drie vijf twee acht B K"; four digits after "postcode".
- ``[DATE_OF_BIRTH]``: a date near "geboren"/"geboortedatum", or a full date 16+ years old;
  every other date is kept.
- Digit sequences (words turned into digits, groups joined over commas, dashes, pauses and
  segments): 6+ digits are always hidden, 5+ when a keyword names a number nearby. The type:
  ``[IMEI]`` (15 digits, Luhn), ``[CARD]`` (Luhn, 13-19 digits), ``[PHONE]`` (a valid Dutch or
  "+"/"00" international number, phonenumbers), ``[BSN]`` (9 digits, 11-test), or the kind a
  nearby keyword names ("IBAN", "BSN", "IMEI", "polisnummer" -> ``[POLICY]``...) when a misheard
  digit breaks the checksum, else by shape, else ``[NUMBER]``.

Kept: amounts ("150 euro", "€ 4,50", "vier euro vijftig", "honderdvijftig euro"), dates that are
not a date of birth ("dinsdag 13 januari"), counts and times (shorter than 5 digits).

Not detected: names and street addresses (out of scope), e-mail addresses without an "@" word,
letters spoken as Dutch letter names ("en el" for NL), numbers with 4 digits or fewer.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from transcribe.redact_classify import NUMBER_KINDS, Context, classify
from transcribe.redact_dates import (
    birth_year,
    detect_word_dates,
    is_birth_date,
    numeric_date,
    year_list,
)
from transcribe.redact_detect import KEEP, Stream, detect_emails, detect_ibans, detect_postcodes
from transcribe.redact_tokens import Token, Unit, is_soft, runs, tokenize

__all__ = [
    "PLACEHOLDER_KINDS",
    "Finding",
    "find",
    "find_call",
    "redact",
    "redact_call",
    "redact_turns",
]

PLACEHOLDER_KINDS: tuple[str, ...] = (
    "IBAN",
    "BSN",
    "PHONE",
    "EMAIL",
    "IMEI",
    "CARD",
    "POSTCODE",
    "DATE_OF_BIRTH",
    "POLICY",
    "NUMBER",
)
"""Every placeholder kind; the placeholder is the kind in brackets: ``[IBAN]``."""

MIN_DIGITS = 6
"""A digit sequence this long is hidden whatever it is: when in doubt, redact."""
MIN_DIGITS_NEAR_KEYWORD = 5
"""Shorter sequences are hidden when a keyword ("BSN", "polisnummer") names a number nearby:
part of a number Whisper half missed is still personal data."""

_MONEY = re.compile(r"\d{1,3}(?:\.\d{3})+(?:,\d{1,2}|,-)?|\d+[.,]\d{1,2}|\d+,-")
_CURRENCY_AFTER = frozenset(("euro", "eur", "euros", "euro's", "cent", "eurocent", "€"))
_CURRENCY_BEFORE = frozenset(("€", "eur", "euro"))


@dataclass(frozen=True)
class Finding:
    """Characters ``start:end`` of segment ``segment`` are personal data of ``kind``.

    A sequence spread over several segments gives one finding per segment it touches.
    """

    kind: str
    start: int
    end: int
    segment: int = 0

    @property
    def placeholder(self) -> str:
        return f"[{self.kind}]"


def _is_amount(tokens: Sequence[Token], group: list[Unit], texts: Sequence[str]) -> bool:
    """Whether a sequence is one amount of money: "150 euro", "€ 1.250,00", "euro vijftig"."""
    first, last = group[0].first, group[-1].last
    before = tokens[first - 1] if first > 0 else None
    after = tokens[last + 1] if last + 1 < len(tokens) else None
    currency = (before is not None and before.norm in _CURRENCY_BEFORE) or (
        after is not None and after.norm in _CURRENCY_AFTER
    )
    if not currency:
        return False
    if len(group) == 1:
        return True
    if tokens[first].seg != tokens[last].seg:
        return False
    written = texts[tokens[first].seg][tokens[first].start : tokens[last].end]
    return _MONEY.fullmatch(written.replace(" ", "")) is not None


def _plus_before(tokens: Sequence[Token], first: int) -> int | None:
    """Index of a "+" or "plus" right before a sequence: it is an international number."""
    i = first - 1
    return i if i >= 0 and (tokens[i].text == "+" or tokens[i].norm == "plus") else None


def _with_glued_letters(tokens: Sequence[Token], first: int, last: int) -> tuple[int, int]:
    """Widen a sequence to letters written against it: "K0048213", "AB123456C"."""

    def letters(i: int) -> bool:
        return 0 <= i < len(tokens) and tokens[i].kind == "word" and len(tokens[i].text) <= 4

    if tokens[first].glued and letters(first - 1):
        first -= 1
    if last + 1 < len(tokens) and tokens[last + 1].glued and letters(last + 1):
        last += 1
    return first, last


def _detect_sequences(stream: Stream, texts: Sequence[str]) -> None:
    """Hide long digit sequences, keep amounts and ordinary dates; type what is hidden."""
    tokens = stream.tokens
    for group in runs(tokens, stream.units, stream.blocked):
        digits = "".join(u.digits for u in group)
        first, last = group[0].first, group[-1].last
        dob = "DATE_OF_BIRTH" in stream.near(first, last, before=12, after=4)
        year = numeric_date(tokens, group, keyword=dob)
        if year is not None:
            if is_birth_date(year, keyword=dob):
                stream.claim(first, last, "DATE_OF_BIRTH")
            continue
        if birth_year(stream, group):
            stream.claim(first, last, "DATE_OF_BIRTH")
            continue
        if _is_amount(tokens, group, texts):
            continue
        plus = _plus_before(tokens, first)
        if plus is not None and len(digits) >= 8:
            stream.claim(plus, last, "PHONE")
            continue
        near = stream.near(first, last)
        close = NUMBER_KINDS.intersection(stream.near(first, last, before=8, after=3))
        if year_list(tokens, group) and not close:
            continue
        if len(digits) >= MIN_DIGITS or (len(digits) >= MIN_DIGITS_NEAR_KEYWORD and close):
            first, last = _with_glued_letters(tokens, first, last)
            stream.claim(first, last, classify(digits, near))


def _scan(segments: Sequence[tuple[Hashable, str]]) -> list[Finding]:
    """Find personal data in a call's segments, given in time order with their speaker.

    Each speaker's segments form one stream (a number continues over that speaker's pauses,
    not over the other party's words); keywords count from both speakers.
    """
    texts = [text for _, text in segments]
    streams: dict[Hashable, list[Token]] = {}
    context = Context()
    pos = 0
    for index, (speaker, text) in enumerate(segments):
        tokens = tokenize(text, seg=index, pos=pos)
        pos += sum(1 for t in tokens if t.kind != "punct")
        context.add(tokens)
        streams.setdefault(speaker, []).extend(tokens)
    findings: list[Finding] = []
    for tokens in streams.values():
        stream = Stream(tokens, context)
        for detect in (detect_emails, detect_ibans, detect_postcodes, detect_word_dates):
            detect(stream)
        _detect_sequences(stream, texts)
        for span in stream.spans:
            if span.kind != KEEP:
                findings.extend(_per_segment(tokens, span.first, span.last, span.kind))
    return sorted(findings, key=lambda f: (f.segment, f.start))


def _per_segment(tokens: Sequence[Token], first: int, last: int, kind: str) -> list[Finding]:
    """Split a finding at segment boundaries, trimming punctuation and hesitations ("eh", "ja")
    at each part's edges: they were only between the groups of the number."""
    parts: dict[int, list[Token]] = {}
    for token in tokens[first : last + 1]:
        parts.setdefault(token.seg, []).append(token)
    found = []
    for seg, part in parts.items():
        inner = [i for i, t in enumerate(part) if not _edge_noise(t)]
        if inner:
            found.append(Finding(kind, part[inner[0]].start, part[inner[-1]].end, seg))
    return found


def _edge_noise(token: Token) -> bool:
    return is_soft(token) or (token.kind == "punct" and token.text not in "+@")


def _apply(texts: Sequence[str], findings: Sequence[Finding]) -> list[str]:
    by_segment: dict[int, list[Finding]] = {}
    for finding in findings:
        by_segment.setdefault(finding.segment, []).append(finding)
    redacted = list(texts)
    for seg, items in by_segment.items():
        text, cursor = texts[seg], 0
        out: list[str] = []
        for finding in sorted(items, key=lambda f: f.start):
            if finding.start < cursor:
                continue  # claims never overlap; this keeps a bug from garbling the text
            out += [text[cursor : finding.start], finding.placeholder]
            cursor = finding.end
        redacted[seg] = "".join(out) + text[cursor:]
    return redacted


def find(text: str) -> list[Finding]:
    """The personal data in one text, as findings with character offsets (for tests and UIs)."""
    return _scan([(0, text)])


def find_call(turns: Sequence[tuple[Hashable, str]]) -> list[Finding]:
    """The personal data in a call's segments, given in time order as (speaker, text)."""
    return _scan(turns)


def redact(text: str) -> str:
    """Replace the personal data in one text by typed placeholders ("[IBAN]").

    Use :func:`redact_turns` for a transcript: one segment alone cannot see the rest of a number
    read across a pause.
    """
    return _apply([text], find(text))[0]


def redact_turns(texts: Sequence[str]) -> list[str]:
    """Redact one speaker's consecutive segments, in time order, as one sequence.

    A number read across a pause spans segments; it is found as a whole and each segment's part
    is replaced by the placeholder. Give each speaker's segments separately: the other party's
    "ja" between two halves of an IBAN would otherwise end it.

    Args:
        texts: the segments' texts, in time order, of one speaker.

    Returns:
        One redacted text per input text, in the same order.
    """
    return _apply(texts, _scan([(0, text) for text in texts]))


def redact_call(turns: Sequence[tuple[Hashable, str]]) -> list[str]:
    """Redact a whole call's segments, given in time order as (speaker, text).

    Better than :func:`redact_turns` per speaker when both are at hand: numbers still continue
    only over one speaker's segments, but a keyword in the other party's turn ("Mag ik uw
    polisnummer?") types the answer (``[POLICY]`` rather than ``[NUMBER]``) and marks a date as
    a date of birth.

    Returns:
        One redacted text per turn, in the same order.
    """
    return _apply([text for _, text in turns], _scan(turns))
