"""Trends, call statistics and CSV export on both backends, over the real model's transcripts
of the sample calls: periods are local days and ISO weeks with the gaps filled, statistics
equal sums worked out by hand from the stored metrics, the role rules hold, every aggregate is
audited, and an analyst's CSV never holds unredacted text."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from storage.access import AccessDeniedError, Role, Viewer
from storage.audit import Action, events
from storage.catalogue import Call, CallState, Segment, Speaker, Transcript
from storage.connect import Storage
from storage.search.analytics import (
    DECIMALS,
    AnalyticsError,
    StatsRow,
    TrendRow,
    call_stats,
    term_trend,
    write_csv,
)
from storage.search.index import index_call
from storage.search.service import Filters, Hit, search
from tests.test_search import sample, store_samples
from transcribe.engine import Transcript as ModelTranscript
from transcribe.metrics import metrics_from_speech

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HANDLER = Viewer("handler", Role.COMPLAINT_HANDLER)
ANALYST = Viewer("analyst", Role.ANALYST)
ADMIN = Viewer("admin", Role.ADMIN)
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@pytest.fixture(params=["storage", "pg_storage"], ids=["sqlite", "postgres"])
def indexed(request: pytest.FixtureRequest, transcripts: dict[str, ModelTranscript]):
    storage: Storage = request.getfixturevalue(request.param)
    assert storage.settings.zone == AMSTERDAM
    return storage, store_samples(storage, transcripts)


def add_call(
    storage: Storage,
    *,
    started_at: datetime,
    text: str | None = None,
    agent: str | None = "A2117",
    team: str | None = "particulier",
    metrics: dict[str, Any] | None = None,
) -> str:
    """A call besides the samples: optionally one indexed segment and a transcript row."""
    call_id = str(uuid4())
    with storage.catalogue.session() as session:
        session.add(
            Call(
                id=call_id, started_at=started_at, duration_s=12.0, channels=1, sample_rate=8000,
                codec="pcm_s16le", agent_id=agent, team=team, sha256="0" * 64,
                original_key=f"calls/{call_id}/original.wav",
            )
        )  # fmt: skip
        session.flush()
        if text is not None:
            session.add(
                Segment(
                    call_id=call_id, speaker=Speaker.AGENT, start_s=0.0, end_s=3.0, text=text,
                    redacted_text=text, model="test",
                )
            )  # fmt: skip
            session.flush()
            index_call(session.connection(), call_id)
        if metrics is not None:
            session.add(
                Transcript(
                    call_id=call_id, model="test", layout="mono", language="nl",
                    expected_language="nl", metrics=metrics,
                )
            )  # fmt: skip
    return call_id


def all_hits(storage: Storage, text: str, viewer: Viewer = HANDLER, **filters: Any) -> list[Hit]:
    result = search(storage, text, viewer=viewer, filters=Filters(**filters), limit=1000, now=NOW)
    assert not result.more
    return result.hits


def search_events(storage: Storage) -> list[Any]:
    with storage.catalogue.session() as session:
        return events(session, action=Action.SEARCH)


# --- trend ------------------------------------------------------------------------------------


def local_period(started_at: datetime, per: str) -> date:
    day = started_at.astimezone(AMSTERDAM).date()
    year, week, _ = day.isocalendar()
    return day if per == "day" else date.fromisocalendar(year, week, 1)


@pytest.mark.parametrize(
    ("per", "step", "first", "last"),
    [
        ("day", 1, date(2026, 1, 8), date(2026, 5, 12)),  # the first and last sample call
        ("week", 7, date(2026, 1, 5), date(2026, 5, 11)),  # their weeks' Mondays
    ],
)
def test_trend_counts_matches_per_local_period_with_the_gaps_filled(
    indexed, per: str, step: int, first: date, last: date
):
    storage, _ = indexed
    hits = all_hits(storage, "emma")  # the agent says her name in every call
    segments: dict[date, int] = defaultdict(int)
    calls: dict[date, set[str]] = defaultdict(set)
    for hit in hits:
        segments[local_period(hit.started_at, per)] += 1
        calls[local_period(hit.started_at, per)].add(hit.call_id)

    rows = term_trend(storage, "emma", viewer=HANDLER, per=per, now=NOW)

    assert [row.period for row in rows] == [
        first + timedelta(days=n) for n in range(0, (last - first).days + 1, step)
    ]
    assert len(calls) == 5 and len(rows) > 5  # the periods without a call are there, as zeros
    for row in rows:
        assert (row.segments, row.calls) == (segments[row.period], len(calls[row.period]))
    assert sum(row.segments for row in rows) == len(hits)


@pytest.mark.parametrize(
    ("started_at", "local_day"),
    [
        (datetime(2026, 2, 8, 23, 30, tzinfo=UTC), date(2026, 2, 9)),  # CET: Monday 00:30
        (datetime(2026, 4, 19, 22, 30, tzinfo=UTC), date(2026, 4, 20)),  # CEST: Monday 00:30
    ],
    ids=["winter", "summer"],
)
def test_a_call_just_after_local_midnight_counts_on_its_local_day_and_week(
    indexed, started_at: datetime, local_day: date
):
    storage, _ = indexed
    add_call(storage, started_at=started_at, text="Het zonnebloemveld staat in bloei.")
    # A Sunday in UTC: counted by UTC date, it would land a day and an ISO week earlier.
    assert started_at.isoweekday() == 7 and local_day.isoweekday() == 1
    for per in ("day", "week"):
        assert term_trend(storage, "zonnebloemveld", viewer=HANDLER, per=per, now=NOW) == [
            TrendRow(period=local_day, segments=1, calls=1)
        ]


def test_the_analyst_trend_counts_only_redacted_text(indexed):
    storage, ids = indexed
    iban_hits = all_hits(storage, "0317")  # part of the IBAN the customer reads out
    assert {h.call_id for h in iban_hits} == {ids["imei_iban"]}
    assert term_trend(storage, "0317", viewer=HANDLER, now=NOW) == [
        TrendRow(period=date(2026, 2, 3), segments=len(iban_hits), calls=1)
    ]
    assert term_trend(storage, "0317", viewer=ANALYST, now=NOW) == []
    assert term_trend(storage, "emma", viewer=ANALYST, now=NOW)  # words are still counted


def test_the_trend_keeps_to_the_filters_the_team_leads_teams_and_leaves_out_erasing_calls(
    indexed,
):
    storage, ids = indexed
    lead = Viewer("lead", Role.TEAM_LEAD, teams=("zorg",))
    [row] = term_trend(storage, "emma", viewer=lead, now=NOW)
    assert (row.period, row.calls) == (date(2026, 5, 12), 1)  # health_bsn, team zorg
    assert term_trend(storage, "emma", viewer=Viewer("nobody", Role.TEAM_LEAD), now=NOW) == []
    schade = term_trend(storage, "emma", viewer=HANDLER, filters=Filters(team="schade"), now=NOW)
    assert (schade[0].period, schade[-1].period) == (date(2026, 1, 8), date(2026, 2, 3))

    with storage.catalogue.session() as session:
        session.get_one(Call, ids["health_bsn"]).state = CallState.ERASING
    rows = term_trend(storage, "emma", viewer=ADMIN, now=NOW)
    assert rows[-1].period == date(2026, 4, 22)  # the May call is being erased
    assert sum(row.calls for row in rows) == 4


# --- call statistics --------------------------------------------------------------------------


def expected_stats(storage: Storage, by: str, teams: tuple[str, ...] | None = None) -> dict:
    """The statistics worked out by hand from the stored calls and ``transcripts.metrics``."""
    with storage.catalogue.session() as session:
        calls = session.exec(select(Call)).all()
        metrics = {t.call_id: t.metrics for t in session.exec(select(Transcript)).all()}
    groups: dict[str | None, list[str]] = defaultdict(list)
    for call in calls:
        if call.state is not CallState.ERASING and (teams is None or call.team in teams):
            groups[call.agent_id if by == "agent" else call.team].append(call.id)
    expected = {}
    for key, call_ids in groups.items():
        measured = [metrics[c] for c in call_ids if c in metrics]
        stereo = [m for m in measured if m["agent_talk_s"] is not None]
        handle = sum(m["handle_time_s"] for m in measured)
        stereo_handle = sum(m["handle_time_s"] for m in stereo)
        agent = sum(m["agent_talk_s"] for m in stereo)
        customer = sum(m["customer_talk_s"] for m in stereo)
        expected[key] = StatsRow(
            by=by,
            key=key,
            calls=len(call_ids),
            transcribed=len(measured),
            handle_time_s=handle,
            mean_handle_time_s=handle / len(measured) if measured else None,
            talk_ratio=agent / (agent + customer) if stereo else None,
            silence_share=sum(m["silence_s"] for m in measured) / handle if measured else None,
            overtalk_share=sum(m["overtalk_s"] for m in stereo) / stereo_handle if stereo else None,
            mean_longest_silence_s=sum(m["longest_silence_s"] for m in measured) / len(measured)
            if measured
            else None,
            interruptions_per_call=sum(m["interruptions"] for m in stereo) / len(stereo)
            if stereo
            else None,
        )
    return expected


def assert_stats_equal(rows: list[StatsRow], expected: dict) -> None:
    assert [row.key for row in rows] == sorted(expected, key=lambda k: (k is None, k or ""))
    for row in rows:
        want = expected[row.key]
        for name in (f.name for f in fields(StatsRow)):
            got, value = getattr(row, name), getattr(want, name)
            assert got == (value if value is None else pytest.approx(value)), (row.key, name)


def add_mono_and_untranscribed_calls(storage: Storage) -> None:
    """A mono call (party fields None) for A1042, whose stereo calls have overtalk and
    interruptions to dilute, a call not yet transcribed for A2117, and one without an agent or
    team (its group comes last)."""
    mono = metrics_from_speech({"unknown": [(1.0, 5.5), (6.0, 9.0)]}, duration_s=12.0)
    assert mono.agent_talk_s is None and mono.silence_s > 0
    add_call(
        storage, started_at=datetime(2026, 3, 2, 9, tzinfo=UTC), agent="A1042", team="schade",
        metrics=mono.to_dict(),
    )  # fmt: skip
    add_call(storage, started_at=datetime(2026, 3, 3, 9, tzinfo=UTC))
    add_call(storage, started_at=datetime(2026, 3, 4, 9, tzinfo=UTC), agent=None, team=None)


@pytest.mark.parametrize("by", ["agent", "team"])
def test_stats_equal_the_sums_of_the_stored_metrics(indexed, by: str):
    storage, _ = indexed
    add_mono_and_untranscribed_calls(storage)
    expected = expected_stats(storage, by)

    rows = call_stats(storage, viewer=ADMIN, by=by, now=NOW)

    assert_stats_equal(rows, expected)
    assert rows[-1].key is None and rows[-1].calls == 1
    stats = {row.key: row for row in rows}
    if by == "agent":
        # the untranscribed call counts as a call, not in the metrics
        assert (stats["A2117"].calls, stats["A2117"].transcribed) == (3, 2)
        # the mono call is in the handle time, not in the party figures (expected_stats)
        assert (stats["A1042"].calls, stats["A1042"].transcribed) == (3, 3)
        assert stats["A1042"].overtalk_share and stats["A1042"].interruptions_per_call
    assert all(0 < row.talk_ratio < 1 for row in rows if row.talk_ratio is not None)


def test_stats_keep_to_the_filters_the_team_leads_teams_and_leave_out_erasing_calls(indexed):
    storage, ids = indexed
    lead = Viewer("lead", Role.TEAM_LEAD, teams=("zorg", "schade"))
    rows = call_stats(storage, viewer=lead, by="team", now=NOW)
    assert_stats_equal(rows, expected_stats(storage, "team", teams=("zorg", "schade")))
    assert [row.key for row in rows] == ["schade", "zorg"]
    assert call_stats(storage, viewer=Viewer("nobody", Role.TEAM_LEAD), now=NOW) == []

    spring = Filters(since=datetime(2026, 3, 1, tzinfo=UTC), until=datetime(2026, 5, 1, tzinfo=UTC))
    [row] = call_stats(storage, viewer=ADMIN, filters=spring, by="agent", now=NOW)
    assert (row.key, row.calls) == ("A2117", 2)  # policy_postcode_dob and phone_email

    with storage.catalogue.session() as session:
        session.get_one(Call, ids["health_bsn"]).state = CallState.ERASING
    by_team = call_stats(storage, viewer=ADMIN, by="team", now=NOW)
    assert "zorg" not in {row.key for row in by_team}
    assert sum(row.calls for row in by_team) == 4


def test_the_roles_filter_rules_hold_and_bad_choices_are_named(indexed):
    storage, _ = indexed
    by_customer = Filters(customer_number=sample("health_bsn")["customer_number"])
    with pytest.raises(AccessDeniedError, match="not available to the analyst role"):
        call_stats(storage, viewer=ANALYST, filters=by_customer, now=NOW)
    with pytest.raises(AccessDeniedError):
        term_trend(storage, "emma", viewer=ANALYST, filters=Filters(policy_number="1"), now=NOW)
    [row] = call_stats(storage, viewer=HANDLER, filters=by_customer, by="team", now=NOW)
    assert (row.key, row.calls) == ("zorg", 1)
    with pytest.raises(AnalyticsError, match="speaker"):
        call_stats(storage, viewer=ADMIN, filters=Filters(speaker="agent"), now=NOW)
    with pytest.raises(AnalyticsError, match="expected one of day, week"):
        term_trend(storage, "emma", viewer=ADMIN, per="month", now=NOW)
    with pytest.raises(AnalyticsError, match="expected one of agent, team"):
        call_stats(storage, viewer=ADMIN, by="queue", now=NOW)


def test_every_trend_and_stats_call_writes_one_audit_event(indexed):
    storage, _ = indexed
    term_trend(storage, "emma", viewer=ANALYST, filters=Filters(team="zorg"), per="week", now=NOW)
    [trend] = search_events(storage)
    assert (trend.actor, trend.at, trend.details["kind"], trend.details["query"]) == (
        "analyst", NOW, "trend", "emma",
    )  # fmt: skip
    assert trend.details["filters"] == {"team": "zorg"} and trend.details["per"] == "week"

    lead = Viewer("lead", Role.TEAM_LEAD, teams=("zorg",))
    call_stats(storage, viewer=lead, filters=Filters(agent="A3305"), by="team", now=NOW)
    stats, again = search_events(storage)
    assert again.id == trend.id
    assert (stats.actor, stats.details["kind"], stats.details["query"]) == ("lead", "stats", None)
    assert stats.details["filters"] == {"agent": "A3305"} and stats.details["role"] == "team_lead"


# --- CSV --------------------------------------------------------------------------------------

NUMBER = re.compile(rf"-?\d+\.\d{{{DECIMALS}}}")


def read_back(rows: list, **kwargs: Any) -> tuple[str, list[dict[str, str]]]:
    stream = io.StringIO(newline="")
    write_csv(rows, stream, **kwargs)
    text = stream.getvalue()
    return text, list(csv.DictReader(io.StringIO(text, newline="")))


def assert_round_trip(rows: list, read: list[dict[str, str]]) -> None:
    assert len(read) == len(rows)
    for row, cells in zip(rows, read, strict=True):
        for name, cell in cells.items():
            value = getattr(row, name)
            if value is None:
                assert cell == ""
            elif isinstance(value, float):
                assert NUMBER.fullmatch(cell) and float(cell) == pytest.approx(value, abs=1e-3)
            elif isinstance(value, date):
                assert type(value).fromisoformat(cell) == value
            else:
                assert cell == str(value)


def test_trend_and_stats_round_trip_through_csv(indexed, tmp_path):
    storage, _ = indexed
    add_mono_and_untranscribed_calls(storage)
    trend = term_trend(storage, "emma", viewer=HANDLER, per="week", now=NOW)
    text, read = read_back(trend)
    assert text.splitlines()[0] == "period,segments,calls"
    assert read[0]["period"] == "2026-01-05"
    assert_round_trip(trend, read)

    stats = call_stats(storage, viewer=ADMIN, by="agent", now=NOW)
    write_csv(stats, tmp_path / "stats.csv")
    with (tmp_path / "stats.csv").open(encoding="utf-8", newline="") as stream:
        read = list(csv.DictReader(stream))
    assert list(read[0]) == [f.name for f in fields(StatsRow)]
    assert_round_trip(stats, read)

    assert read_back([], of=TrendRow)[0].splitlines() == ["period,segments,calls"]
    with pytest.raises(AnalyticsError):
        write_csv([], io.StringIO())
    with pytest.raises(AnalyticsError, match="not all TrendRow"):
        write_csv([*trend, *stats], io.StringIO())


def test_an_analysts_csv_of_hits_holds_no_unredacted_text(indexed):
    storage, ids = indexed
    iban = all_hits(storage, "0317")[0]
    assert iban.call_id == ids["imei_iban"]
    with storage.catalogue.session() as session:
        segment = session.exec(
            select(Segment).where(Segment.call_id == iban.call_id, Segment.start_s == iban.start_s)
        ).one()
    # a word the analyst can search for that finds the very segment with the IBAN in it
    word = max(re.findall(r"[a-z]{3,}", segment.redacted_text.lower()), key=len)
    analyst_hits = all_hits(storage, word, ANALYST, team="schade", direction="outbound")
    assert (iban.call_id, iban.start_s) in {(h.call_id, h.start_s) for h in analyst_hits}

    assert "0317" in read_back([iban])[0]  # the check below sees unredacted text in a CSV
    text, read = read_back(analyst_hits)
    assert_round_trip(analyst_hits, read)
    assert "snippet" not in read[0] and "0317" not in text
    [iban_pii] = [pii for pii in sample("imei_iban")["pii"] if pii["kind"] == "IBAN"]
    iban_digits = re.sub(r"\D", "", iban_pii["value"])
    for cells in read:
        digits = re.sub(r"\D", "", cells["text"])
        assert not any(iban_digits[i : i + 4] in digits for i in range(len(iban_digits) - 3))
    assert {cells["started_at"] for cells in read} == {"2026-02-03T13:02:47+00:00"}


def test_csv_text_a_spreadsheet_would_run_as_a_formula_is_quoted(indexed):
    storage, _ = indexed
    add_call(storage, started_at=datetime(2026, 3, 2, 9, tzinfo=UTC), text="=1+2 zonnebloemveld")
    [cells] = read_back(all_hits(storage, "zonnebloemveld"))[1]
    assert cells["text"] == "'=1+2 zonnebloemveld"
