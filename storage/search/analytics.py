"""Aggregates for analysts, team leads and admins: how often a query is said over time, how
agents and teams do on the coaching metrics, and CSV files of either (or of search hits).

The role rules are the search's own (:mod:`storage.search.service`): an analyst's trend counts
matches in the *redacted* text, so a bank account number trends at zero for them; a team lead
counts only their teams' calls; erasing calls count for nobody. Each aggregate writes one audit
event (``search``, with ``kind`` trend or stats), as a search does, because a count over a
query is a lookup too.

Trend periods are days or ISO weeks in the installation's time zone: a call at 00:30 in
Amsterdam was taken on that day, whatever the date in UTC.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TextIO, get_args

import sqlalchemy as sa

from errors import CallrecError
from storage.access import Viewer
from storage.audit import Action, record
from storage.catalogue import Call, Transcript
from storage.connect import Storage
from storage.search.query import parse
from storage.search.service import Filters, Hit, call_conditions, matches_per_call

Period = Literal["day", "week"]
Grouping = Literal["agent", "team"]
DECIMALS = 3  # every number with a fraction is written with this many decimals in a CSV


class AnalyticsError(CallrecError):
    """An aggregate was asked for in a way that has no answer; the message lists the choices."""


@dataclass(frozen=True)
class TrendRow:
    """Matches of a query in one period (a local day, or an ISO week from its Monday)."""

    period: date  # the period's first day, in the installation's zone
    segments: int  # matching segments
    calls: int  # calls with at least one matching segment


@dataclass(frozen=True)
class StatsRow:
    """The coaching metrics of one agent or team; metrics are over transcribed calls only.

    Shares and the talk ratio are ratios of sums (a long call weighs more than a short one),
    each over the calls where its parts are known: the talk ratio and overtalk need the two
    parties apart, which a mono call cannot give. None where no call had the parts.
    """

    by: str  # "agent" or "team"
    key: str | None  # the agent id or the team; None for calls without one
    calls: int  # every call in scope, transcribed or not
    transcribed: int  # calls with a transcript
    handle_time_s: float  # total over the calls with metrics
    mean_handle_time_s: float | None
    talk_ratio: float | None  # agent talk / (agent + customer talk)
    silence_share: float | None  # silence / handle time
    overtalk_share: float | None  # both talking / handle time
    mean_longest_silence_s: float | None
    interruptions_per_call: float | None  # by either party


def term_trend(
    storage: Storage,
    text: str,
    *,
    viewer: Viewer,
    filters: Filters | None = None,
    per: Period = "day",
    now: datetime,
) -> list[TrendRow]:
    """Matches of the query ``text`` per local day or ISO week, oldest first.

    Periods between the first and the last with a match are included with zeros, so a chart
    shows the gaps; no match at all gives an empty list. Matching is the search's: same query
    language, filters, scope, and redacted text for an analyst.

    Raises:
        QueryError: The query is malformed.
        AccessDeniedError: A filter the viewer's role may not use.
        AnalyticsError: ``per`` is not a period.
    """
    _require(per, Period, "per")
    filters = filters or Filters()
    query = parse(text)
    with storage.catalogue.session() as session:
        calls = matches_per_call(session.connection(), query, viewer=viewer, filters=filters)
        record(
            session, actor=viewer.name, action=Action.SEARCH, at=now, kind="trend",
            query=str(query), filters=filters.masked(), per=per, calls=len(calls),
            role=str(viewer.role),
        )  # fmt: skip
    zone = storage.settings.zone
    counts: dict[date, tuple[int, int]] = {}
    for call in calls:
        start = _period_start(call.started_at.astimezone(zone).date(), per)
        segments, matched = counts.get(start, (0, 0))
        counts[start] = (segments + call.segments, matched + 1)
    if not counts:
        return []
    step = timedelta(days=1 if per == "day" else 7)
    period, last = min(counts), max(counts)
    rows = []
    while period <= last:
        segments, matched = counts.get(period, (0, 0))
        rows.append(TrendRow(period=period, segments=segments, calls=matched))
        period += step
    return rows


def call_stats(
    storage: Storage,
    *,
    viewer: Viewer,
    filters: Filters | None = None,
    by: Grouping = "agent",
    now: datetime,
) -> list[StatsRow]:
    """The coaching metrics per agent or team over the calls ``filters`` select, by key (calls
    without an agent or team last).

    A call without a transcript (not yet transcribed, or failed) counts in ``calls`` but in
    none of the metrics, so a backlog does not drag the averages towards zero. Summed in SQL
    over the metrics JSON, which both backends read as numbers, so the figures agree.

    Raises:
        AccessDeniedError: A filter the viewer's role may not use.
        AnalyticsError: ``by`` is not a grouping, or ``filters.speaker`` is set (it selects
            words, not calls).
    """
    _require(by, Grouping, "by")
    filters = filters or Filters()
    if filters.speaker is not None:
        raise AnalyticsError(
            "the speaker filter does not apply to call statistics",
            hint="it selects what a party said; leave it out",
        )
    with storage.catalogue.session() as session:
        rows = session.connection().execute(_stats_statement(by, filters, viewer)).all()
        record(
            session, actor=viewer.name, action=Action.SEARCH, at=now, kind="stats", query=None,
            filters=filters.masked(), by=by, groups=len(rows), role=str(viewer.role),
        )  # fmt: skip
    stats = [_stats_row(by, row) for row in rows]
    return sorted(stats, key=lambda row: (row.key is None, row.key or ""))


_CALLS = Call.__table__.alias("c")  # type: ignore[attr-defined]
_TRANSCRIPTS = Transcript.__table__.alias("t")  # type: ignore[attr-defined]


def _stats_statement(by: Grouping, filters: Filters, viewer: Viewer) -> sa.Select[Any]:
    key = _CALLS.c.agent_id if by == "agent" else _CALLS.c.team
    handle, silence, longest, agent, customer, overtalk, interruptions = (
        _TRANSCRIPTS.c.metrics[name].as_float()
        for name in (
            "handle_time_s", "silence_s", "longest_silence_s", "agent_talk_s",
            "customer_talk_s", "overtalk_s", "interruptions",
        )
    )  # fmt: skip
    return (
        sa.select(
            key.label("key"),
            sa.func.count().label("calls"),
            sa.func.count(_TRANSCRIPTS.c.call_id).label("transcribed"),
            sa.func.sum(handle).label("handle"),
            sa.func.count(handle).label("measured"),
            sa.func.sum(silence).label("silence"),
            sa.func.avg(longest).label("longest"),
            sa.func.sum(agent).label("agent_talk"),  # known with customer talk, or neither
            sa.func.sum(agent + customer).label("party_talk"),
            sa.func.sum(overtalk).label("overtalk"),
            sa.func.sum(sa.case((overtalk.is_not(None), handle))).label("overtalk_handle"),
            sa.func.avg(interruptions).label("interruptions"),
        )
        .select_from(_CALLS.outerjoin(_TRANSCRIPTS, _TRANSCRIPTS.c.call_id == _CALLS.c.id))
        .where(call_conditions(filters, viewer))
        .group_by(key)
    )


def _stats_row(by: Grouping, row: Any) -> StatsRow:
    return StatsRow(
        by=by,
        key=row.key,
        calls=row.calls,
        transcribed=row.transcribed,
        handle_time_s=float(row.handle or 0.0),
        mean_handle_time_s=_ratio(row.handle, row.measured),
        talk_ratio=_ratio(row.agent_talk, row.party_talk),
        silence_share=_ratio(row.silence, row.handle),
        overtalk_share=_ratio(row.overtalk, row.overtalk_handle),
        mean_longest_silence_s=_float(row.longest),
        interruptions_per_call=_float(row.interruptions),
    )


def _ratio(part: float | None, whole: float | None) -> float | None:
    return float(part or 0.0) / float(whole) if whole else None


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _period_start(day: date, per: Period) -> date:
    return day if per == "day" else day - timedelta(days=day.weekday())


def _require(value: str, choices: Any, name: str) -> None:
    """Refuse a value outside a ``Literal`` (the CLI and the app pass plain strings)."""
    if value not in get_args(choices):
        accepted = ", ".join(get_args(choices))
        raise AnalyticsError(f"{name} {value!r} is unknown", hint=f"expected one of {accepted}")


# --- CSV --------------------------------------------------------------------------------------

Row = TrendRow | StatsRow | Hit
_LEFT_OUT = {"snippet"}  # a hit's text with marks added: the text column already holds it
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_csv(
    rows: Sequence[Row],
    path_or_stream: str | os.PathLike[str] | TextIO,
    *,
    of: type[Row] | None = None,
) -> None:
    """Write trend rows, stats rows or search hits as CSV (UTF-8, comma, header row).

    Dates and times are ISO 8601 (a hit's start in UTC with its offset), numbers with a
    fraction have :data:`DECIMALS` decimals, an unknown value is an empty cell. A hit's text is
    the text the viewer was shown, so an analyst's file holds redacted text only. Text that a
    spreadsheet would run as a formula (starting ``=``, ``+``, ``-`` or ``@``) is prefixed with
    ``'``: a transcript is what a caller said, and must not become a command.

    Args:
        rows: Items of one kind.
        path_or_stream: A file to (over)write, or an open text stream (opened with
            ``newline=""``, as the csv module asks).
        of: The kind of row, for the header of an empty ``rows``; taken from ``rows`` otherwise.

    Raises:
        AnalyticsError: ``rows`` mixes kinds, or is empty and ``of`` is not given.
    """
    kind = of or (type(rows[0]) if rows else None)
    if kind is None:
        raise AnalyticsError("no rows to write", hint="pass of=TrendRow, StatsRow or Hit")
    if any(type(row) is not kind for row in rows):
        raise AnalyticsError(f"rows are not all {kind.__name__}", hint="write one kind per file")
    columns = [f.name for f in fields(kind) if f.name not in _LEFT_OUT]
    with _text_stream(path_or_stream) as stream:
        writer = csv.writer(stream)
        writer.writerow(columns)
        writer.writerows([_cell(getattr(row, name)) for name in columns] for row in rows)


@contextmanager
def _text_stream(target: str | os.PathLike[str] | TextIO) -> Iterator[TextIO]:
    if isinstance(target, str | os.PathLike):
        with Path(target).open("w", encoding="utf-8", newline="") as stream:
            yield stream
    else:
        yield target


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.{DECIMALS}f}"
    if isinstance(value, date):  # datetime included
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
