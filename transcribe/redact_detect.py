"""Find personal data in one speaker's token stream: the detectors behind :mod:`redact`.

Structured data with letters in it goes first, because its digits alone would be typed wrong or
kept: e-mail addresses, IBANs ("NL30 Rabo 0317..."), postcodes ("3528 BK") and dates written
with a month name. What is left are plain digit sequences ("0317, 452, 967", "nul zes, vier
acht, ..."), which are hidden when long and typed by checksum and context
(:mod:`redact_classify`). Amounts and ordinary dates are recognised so they are kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stdnum.nl import postcode

from transcribe.numbers_nl import parse_cardinal
from transcribe.redact_classify import Context
from transcribe.redact_tokens import Token, Unit, build_units, is_soft, next_index, previous_index

KEEP = "KEEP"

_AT_WORDS = frozenset(("apenstaartje", "apestaartje", "apenstaart", "apestaart", "at"))
_EMAIL_CONNECTORS = frozenset(
    ("punt", "dot", "streepje", "underscore", "liggend", "laag", "lage", "koppelteken", "min")
)
_IBAN_COUNTRIES = frozenset(
    ("NL", "BE", "DE", "FR", "LU", "GB", "ES", "IT", "AT", "CH", "PL", "PT", "IE", "DK", "SE")
)
# Dutch banks as said on the phone and their IBAN bank codes (RABO, INGB, ABNA, SNSB, ASNB...).
_BANK_NAMES = frozenset(
    {"rabo", "rabobank", "ing", "ingb", "abn", "amro", "abna", "abnamro", "sns", "snsb", "asn"}
    | {"asnb", "triodos", "trio", "knab", "bunq", "regiobank", "rbrb", "revolut"}
)
_BANK_PREFIXES = ("rabo", "abn", "triod", "regio", "knab", "bunq")
_MIN_ACCOUNT_DIGITS = 6  # after a bank name without country code: "Rabo 0317452967"
# Two-letter words and abbreviations that follow a number in ordinary speech: not postcode
# letters unless the word "postcode" is near.
_ABBREVIATIONS = frozenset(
    {"OK", "NL", "EU", "TV", "ID", "BV", "NV", "PC", "KM", "CM", "MM", "KG", "GB", "MB", "TB"}
)
_SHORT_WORDS = frozenset(
    {"en", "in", "op", "is", "de", "te", "ik", "je", "om", "of", "al", "nu", "na", "ze", "we"}
    | {"zo", "er", "ja", "af", "uw"}
)


@dataclass
class Span:
    """Tokens ``first..last`` of the stream are one finding of ``kind`` (or kept: ``KEEP``)."""

    first: int
    last: int
    kind: str


@dataclass
class Stream:
    """One speaker's tokens with their number units and what has been claimed so far."""

    tokens: list[Token]
    context: Context
    units: list[Unit] = field(init=False)
    blocked: list[bool] = field(init=False)
    spans: list[Span] = field(default_factory=list)
    _starts: dict[int, Unit] = field(init=False)
    _ends: dict[int, Unit] = field(init=False)

    def __post_init__(self) -> None:
        self.units = build_units(self.tokens)
        self.blocked = [False] * len(self.tokens)
        self._starts = {u.first: u for u in self.units}
        self._ends = {u.last: u for u in self.units}

    def claim(self, first: int, last: int, kind: str) -> None:
        self.spans.append(Span(first, last, kind))
        for i in range(first, last + 1):
            self.blocked[i] = True

    def free(self, first: int, last: int) -> bool:
        return not any(self.blocked[first : last + 1])

    def near(self, first: int, last: int, *, before: int = 20, after: int = 6) -> list[str]:
        return self.context.near(self.tokens[first], self.tokens[last], before=before, after=after)

    def unit_at(self, i: int | None) -> Unit | None:
        """The unit that starts at token ``i``."""
        return None if i is None else self._starts.get(i)

    def unit_ending(self, i: int) -> Unit | None:
        """The unit that ends at token ``i``."""
        return self._ends.get(i)

    def sequence_at(self, i: int | None) -> list[Unit]:
        """The units joined by soft tokens that start at token ``i`` ("0317, 452, 967")."""
        unit = self.unit_at(i)
        found: list[Unit] = []
        while unit is not None and self.free(unit.first, unit.last):
            found.append(unit)
            j = unit.last + 1
            while j < len(self.tokens) and is_soft(self.tokens[j]):
                j += 1  # commas, dashes, "eh"
            unit = self.unit_at(j)
        return found


def _digits(units: list[Unit]) -> str:
    return "".join(u.digits for u in units)


# --- e-mail -------------------------------------------------------------------------------


def _at_sign(tokens: list[Token], i: int) -> int | None:
    """Last token of an "@" starting at ``i``: "@", "apenstaartje", or Whisper's "apen starten"."""
    t = tokens[i]
    if t.text == "@":
        return i
    if t.kind != "word":
        return None
    if t.norm in _AT_WORDS or t.norm.startswith(("apensta", "apesta")):
        return i
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    if t.norm in ("apen", "ape") and nxt is not None and nxt.norm.startswith(("st", "sd")):
        return i + 1
    return None


def _letter(token: Token) -> bool:
    return token.kind == "word" and len(token.text) == 1


def _is_atom(token: Token) -> bool:
    return token.kind in ("word", "num") and token.norm not in _EMAIL_CONNECTORS


def _local_part(tokens: list[Token], at: int) -> int | None:
    """First token of the address before the "@" ("mark punt jansen", "mark.jansen")."""
    j = at - 1
    while j >= 0 and tokens[j].text == ",":
        j -= 1
    if j < 0 or not _is_atom(tokens[j]):
        return None
    start = j
    while start > 0:
        k = start - 1
        if tokens[start].glued and (_is_atom(tokens[k]) or tokens[k].text in "._-"):
            start = k
            continue
        m = k
        while m >= 0 and tokens[m].kind == "word" and tokens[m].norm in _EMAIL_CONNECTORS:
            m -= 1
        if m < k and m >= 0 and _is_atom(tokens[m]):
            start = m
            continue
        break
    while tokens[start].kind == "punct":
        start += 1
    previous = tokens[start - 1] if start > 0 else None
    if _is_number(tokens[start]) and previous is not None and _is_name_like(previous):
        start -= 1  # "jansen vijfentachtig apenstaartje": the digits end the name
    return start


def _is_number(token: Token) -> bool:
    return token.kind == "num" or parse_cardinal(token.norm) is not None


def _is_name_like(token: Token) -> bool:
    norm = token.norm
    return (
        _is_atom(token)
        and token.kind == "word"
        and len(norm) > 2
        and norm not in _SHORT_WORDS
        and "mail" not in norm
        and "adres" not in norm
        and not _is_number(token)
    )


def _domain(tokens: list[Token], at: int) -> tuple[int, bool] | None:
    """Last token of the address after the "@" and whether it had a dot."""
    n = len(tokens)
    j = at + 1
    while j < n and tokens[j].text == ",":
        j += 1
    if j >= n or not _is_atom(tokens[j]):
        return None
    end, dotted = j, False
    while end + 1 < n:
        k = end + 1
        glued_next = k + 1 < n and tokens[k + 1].glued and _is_atom(tokens[k + 1])
        if tokens[k].glued and (_is_atom(tokens[k]) or (tokens[k].text in "._-" and glued_next)):
            dotted = dotted or tokens[k].text == "."
            end = k
            continue
        m = k
        while m < n and tokens[m].kind == "word" and tokens[m].norm in _EMAIL_CONNECTORS:
            m += 1
        if m > k and m < n and _is_atom(tokens[m]):
            dotted, end = True, m
            while end + 1 < n and _letter(tokens[end]) and _letter(tokens[end + 1]):
                end += 1  # a spelled top-level domain: "punt N L"
            continue
        break
    return end, dotted


def detect_emails(stream: Stream) -> None:
    tokens = stream.tokens
    for i in range(len(tokens)):
        at_last = _at_sign(tokens, i)
        if at_last is None or not stream.free(i, at_last):
            continue
        start = _local_part(tokens, i)
        domain = _domain(tokens, at_last)
        weak = tokens[i].norm in ("at", "apen", "ape")
        if weak and (start is None or domain is None or not domain[1]):
            continue  # "at" is also the past tense of "eten"; only a dotted domain makes it "@"
        if start is None and domain is None:
            continue
        last = at_last if domain is None else domain[0]
        stream.claim(i if start is None else start, last, "EMAIL")


# --- IBAN -------------------------------------------------------------------------------------


def _country_code(tokens: list[Token], i: int) -> int | None:
    """Last token of an IBAN country code at ``i``: "NL", "nl", spelled "N L", "BE"..."""
    t = tokens[i]
    if t.kind != "word":
        return None
    if t.norm == "nl" or t.text in _IBAN_COUNTRIES:
        return i
    if len(t.text) == 1 and i + 1 < len(tokens):
        nxt = tokens[i + 1]
        if nxt.kind == "word" and len(nxt.text) == 1 and (t.text + nxt.text).upper() == "NL":
            return i + 1
    return None


def _bank_code(tokens: list[Token], i: int | None) -> int | None:
    """Last token of a bank code at ``i``: "RABO", "Rabo", Whisper's "Rabot", "R A B O"."""
    if i is None or tokens[i].kind != "word":
        return None
    t = tokens[i]
    if len(t.text) == 1:
        j = i
        while j + 1 < len(tokens) and j - i < 3 and tokens[j + 1].kind == "word":
            if len(tokens[j + 1].text) != 1:
                break
            j += 1
        return j
    if t.norm in _BANK_NAMES or t.norm.startswith(_BANK_PREFIXES):
        return i
    if t.text.isupper() and 2 <= len(t.text) <= 6:
        return i
    return None


def detect_ibans(stream: Stream) -> None:
    """IBANs by shape: country code, check digits, bank code, account; or bank name + account.

    The shape alone decides: a checksum that fails after one misheard digit is still an IBAN.
    """
    tokens = stream.tokens
    for i in range(len(tokens)):
        if stream.blocked[i]:
            continue
        code = _country_code(tokens, i)
        if code is not None:
            check = stream.sequence_at(next_index(tokens, code))
            if not check:
                continue
            bank = _bank_code(tokens, next_index(tokens, check[-1].last))
            account = [] if bank is None else stream.sequence_at(next_index(tokens, bank))
            if len(_digits(account)) >= 3 or len(_digits(check)) >= 8:
                stream.claim(i, (account or check)[-1].last, "IBAN")
            continue
        t = tokens[i]
        if t.kind == "word" and (t.norm in _BANK_NAMES or t.norm.startswith(_BANK_PREFIXES)):
            account = stream.sequence_at(next_index(tokens, i))
            if len(_digits(account)) >= _MIN_ACCOUNT_DIGITS:
                before = previous_index(tokens, i)
                start = i
                if before is not None and tokens[before].kind == "num":
                    start = before if len(tokens[before].text) <= 2 else i  # check digits
                stream.claim(start, account[-1].last, "IBAN")


# --- postcode ---------------------------------------------------------------------------------


def _postcode_letters(tokens: list[Token], i: int, *, keyword: bool) -> tuple[str, int] | None:
    """Two postcode letters right after a number ending at token ``i``: "BK", "B K", "bk"."""
    k = i + 1
    spelled = k < len(tokens) and tokens[k].text in ",." and not tokens[k].glued
    if spelled:
        k += 1  # "drie vijf twee acht, B K"
    if k >= len(tokens) or tokens[k].kind != "word" or tokens[k].seg != tokens[i].seg:
        return None
    first = tokens[k].text
    if len(first) == 2 and not spelled:
        if keyword and first.lower() not in _SHORT_WORDS:
            return first.upper(), k
        if first.isupper() and first not in _ABBREVIATIONS:
            return first, k
        return None
    nxt = tokens[k + 1] if k + 1 < len(tokens) else None
    if len(first) == 1 and nxt is not None and nxt.kind == "word" and len(nxt.text) == 1:
        return (first + nxt.text).upper(), k + 1
    return None


def detect_postcodes(stream: Stream) -> None:
    """Dutch postcodes: four digits (written or spoken) and two letters, or four digits right
    after the word "postcode"."""
    tokens, units = stream.tokens, stream.units
    for k, unit in enumerate(units):
        if not stream.free(unit.first, unit.last):
            continue
        keyword = "POSTCODE" in stream.near(unit.first, unit.last, before=8, after=3)
        letters = _postcode_letters(tokens, unit.last, keyword=keyword)
        first, digits = k, unit.digits
        while len(digits) < 4 and first > 0 and stream.free(units[first - 1].first, unit.last):
            previous = units[first - 1]
            if not all(is_soft(tokens[j]) for j in range(previous.last + 1, units[first].first)):
                break
            first -= 1
            digits = previous.digits + digits
        if len(digits) != 4 or digits[0] == "0":
            continue
        start = units[first].first
        if letters is not None:
            valid = postcode.is_valid(f"{digits} {letters[0]}")
            if valid or keyword:
                stream.claim(start, letters[1], "POSTCODE")
        elif keyword and "POSTCODE" in stream.near(start, unit.last, before=4, after=0):
            stream.claim(start, unit.last, "POSTCODE")
