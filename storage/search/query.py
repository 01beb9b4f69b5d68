"""The search query language: parse what a user typed once, render it for either backend.

Language (case- and accent-insensitive; ``Café`` = ``cafe``):

- ``schade auto``: both words must occur in the segment (AND).
- ``"schade auto"``: the words in that order, adjacent (a phrase). ``*`` is not allowed inside a
  phrase, and a one-word phrase is just that word (quotes do not switch stemming off).
- ``verzek*``: words starting with ``verzek``; at least 2 letters or digits before the ``*``,
  and ``*`` only at the end of a word.
- ``a OR b`` (upper case ``OR``): either; binds tighter than the implicit AND, so
  ``a b OR c d`` means a AND (b OR c) AND d. ``OR`` cannot join an exclusion.
- ``-word``, ``-"a phrase"``, ``-prefix*``: leave out segments containing it; a query needs at
  least one item that is not excluded.
- Words are matched on their Dutch stem, so ``werkdag`` finds ``werkdagen`` and ``afspraak``
  finds ``afspraken``. A prefix is stemmed too, as PostgreSQL does with ``pre:*``: the index
  holds stems, so ``schade*`` must look for ``schad*`` to find "schade" itself.
- Text is cut at anything that is not a letter or digit: something typed as one word that cuts
  into several (``e-mail``, ``06-12345678``) is searched as the phrase of its pieces.
- At most 500 characters and 32 words or phrases. Anything else is a `QueryError` naming what
  is wrong and at which position (1 = the first character).

``parse`` builds a `Query`; ``to_fts5`` and ``to_tsquery`` render it for SQLite FTS5 and for
PostgreSQL's ``to_tsquery('dutch', ...)``, so the two backends answer the same question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from errors import CallrecError
from storage.search.text import stem, stems, tokens

MAX_CHARS = 500
MAX_ITEMS = 32
MIN_PREFIX = 2

_OR_HINT = "OR goes between two words or phrases, as in: schade OR letsel"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class QueryError(CallrecError):
    """A search query that cannot be understood; the message says what and where, on one line."""


@dataclass(frozen=True)
class Term:
    """One folded word, or (``prefix=True``) the folded start of a word."""

    token: str
    prefix: bool = False

    def __str__(self) -> str:
        return f"{self.token}*" if self.prefix else self.token


@dataclass(frozen=True)
class Phrase:
    """Two or more folded words that must occur in this order, adjacent."""

    tokens: tuple[str, ...]

    def __str__(self) -> str:
        return '"' + " ".join(self.tokens) + '"'


Item = Term | Phrase
Group = tuple[Item, ...]  # alternatives joined by OR


@dataclass(frozen=True)
class Highlight:
    """What a snippet highlighter marks: words whose stem is one of ``stems`` or starts with one
    of ``prefixes`` (stemmed prefixes, as the backends match them)."""

    stems: frozenset[str]
    prefixes: frozenset[str]

    def matches(self, word: str) -> bool:
        """True if ``word``, as written in a transcript, should be marked."""
        starts = tuple(self.prefixes)
        return any(s in self.stems or s.startswith(starts) for s in stems(word))


@dataclass(frozen=True)
class Query:
    """A parsed query: every group is required (AND), no excluded item may occur."""

    required: tuple[Group, ...]
    excluded: tuple[Item, ...] = ()

    def highlight_terms(self) -> Highlight:
        """The terms worth marking in a snippet: those of the required groups, not exclusions."""
        items = [item for group in self.required for item in group]
        words = {t for i in items if isinstance(i, Phrase) for t in i.tokens}
        words |= {i.token for i in items if isinstance(i, Term) and not i.prefix}
        prefixes = {i.token for i in items if isinstance(i, Term) and i.prefix}
        return Highlight(stems=frozenset(map(stem, words)), prefixes=frozenset(map(stem, prefixes)))

    def __str__(self) -> str:
        """The canonical form, which parses back to an equal `Query`."""
        parts = [" OR ".join(map(str, group)) for group in self.required]
        return " ".join(parts + [f"-{item}" for item in self.excluded])


@dataclass(frozen=True)
class _Piece:
    """One lexed piece of the query: an item (maybe excluded) or the ``OR`` operator."""

    at: int  # 1-based position of its first character
    item: Item | None  # None for OR
    excluded: bool = False


def _quote(text: str) -> str:
    """User text in a message: repr() escapes newlines and control characters (one line)."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def parse(text: str) -> Query:
    """Parse a search query typed by a user.

    Args:
        text: the query, in the language described in this module's docstring.

    Returns:
        The `Query`; ``str()`` of it is its canonical form.

    Raises:
        QueryError: the query is empty, too long or malformed; the message names the problem
            and its position.
    """
    if len(text) > MAX_CHARS:
        raise QueryError(
            f"search query too long: {len(text)} characters (at most {MAX_CHARS})",
            hint="search for fewer or shorter words",
        )
    if not text.strip():
        raise QueryError("empty search query", hint="type one or more words to search for")
    pieces = _lex(text)
    count = sum(piece.item is not None for piece in pieces)
    if count > MAX_ITEMS:
        raise QueryError(
            f"search query too long: {count} words or phrases (at most {MAX_ITEMS})",
            hint="search for fewer words",
        )
    return _assemble(pieces)


def _lex(text: str) -> list[_Piece]:
    pieces: list[_Piece] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        at = i + 1
        excluded = text[i] == "-"
        if excluded:
            i += 1
            if i == n or text[i].isspace():
                raise QueryError(
                    f"'-' at position {at} is not followed by a word or phrase",
                    hint="write -word (no space) to leave out segments containing word",
                )
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QueryError(
                    f'unbalanced double quote: the " at position {i + 1} is never closed',
                    hint='close the phrase with another " or remove the quote',
                )
            pieces.append(_Piece(at, _phrase(text[i + 1 : end], at=i + 1), excluded))
            i = end + 1
            continue
        end = i
        while end < n and not text[end].isspace() and text[end] != '"':
            end += 1
        word = text[i:end]
        if word == "OR" and not excluded:
            pieces.append(_Piece(at, None))
        else:
            pieces.append(_Piece(at, _word(word, at=i + 1), excluded))
        i = end
    return pieces


def _phrase(content: str, *, at: int) -> Item:
    """The item of a quoted phrase whose opening quote is at position ``at``."""
    if not content.strip():
        raise QueryError(
            f'empty phrase "" at position {at}', hint="put words between the quotes or remove them"
        )
    if "*" in content:
        raise QueryError(
            f"'*' at position {at + 1 + content.index('*')} is inside a phrase",
            hint='a phrase matches whole words; write "schade auto" or schade auto*',
        )
    found = tokens(content)
    if not found:
        raise QueryError(
            f"phrase {_quote(content)} at position {at} contains no letters or digits",
            hint="search for words or numbers: punctuation is ignored",
        )
    return Term(found[0]) if len(found) == 1 else Phrase(tuple(found))


def _word(word: str, *, at: int) -> Item:
    """The item of an unquoted word starting at position ``at``."""
    if word == "*":
        raise QueryError(
            f"'*' at position {at} has no word before it", hint="write a prefix as verzek*"
        )
    star = word.find("*")
    if 0 <= star < len(word) - 1:
        raise QueryError(
            f"'*' at position {at + star} in {_quote(word)}: '*' may only end a word",
            hint="write a prefix as verzek*",
        )
    body = word[:-1] if star >= 0 else word
    found = tokens(body)
    if not found:
        raise QueryError(
            f"{_quote(word)} at position {at} contains no letters or digits",
            hint="search for words or numbers: punctuation is ignored",
        )
    if star < 0:
        return Term(found[0]) if len(found) == 1 else Phrase(tuple(found))
    if len(found) > 1:
        raise QueryError(
            f"prefix {_quote(word)} at position {at} is not one word",
            hint="a prefix cannot contain punctuation or spaces: write verzek*",
        )
    if len(found[0]) < MIN_PREFIX:
        raise QueryError(
            f"prefix {_quote(word)} at position {at} is too short: "
            f"at least {MIN_PREFIX} letters or digits before '*'",
            hint="type more of the word before '*'",
        )
    return Term(found[0], prefix=True)


def _assemble(pieces: list[_Piece]) -> Query:
    """Group the pieces: OR joins its neighbours into one group, the rest are ANDed."""
    groups: list[list[Item]] = []
    excluded: list[Item] = []
    previous: _Piece | None = None
    for piece in pieces:
        if piece.item is None:
            if previous is None:
                raise QueryError(f"OR at position {piece.at} has nothing before it", hint=_OR_HINT)
            if previous.item is None:
                raise QueryError(f"OR at position {piece.at} follows another OR", hint=_OR_HINT)
            if previous.excluded:
                raise QueryError(f"OR at position {piece.at} follows an exclusion", hint=_OR_HINT)
        elif previous is not None and previous.item is None:
            if piece.excluded:
                raise QueryError(
                    f"OR at position {previous.at} is followed by an exclusion", hint=_OR_HINT
                )
            groups[-1].append(piece.item)
        elif piece.excluded:
            excluded.append(piece.item)
        else:
            groups.append([piece.item])
        previous = piece
    if previous is not None and previous.item is None:
        raise QueryError(f"OR at position {previous.at} has nothing after it", hint=_OR_HINT)
    if not groups:
        raise QueryError(
            "the search query only excludes: nothing is left to search for",
            hint="add a word or phrase to find, as in: schade -auto",
        )
    return Query(tuple(map(tuple, groups)), tuple(excluded))


def to_fts5(query: Query, column: str) -> str:
    """An FTS5 MATCH expression over ``column``, a column filled with `index_text`.

    Terms, prefixes and phrases are matched on their stems; every token is an FTS5 string, so
    nothing the user typed can be read as FTS5 syntax. Pass it as a bound parameter.

    Raises:
        ValueError: ``column`` is not an identifier (it comes from code, never from a user).
    """
    if not _IDENTIFIER.fullmatch(column):
        raise ValueError(f"not an FTS5 column name: {column!r}")
    positive = " AND ".join(_fts5_group(group) for group in query.required)
    if query.excluded:
        # FTS5's NOT is binary: (what must match) NOT (anything excluded).
        negative = " OR ".join(map(_fts5_item, query.excluded))
        positive = f"({positive}) NOT ({negative})"
    return f"{{{column}}} : ({positive})"


def _fts5_group(group: Group) -> str:
    rendered = [_fts5_item(item) for item in group]
    return rendered[0] if len(rendered) == 1 else "(" + " OR ".join(rendered) + ")"


def _fts5_item(item: Item) -> str:
    if isinstance(item, Phrase):
        return _fts5_string(" ".join(map(stem, item.tokens)))
    return _fts5_string(stem(item.token)) + (" *" if item.prefix else "")


def _fts5_string(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def to_tsquery(query: Query) -> str:
    """Text for PostgreSQL's ``to_tsquery('dutch', %s)``, always passed as a bound parameter.

    Lexemes are the folded, unstemmed tokens: the ``dutch`` configuration stems them (prefixes
    included) and drops its stop words (``de``, ``het``, ``een``...) — a query of stop words
    only gives an empty tsquery, which matches nothing.
    """
    parts = [_ts_group(group) for group in query.required]
    parts += [f"!{_ts_item(item)}" for item in query.excluded]
    return " & ".join(parts)


def _ts_group(group: Group) -> str:
    rendered = [_ts_item(item) for item in group]
    return rendered[0] if len(rendered) == 1 else "(" + " | ".join(rendered) + ")"


def _ts_item(item: Item) -> str:
    if isinstance(item, Phrase):
        return "(" + " <-> ".join(map(_ts_lexeme, item.tokens)) + ")"
    return _ts_lexeme(item.token) + (":*" if item.prefix else "")


def _ts_lexeme(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"
