"""The search query language: parse results, one error per malformed kind, Dutch stemming that
agrees with PostgreSQL, fuzzing against real SQLite FTS5 and real PostgreSQL, and one matrix of
searches over Dutch sentences that both backends must answer identically.
"""

from __future__ import annotations

import sqlite3
import string
from collections.abc import Iterator

import psycopg
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from storage.search import (
    MAX_CHARS,
    MAX_ITEMS,
    Phrase,
    Query,
    QueryError,
    Term,
    fold,
    index_text,
    parse,
    stems,
    to_fts5,
    to_tsquery,
    tokens,
    tsvector_text,
)

FTS5_TOKENIZE = "tokenize='unicode61 remove_diacritics 2'"


def w(token: str) -> Term:
    return Term(token)


def p(token: str) -> Term:
    return Term(token, prefix=True)


def ph(*words: str) -> Phrase:
    return Phrase(words)


# --- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("schade auto", Query(((w("schade"),), (w("auto"),)))),
        ('"schade auto"', Query(((ph("schade", "auto"),),))),
        ("verzek*", Query(((p("verzek"),),))),
        ("a b OR c d", Query(((w("a"),), (w("b"), w("c")), (w("d"),)))),
        ("x OR y OR z", Query(((w("x"), w("y"), w("z")),))),
        (
            'schade -auto -"e mail" -fie*',
            Query(((w("schade"),),), (w("auto"), ph("e", "mail"), p("fie"))),
        ),
        ("Café ÉÉN", Query(((w("cafe"),), (w("een"),)))),
        ("e-mail", Query(((ph("e", "mail"),),))),
        ("06-12345678", Query(((ph("06", "12345678"),),))),
        ('"schade"', Query(((w("schade"),),))),
        ("  schade\t\nauto  ", Query(((w("schade"),), (w("auto"),)))),
        ("schade or auto", Query(((w("schade"),), (w("or"),), (w("auto"),)))),
        ("-OR schade", Query(((w("schade"),),), (w("or"),))),
        ('schade"auto fiets"', Query(((w("schade"),), (ph("auto", "fiets"),)))),
        ("schade-*", Query(((p("schade"),),))),
        ("--auto schade", Query(((w("schade"),),), (w("auto"),))),
        (" ".join(["w"] * MAX_ITEMS), Query(((w("w"),),) * MAX_ITEMS)),
        ("a" * MAX_CHARS, Query(((w("a" * MAX_CHARS),),))),
    ],
)
def test_parse_builds_the_query_tree(text: str, expected: Query) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("Schade   AUTO", "schade auto"),
        ('"Schade  Auto" -fiets verz* OR x', '"schade auto" verz* OR x -fiets'),
        ("e-mail", '"e mail"'),
    ],
)
def test_str_renders_the_canonical_query(text: str, canonical: str) -> None:
    assert str(parse(text)) == canonical


# One test per malformed kind: the message names the problem and the position, on one line.
@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        pytest.param("", ["empty search query"], id="empty"),
        pytest.param(" \t\n ", ["empty search query"], id="blank"),
        pytest.param('schade "auto', ["unbalanced double quote", "position 8"], id="quote"),
        pytest.param('schade ""', ['empty phrase ""', "position 8"], id="empty-phrase"),
        pytest.param('"   "', ['empty phrase ""', "position 1"], id="blank-phrase"),
        pytest.param("OR auto", ["OR at position 1", "nothing before"], id="or-start"),
        pytest.param("auto OR", ["OR at position 6", "nothing after"], id="or-end"),
        pytest.param("a OR OR b", ["OR at position 6", "another OR"], id="or-doubled"),
        pytest.param("a OR -b", ["OR at position 3", "exclusion"], id="or-before-exclusion"),
        pytest.param("-a OR b", ["OR at position 4", "exclusion"], id="or-after-exclusion"),
        pytest.param("schade - auto", ["'-' at position 8", "not followed"], id="lone-minus"),
        pytest.param("schade -", ["'-' at position 8", "not followed"], id="minus-at-end"),
        pytest.param("*", ["'*' at position 1", "no word before"], id="star-alone"),
        pytest.param("ver*zek", ["'*' at position 4", "'ver*zek'", "only end"], id="star-inside"),
        pytest.param("x *abc", ["'*' at position 3", "only end"], id="star-first"),
        pytest.param("ab**", ["'*' at position 3", "only end"], id="star-doubled"),
        pytest.param('"auto schade*"', ["'*' at position 13", "inside a phrase"], id="star-phrase"),
        pytest.param("x a*", ["prefix 'a*' at position 3", "too short", "2"], id="prefix-short"),
        pytest.param("é*", ["prefix 'é*' at position 1", "too short"], id="prefix-accent-short"),
        pytest.param("e-ma*", ["prefix 'e-ma*' at position 1", "not one word"], id="prefix-split"),
        pytest.param("-auto -fiets", ["only excludes"], id="only-exclusions"),
        pytest.param(
            "x" * (MAX_CHARS + 1), ["too long", f"{MAX_CHARS + 1} characters"], id="chars"
        ),
        pytest.param(" ".join("w" * (MAX_ITEMS + 1)), ["too long", "33 words"], id="items"),
        pytest.param("auto ?!", ["'?!' at position 6", "no letters or digits"], id="punctuation"),
        pytest.param('a "?!"', ["phrase '?!' at position 3", "no letters"], id="punct-phrase"),
        pytest.param("a \x00\n\x85", ["'\\x00' at position 3", "no letters"], id="control-chars"),
    ],
)
def test_malformed_query_raises_one_line_query_error(text: str, fragments: list[str]) -> None:
    with pytest.raises(QueryError) as raised:
        parse(text)
    message = str(raised.value)
    assert "\n" not in message and "\r" not in message
    for fragment in fragments:
        assert fragment in message


# --- folding and stemming -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Café", ["cafe"]),
        ("geëindigd, ÉÉN keer!", ["geeindigd", "een", "keer"]),
        ("e-mail", ["e", "mail"]),
        ("Bel 06-12345678.", ["bel", "06", "12345678"]),
        ("ﬁets²", ["fiets2"]),
        ("Straße", ["strasse"]),
        ("?!", []),
    ],
)
def test_tokens_are_folded_words_and_numbers(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("werkdag", "werkdagen"),
        ("afspraak", "afspraken"),
        ("verzekering", "verzekeringen"),
        ("Café", "cafe"),
        ("geëindigd", "GEEINDIGD"),
    ],
)
def test_word_forms_share_a_stem(one: str, other: str) -> None:
    assert stems(one) == stems(other)
    assert to_fts5(parse(one), "c") == to_fts5(parse(other), "c")


def test_index_text_stores_stems() -> None:
    assert index_text("De werkdagen, Café!") == "de werkdag caf"
    assert tsvector_text("De werkdagen, Café!") == "de werkdagen cafe"


@pytest.fixture(scope="module")
def pg(postgres_url: str) -> Iterator[psycopg.Connection]:
    url = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as connection:
        yield connection


@pytest.mark.postgres
@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=string.ascii_lowercase + "éëïöü", min_size=1, max_size=20))
def test_stems_agree_with_postgresql_dutch_stemmer(pg: psycopg.Connection, word: str) -> None:
    folded = fold(word)
    row = pg.execute("SELECT ts_lexize('dutch_stem', %s)", (folded,)).fetchone()
    assert row is not None
    assume(row[0])  # [] is a stop word: PostgreSQL drops it, see test_stop_words_...
    assert stems(folded) == row[0]


# --- fuzzing: parse never fails otherwise, and both renderings are accepted ---------------------

_PIECES = [
    *'"*- ',
    "OR",
    "or",
    "AND",
    "NOT",
    "NEAR",
    "schade",
    "Café",
    "e-mail",
    "06-12345678",
    "a",
    "ab",
    "ver",
    "'",
    "\\",
    ":",
    "(",
    ")",
    "{",
    "}",
    "^",
    "&",
    "|",
    "!",
    "<->",
    "\x00",
    "\n",
    "ﬁ",
    "ẞ",
    "İ",
    "٣",
    "漢字",
]
query_like = st.lists(st.sampled_from(_PIECES), max_size=40).map("".join)
any_text = st.one_of(
    st.text(),
    query_like,
    st.text(min_size=MAX_CHARS - 5, max_size=MAX_CHARS + 5),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=60),
)


def _parse_or_skip(text: str) -> Query:
    try:
        return parse(text)
    except QueryError:
        assume(False)
        raise


@settings(max_examples=200, deadline=None)
@given(any_text)
def test_parse_returns_a_query_or_raises_query_error(text: str) -> None:
    try:
        query = parse(text)
    except QueryError as error:
        assert "\n" not in str(error)
        return
    assert query.required
    assert parse(str(query)) == query


def fts5_table(name: str, columns: str) -> sqlite3.Connection:
    """An in-memory FTS5 table with the tokenizer the search index uses."""
    connection = sqlite3.connect(":memory:")
    connection.execute(f"CREATE VIRTUAL TABLE {name} USING fts5({columns}, {FTS5_TOKENIZE})")
    return connection


@pytest.fixture(scope="module")
def fts5() -> Iterator[sqlite3.Connection]:
    connection = fts5_table("t", "body, redacted")
    connection.executemany(
        "INSERT INTO t (body, redacted) VALUES (?, ?)",
        [(index_text(s), index_text(s)) for s in ("Schade aan de auto", "e-mail naar 06-1234")],
    )
    yield connection
    connection.close()


@settings(max_examples=100, deadline=None)
@given(st.one_of(query_like, st.text()))
def test_fts5_rendering_is_accepted_by_sqlite(fts5: sqlite3.Connection, text: str) -> None:
    query = _parse_or_skip(text)
    for column in ("body", "redacted"):
        fts5.execute("SELECT rowid FROM t WHERE t MATCH ?", (to_fts5(query, column),)).fetchall()


@pytest.mark.postgres
@settings(max_examples=100, deadline=None)
@given(st.one_of(query_like, st.text()))
def test_tsquery_rendering_is_accepted_by_postgresql(pg: psycopg.Connection, text: str) -> None:
    query = _parse_or_skip(text)
    pg.execute("SELECT to_tsquery('dutch', %s)", (to_tsquery(query),)).fetchall()


# --- rendering ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fts5", "tsquery"),
    [
        ("a b OR c d", '{col} : ("a" AND ("b" OR "c") AND "d")', "'a' & ('b' | 'c') & 'd'"),
        (
            '"Schade auto" werkdagen -verzek* -"e-mail"',
            '{col} : (("schad auto" AND "werkdag") NOT ("verzek" * OR "e mail"))',
            "('schade' <-> 'auto') & 'werkdagen' & !'verzek':* & !('e' <-> 'mail')",
        ),
        ("schade*", '{col} : ("schad" *)', "'schade':*"),
    ],
)
def test_renderers_write_the_expected_expressions(text: str, fts5: str, tsquery: str) -> None:
    assert to_fts5(parse(text), "col") == fts5
    assert to_tsquery(parse(text)) == tsquery


@pytest.mark.parametrize("column", ["", "body text", "x)", '"body"', "1col"])
def test_to_fts5_refuses_a_column_that_is_not_an_identifier(column: str) -> None:
    with pytest.raises(ValueError, match="column"):
        to_fts5(parse("schade"), column)


def test_fts5_rendering_searches_only_the_named_column(fts5: sqlite3.Connection) -> None:
    fts5.execute(
        "INSERT INTO t (rowid, body, redacted) VALUES (99, ?, ?)",
        (index_text("alleen in body"), index_text("ander")),
    )
    try:
        match = "SELECT rowid FROM t WHERE t MATCH ?"
        query = parse("alleen")
        assert fts5.execute(match, (to_fts5(query, "body"),)).fetchall() == [(99,)]
        assert fts5.execute(match, (to_fts5(query, "redacted"),)).fetchall() == []
    finally:
        fts5.execute("DELETE FROM t WHERE rowid = 99")


def test_highlight_terms_mark_required_words_stems_and_prefixes() -> None:
    highlight = parse('werkdag "schade auto" verzek* OR Café -fiets').highlight_terms()
    for word in ("werkdagen", "Schade,", "AUTO", "verzekeringen", "café", "cafe"):
        assert highlight.matches(word), word
    for word in ("fiets", "de", "werk", "verzet", ""):
        assert not highlight.matches(word), word


# --- one matrix, two backends ---------------------------------------------------------------

SENTENCES = {
    1: "Ik meld schade auto via de app.",
    2: "Mijn auto schade is groot.",
    3: "Ik heb twee werkdagen genoteerd voor de afspraken.",
    4: "De verzekering betaalt het Café niet.",
    5: "Stuur een e-mail naar 06-12345678.",
    6: "De verzekeringen zijn opgezegd.",
    7: "Een fiets met schade.",
    8: "Er is schade aan de auto.",
}

MATRIX = [
    ('"schade auto"', {1}),
    ("schade auto", {1, 2, 8}),
    ("auto schade", {1, 2, 8}),
    ('"auto schade"', {2}),
    ('"schade aan de auto"', {8}),
    ("schade", {1, 2, 7, 8}),
    ("schade -auto", {7}),
    ('schade -"schade auto"', {2, 7, 8}),
    ("schade -auto -fiets", set()),
    ("werkdag", {3}),
    ("afspraak", {3}),
    ("verzekering", {4, 6}),
    ("VERZEKERINGEN", {4, 6}),
    ("cafe", {4}),
    ("CAFÉ", {4}),
    ("verzek*", {4, 6}),
    ("schade*", {1, 2, 7, 8}),
    ("afspr*", {3}),
    ("fiets OR werkdagen", {3, 7}),
    ("auto fiets OR app", {1}),
    ("-fiets schade OR werkdag", {1, 2, 3, 8}),
    ("e-mail", {5}),
    ("mail", {5}),
    ('"06 12345678"', {5}),
    ("06-12345678", {5}),
    ("1234*", {5}),
    ("opgezegd", {6}),
    ("zebra", set()),
]


@pytest.fixture(scope="module")
def sentences_fts5() -> Iterator[sqlite3.Connection]:
    connection = fts5_table("s", "stemmed")
    connection.executemany(
        "INSERT INTO s (rowid, stemmed) VALUES (?, ?)",
        [(key, index_text(text)) for key, text in SENTENCES.items()],
    )
    yield connection
    connection.close()


@pytest.mark.parametrize(("text", "expected"), MATRIX)
def test_sqlite_fts5_finds_the_expected_sentences(
    sentences_fts5: sqlite3.Connection, text: str, expected: set[int]
) -> None:
    match = to_fts5(parse(text), "stemmed")
    rows = sentences_fts5.execute("SELECT rowid FROM s WHERE s MATCH ?", (match,)).fetchall()
    assert {row[0] for row in rows} == expected


@pytest.mark.postgres
@pytest.mark.parametrize(("text", "expected"), MATRIX)
def test_postgresql_finds_the_same_sentences(
    pg: psycopg.Connection, text: str, expected: set[int]
) -> None:
    rows = pg.execute(
        "SELECT id FROM unnest(%s::int[], %s::text[]) AS s(id, body)"
        " WHERE to_tsvector('dutch', body) @@ to_tsquery('dutch', %s)",
        (
            list(SENTENCES),
            [tsvector_text(text) for text in SENTENCES.values()],
            to_tsquery(parse(text)),
        ),
    ).fetchall()
    assert {row[0] for row in rows} == expected


@pytest.mark.postgres
def test_stop_words_only_give_an_empty_tsquery_on_postgresql(pg: psycopg.Connection) -> None:
    """Documents the one known disagreement: PostgreSQL's ``dutch`` drops stop words, SQLite
    keeps them, so ``de het`` matches nothing on PostgreSQL (the search service must say so)."""
    row = pg.execute("SELECT to_tsquery('dutch', %s)::text", (to_tsquery(parse("de het")),))
    assert row.fetchone() == ("",)
