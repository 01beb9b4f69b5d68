"""Which kind of personal number a digit sequence is: checksums first, then the words around it.

The checksums come from python-stdnum (BSN 11-test, IMEI and card Luhn) and phonenumbers (Dutch
and international numbers); they say what a sequence *is* when it checks. A misheard digit
breaks a checksum, so the words around the sequence ("IBAN", "burgerservicenummer",
"polisnummer"...) and its shape (06 + 8 digits) name it next. Whether it is hidden at all is
decided by the caller from its length, never here.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import phonenumbers
from stdnum import imei, luhn
from stdnum.nl import bsn

from transcribe.redact_tokens import Token

# Word stems (lower case, no accents) that name a kind; a word containing one counts, so
# "bankrekeningnummer" and "IBAN-nummer" match. "telefoon" alone is not here: a call about a
# stolen phone says it next to the IMEI.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "IBAN": ("iban", "rekeningnummer", "rekeningnr", "bankrekening", "banknummer"),
    "BSN": ("bsn", "burgerservicenummer", "burgerservice", "sofinummer"),
    "IMEI": ("imei",),
    "CARD": ("creditcard", "kaartnummer", "pasnummer", "betaalpas", "pinpas", "mastercard"),
    "PHONE": ("telefoonnummer", "mobielnummer", "mobielenummer", "gsm", "telnr", "terugbelnummer"),
    "POLICY": (
        "polis",
        "klantnummer",
        "klantnr",
        "relatienummer",
        "dossiernummer",
        "schadenummer",
        "contractnummer",
        "referentienummer",
        "lidmaatschapsnummer",
    ),
    "DATE_OF_BIRTH": ("geboortedatum", "geboren", "geboortejaar", "verjaardag"),
    "POSTCODE": ("postcode",),
}
# Whole words only: as stems they would hide in "filosofie", "automobiel", "meerjarig".
_EXACT_KEYWORDS = {
    "rekening": "IBAN",
    "sofi": "BSN",
    "mobiel": "PHONE",
    "mobiele": "PHONE",
    "visa": "CARD",
    "amex": "CARD",
    "geb": "DATE_OF_BIRTH",
    "jarig": "DATE_OF_BIRTH",
}

# Digit counts a kind can have when a keyword names it but no checksum passes (a digit may be
# misheard, missing or doubled). An IBAN's digits without its letters: a Dutch account number
# (10) with or without the check digits (12); IBANs with letters are found by shape before.
_PLAUSIBLE_DIGITS = {
    "IBAN": range(7, 13),
    "BSN": range(7, 11),
    "IMEI": range(13, 18),
    "CARD": range(12, 20),
    "PHONE": range(8, 14),
    "POLICY": range(4, 21),
}
NUMBER_KINDS = frozenset(_PLAUSIBLE_DIGITS)
# A bare account number or a policy number has no checksum of its own, so a keyword naming it
# outranks a checksum another kind passes by chance (one 9-digit number in 11 passes the BSN test).
_NO_DIGIT_CHECK = frozenset(("IBAN", "POLICY"))


def keyword_kind(token: Token) -> str | None:
    """The kind a word names, if it is a keyword."""
    if token.kind != "word":
        return None
    if token.norm in _EXACT_KEYWORDS:
        return _EXACT_KEYWORDS[token.norm]
    for kind, stems in KEYWORDS.items():
        if any(stem in token.norm for stem in stems):
            return kind
    return None


@dataclass
class Context:
    """The keywords of a whole call, by position, so any sequence can ask what was said near it.

    Positions count words over the call in time order (both speakers when the caller gives the
    whole call), so the agent's "Mag ik uw polisnummer?" types the customer's answer.
    """

    positions: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)

    def add(self, tokens: Sequence[Token]) -> None:
        """Index one segment's keywords, also those Whisper wrote as two words ("rekening
        nummer", "polissen nummer")."""
        for i, token in enumerate(tokens):
            kind = keyword_kind(token)
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if kind is None and nxt is not None and nxt.norm in ("nummer", "nr"):
                kind = keyword_kind(replace(token, norm=token.norm + "nummer"))
            if kind is not None:
                self.positions.append(token.pos)
                self.kinds.append(kind)
                self.segments.append(token.seg)

    def near(self, first: Token, last: Token, *, before: int = 20, after: int = 6) -> list[str]:
        """Kinds named up to ``before`` words ahead of a span or ``after`` words past it, nearest
        first. Words past it count only in its own segment ("..., dat is mijn BSN"): the other
        party's next question is about the next number."""
        lo = bisect.bisect_left(self.positions, first.pos - before)
        hi = bisect.bisect_right(self.positions, last.pos + after)
        found: list[tuple[float, str]] = []
        for i in range(lo, hi):
            pos = self.positions[i]
            if pos < first.pos:
                found.append((first.pos - pos, self.kinds[i]))
            elif pos > last.pos and self.segments[i] == last.seg:
                found.append((pos - last.pos + 0.5, self.kinds[i]))
            elif first.pos <= pos <= last.pos:
                found.append((0, self.kinds[i]))
        return [kind for _, kind in sorted(found)]


def _phone_valid(digits: str, *, international: bool) -> bool:
    text = "+" + digits if international else digits
    if not international and not digits.startswith("0"):
        return False  # phonenumbers reads 9 bare digits as a Dutch number without its 0
    try:
        number = phonenumbers.parse(text, "NL")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def checksum_kinds(digits: str, *, international: bool = False) -> list[str]:
    """The kinds whose checksum or numbering plan ``digits`` passes, strongest first."""
    n = len(digits)
    found = []
    if n == 15 and imei.is_valid(digits) and not digits.startswith(("34", "37")):
        found.append("IMEI")
    if 13 <= n <= 19 and luhn.is_valid(digits) and (n != 15 or digits.startswith(("34", "37"))):
        found.append("CARD")
    if _phone_valid(digits, international=international):
        found.append("PHONE")
    if n == 9 and bsn.is_valid(digits):
        found.append("BSN")
    return found


def classify(digits: str, near: Sequence[str], *, international: bool = False) -> str:
    """Name a digit sequence that is going to be hidden.

    Args:
        digits: the sequence, words already turned into digits.
        near: the kinds named by keywords around it, nearest first.
        international: it followed a "+" or "plus", so it is a phone number if anything.

    Returns:
        The kind of the nearest keyword whose digit count fits, unless that kind has a
        checksum that fails while another kind's passes; else the checksum kind; else a kind by
        shape (06 + 8 digits is a phone, 15 digits an IMEI); else "NUMBER".
    """
    passed = checksum_kinds(digits, international=international)
    if international:
        return "PHONE"
    fitting = [k for k in near if k in _PLAUSIBLE_DIGITS and len(digits) in _PLAUSIBLE_DIGITS[k]]
    if fitting:
        keyword = fitting[0]
        if keyword in _NO_DIGIT_CHECK or keyword in passed or not passed:
            return keyword
        return passed[0]
    if passed:
        return passed[0]
    if digits.startswith("0") and len(digits) in (9, 10, 11) and digits[1] in "123456789":
        return "PHONE"
    if len(digits) == 15:
        return "IMEI"
    return "NUMBER"
