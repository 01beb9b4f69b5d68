"""Transcript search: a parsed query and filters in, hits that jump to the moment out.

The role rule lives here, not in a page: a viewer who may not see personal data (the analyst)
is matched against the *redacted* text only and shown only redacted text, so looking up a bank
account number finds nothing for them; they cannot filter by customer or policy number either.
A team lead only finds calls of their own teams. Every search writes an audit event with the
query, the filters and the number of hits, so every lookup can be explained later.

Hits come newest first (by segment id, which grows as calls are transcribed: both FTS5 and a
B-tree can stream that order without sorting every match), ``limit`` at a time; ``more`` says
whether there are further hits rather than counting them all, which would cost a full scan for
a common word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage.access import Role, Viewer
from storage.audit import Action, record
from storage.catalogue import CallState, UTCDateTime
from storage.connect import Storage
from storage.search.index import INDEX_TABLE
from storage.search.query import Highlight, Query, parse, to_fts5, to_tsquery
from storage.search.text import tokens

SNIPPET_WORDS = 24  # words of context shown around the first match


PERSONAL_FILTERS = ("customer_number", "policy_number")


@dataclass(frozen=True)
class Filters:
    """What narrows a search besides the words; every field is optional."""

    since: datetime | None = None  # calls started at or after
    until: datetime | None = None  # calls started before
    agent: str | None = None
    team: str | None = None
    queue: str | None = None
    direction: str | None = None  # inbound / outbound
    speaker: str | None = None  # agent / customer / unknown: who said it
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    customer_number: str | None = None  # E.164 (personal data)
    policy_number: str | None = None  # (personal data)

    def masked(self) -> dict[str, Any]:
        """:meth:`given` for the audit trail: a customer or policy number filter is recorded as
        used, never its value (the trail holds no personal data)."""
        return {k: "***" if k in PERSONAL_FILTERS else v for k, v in self.given().items()}

    def given(self) -> dict[str, Any]:
        """The filters that are set, JSON-ready (for the audit trail and the CSV header)."""
        return {
            key: value.isoformat() if isinstance(value, datetime) else value
            for key, value in asdict(self).items()
            if value is not None
        }


TIMES = ("since", "until")  # bound as instants, stored as the catalogue stores them


@dataclass(frozen=True)
class Hit:
    """One matching segment: where to jump to, who said it, and the text (redacted for roles
    that may not see personal data) with the matching words marked ``**like this**``."""

    call_id: str
    started_at: datetime
    agent_id: str | None
    team: str | None
    speaker: str
    start_s: float
    end_s: float
    text: str
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "started_at": self.started_at.isoformat()}


@dataclass(frozen=True)
class SearchResult:
    query: str  # canonical form of what was searched
    hits: list[Hit] = field(default_factory=list)
    more: bool = False  # further hits exist past ``offset + limit``
    redacted: bool = False  # matched and shown against the redacted text only

    def to_dict(self) -> dict[str, Any]:
        return {
            "query": self.query,
            "redacted": self.redacted,
            "more": self.more,
            "hits": [hit.to_dict() for hit in self.hits],
        }


def search(
    storage: Storage,
    text: str,
    *,
    viewer: Viewer,
    filters: Filters | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime,
) -> SearchResult:
    """Search the transcripts as ``viewer`` may.

    Raises:
        QueryError: The query is malformed (the message says what and where).
        AccessDeniedError: A filter the viewer's role may not use.
    """
    filters = filters or Filters()
    query = parse(text)
    check_filters(filters, viewer)
    redacted = not viewer.sees_personal_data
    with storage.catalogue.session() as session:
        connection = session.connection()
        _plan_each_time(connection)
        statement, params = _statement(connection.dialect.name, query, redacted=redacted)
        where, more_params = _conditions(filters, viewer)
        typed = _typed(statement.format(where=where), more_params)
        rows = connection.execute(
            typed.columns(started_at=UTCDateTime()),
            params | more_params | {"limit": limit + 1, "offset": offset},
        ).all()
        record(
            session, actor=viewer.name, action=Action.SEARCH, at=now, query=str(query),
            filters=filters.masked(), hits=min(len(rows), limit), role=str(viewer.role),
        )  # fmt: skip
    marker = query.highlight_terms()
    hits = [_hit(row, marker, redacted=redacted) for row in rows[:limit]]
    return SearchResult(query=str(query), hits=hits, more=len(rows) > limit, redacted=redacted)


def _plan_each_time(connection: sa.Connection) -> None:
    """PostgreSQL, after a few runs of a prepared statement, may switch to one generic plan for
    every query text; for full-text matches that plan can take seconds where a plan for the
    actual words takes milliseconds. Plan per search, for this transaction only."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _statement(dialect: str, query: Query, *, redacted: bool) -> tuple[str, dict[str, Any]]:
    """The backend's full-text match, as SQL with bound parameters (user text is never
    spliced in: the rendered query is a parameter, the column name is ours)."""
    source, order, params = _match(dialect, query, redacted=redacted)
    return (
        "SELECT s.id, s.call_id, s.speaker, s.start_s, s.end_s, s.text, s.redacted_text, "
        f"c.started_at, c.agent_id, c.team {source} AND {{where}} "
        f"ORDER BY {order} DESC LIMIT :limit OFFSET :offset",
        params,
    )


def _match(dialect: str, query: Query, *, redacted: bool) -> tuple[str, str, dict[str, Any]]:
    """``FROM … WHERE <match>`` over ``s`` (segments) and ``c`` (calls), the index column that
    orders by segment id, and the parameters."""
    column = "redacted" if redacted else "body"
    if dialect == "postgresql":
        return (
            f"FROM {INDEX_TABLE} i JOIN segments s ON s.id = i.segment_id "
            "JOIN calls c ON c.id = s.call_id "
            f"WHERE i.{column} @@ to_tsquery('dutch', :match)",
            # "+ 0": never walk the primary key backwards filtering row by row, which the planner
            # picks for words it wrongly expects to be common together (a whole-table read when
            # they never co-occur); the GIN bitmap of the matches, then a top-N sort, is bounded.
            "i.segment_id + 0",
            {"match": to_tsquery(query)},
        )
    return (
        f"FROM {INDEX_TABLE} JOIN segments s ON s.id = {INDEX_TABLE}.rowid "
        "JOIN calls c ON c.id = s.call_id "
        f"WHERE {INDEX_TABLE} MATCH :match",
        f"{INDEX_TABLE}.rowid",
        {"match": to_fts5(query, column)},
    )


def _typed(statement: str, params: dict[str, Any]) -> sa.TextClause:
    """``statement`` with the time filters bound as instants (as the catalogue stores them)."""
    return sa.text(statement).bindparams(
        *(sa.bindparam(n, type_=UTCDateTime()) for n in params if n in TIMES)
    )


def _conditions(filters: Filters, viewer: Viewer) -> tuple[str, dict[str, Any]]:
    """The filters and the viewer's scope as SQL over ``c`` (calls) and ``s`` (segments)."""
    clauses = ["c.state != :erasing"]
    params: dict[str, Any] = {"erasing": str(CallState.ERASING)}
    equal = {
        "agent": "c.agent_id",
        "team": "c.team",
        "queue": "c.queue",
        "direction": "c.direction",
        "speaker": "s.speaker",
        "customer_number": "c.customer_number",
        "policy_number": "c.policy_number",
    }
    for name, column in equal.items():
        value = getattr(filters, name)
        if value is not None:
            clauses.append(f"{column} = :{name}")
            params[name] = value
    ranges = {
        "since": "c.started_at >= :since",
        "until": "c.started_at < :until",
        "min_duration_s": "c.duration_s >= :min_duration_s",
        "max_duration_s": "c.duration_s <= :max_duration_s",
    }
    for name, clause in ranges.items():
        value = getattr(filters, name)
        if value is not None:
            clauses.append(clause)
            params[name] = value
    if viewer.role is Role.TEAM_LEAD:
        names = [f"team{n}" for n in range(len(viewer.teams))]
        clauses.append(f"c.team IN ({', '.join(':' + n for n in names)})" if names else "1 = 0")
        params |= dict(zip(names, viewer.teams, strict=True))
    return " AND ".join(clauses), params


def _hit(row: Any, marker: Highlight, *, redacted: bool) -> Hit:
    text = row.redacted_text if redacted else row.text
    return Hit(
        call_id=row.call_id,
        started_at=row.started_at,
        agent_id=row.agent_id,
        team=row.team,
        speaker=row.speaker,
        start_s=row.start_s,
        end_s=row.end_s,
        text=text,
        snippet=snippet(text, marker),
    )


def snippet(text: str, marker: Highlight, *, words: int = SNIPPET_WORDS) -> str:
    """``text`` around its first matching word, matching words marked ``**so**``; long text is
    cut to ``words`` words with ``…`` where it was cut."""
    parts = text.split()
    hits = [n for n, word in enumerate(parts) if tokens(word) and marker.matches(word)]
    start = max(0, (hits[0] if hits else 0) - words // 3)
    window = parts[start : start + words]
    marked = [_mark(word) if start + n in hits else word for n, word in enumerate(window)]
    head = "… " if start > 0 else ""
    tail = " …" if start + words < len(parts) else ""
    return head + " ".join(marked) + tail


def _mark(word: str) -> str:
    """``januari.`` → ``**januari**.``: punctuation stays outside the marks."""
    lead, core, trail = _EDGES.fullmatch(word).groups()  # type: ignore[union-attr]
    return f"{lead}**{core}**{trail}" if core else word


_EDGES = re.compile(r"(\W*)(.*?)(\W*)", re.DOTALL)


# --- For aggregates over every match (storage.search.analytics) ---------------------------------


def check_filters(filters: Filters, viewer: Viewer) -> None:
    """Refuse a filter the viewer's role may not use (customer and policy number: analysts).

    Raises:
        AccessDeniedError: ``filters`` sets one.
    """
    for name in PERSONAL_FILTERS:
        if getattr(filters, name) is not None:
            viewer.require_personal_data(f"filtering by {name.replace('_', ' ')}")


def matches_per_call(
    connection: sa.Connection, query: Query, *, viewer: Viewer, filters: Filters
) -> Sequence[sa.Row[Any]]:
    """Every call :func:`search` would find for ``viewer``, unpaged and without text: rows of
    ``call_id``, ``started_at`` and ``segments`` (how many of its segments match). The same
    match, redaction rule and scope as a search, for counts over all hits rather than a page.

    Raises:
        AccessDeniedError: A filter the viewer's role may not use.
    """
    check_filters(filters, viewer)
    _plan_each_time(connection)
    source, _, params = _match(
        connection.dialect.name, query, redacted=not viewer.sees_personal_data
    )
    where, more_params = _conditions(filters, viewer)
    statement = _typed(
        f"SELECT s.call_id, c.started_at, count(*) AS segments {source} AND {where} "
        "GROUP BY s.call_id, c.started_at",
        more_params,
    )
    return connection.execute(
        statement.columns(started_at=UTCDateTime()), params | more_params
    ).all()


def call_conditions(filters: Filters, viewer: Viewer) -> sa.TextClause:
    """The filters and the viewer's scope as one condition over ``c`` (``calls AS c``), values
    bound, for queries over calls rather than segments (so ``filters.speaker`` must be unset).

    Raises:
        AccessDeniedError: A filter the viewer's role may not use.
    """
    check_filters(filters, viewer)
    where, params = _conditions(filters, viewer)
    return _typed(where, params).bindparams(**params)
