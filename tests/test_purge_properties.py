"""Properties of the retention rule and the purge over random calls, holds, clocks and zones.

Calls start at wall times near the 2026 DST changes (Amsterdam 29 March 02:00→03:00 and
25 October 03:00→02:00, New York 8 March and 1 November), sent with or without their offset and
normalised to UTC by ingest's own metadata parser; the purge runs at a random instant near one
call's deadline with a random look-ahead. Each example gets a fresh catalogue (hypothesis runs
many examples in one test, so function-scoped fixtures would be shared between them) and unique
call ids in the shared S3 bucket.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from ingest.metadata import MetadataOptions, parse_metadata
from settings import Settings
from storage.catalogue import Call, Catalogue, Hold, Job, Tombstone
from storage.connect import Storage
from storage.embedded_s3 import S3Endpoint
from storage.objects import ObjectStore
from storage.purge import call_prefix, purge
from storage.retention import days_left, deadline, is_expired
from tests.postgres_server import PostgresServer
from tests.stores import settings_for
from tests.test_purge import rows_of

ZONES = ("Europe/Amsterdam", "America/New_York", "UTC")
DST_CHANGES_2026 = (  # local wall times of the changes
    datetime(2026, 3, 29, 2),
    datetime(2026, 10, 25, 3),
    datetime(2026, 3, 8, 2),
    datetime(2026, 11, 1, 2),
)
RETENTION_DAYS: int = Settings.model_fields["retention_days"].default  # every purge example's
MICROSECOND = timedelta(microseconds=1)


@st.composite
def call_starts(draw: st.DrawFn) -> datetime:
    """A start as a PBX may send it — a wall time within 36 h of a DST change in one of ZONES,
    offset-less or with an offset (either side of a repeated hour) — read the way ingest does."""
    zone = draw(st.sampled_from(ZONES))
    wall = draw(st.sampled_from(DST_CHANGES_2026)) + draw(
        st.timedeltas(-timedelta(hours=36), timedelta(hours=36))
    )
    if draw(st.booleans()):
        text = wall.replace(tzinfo=ZoneInfo(zone), fold=draw(st.integers(0, 1))).isoformat()
    else:
        text = wall.isoformat()
    meta = parse_metadata(
        {"call_id": "probe", "started_at": text}, options=MetadataOptions(timezone=zone)
    )
    return meta.started_at


@dataclass(frozen=True)
class DrawnCall:
    started_at: datetime
    holds: tuple[bool, ...]  # per hold: still active (else released)
    versions: int  # of its one object


@dataclass(frozen=True)
class PurgeCase:
    calls: tuple[DrawnCall, ...]
    now: datetime
    lookahead_s: float


JITTER = st.one_of(
    st.just(timedelta(0)),
    st.sampled_from([-MICROSECOND, MICROSECOND, -timedelta(seconds=1), timedelta(seconds=1)]),
    st.timedeltas(-timedelta(days=3), timedelta(days=3)),
)


@st.composite
def purge_cases(draw: st.DrawFn) -> PurgeCase:
    """Calls with random holds, and a purge clock within days (often a microsecond) of one of
    their deadlines, with the look-ahead of an hourly scheduler, none, or anything up to 2 h."""
    calls = draw(
        st.lists(
            st.builds(
                DrawnCall,
                started_at=call_starts(),
                holds=st.lists(st.booleans(), max_size=2).map(tuple),
                versions=st.integers(1, 2),
            ),
            min_size=1,
            max_size=6,
        )
    )
    lookahead_s = draw(st.one_of(st.sampled_from([0.0, 3600.0]), st.floats(0.0, 7200.0)))
    pivot = draw(st.sampled_from(calls)).started_at
    now = deadline(pivot, RETENTION_DAYS) - timedelta(seconds=lookahead_s) + draw(JITTER)
    return PurgeCase(tuple(calls), now, lookahead_s)


@dataclass(frozen=True)
class Trace:
    """Everything of one call the purge may touch, to compare before and after."""

    rows: dict[str, int]
    call: dict[str, object] | None
    objects: list[tuple[str, str | None, bool]]
    tombstone: tuple[object, ...] | None


def trace(storage: Storage, call_id: str) -> Trace:
    with storage.catalogue.session() as session:
        call = session.get(Call, call_id)
        tombstone = session.get(Tombstone, call_id)
    objects = storage.objects.list_versions(
        storage.settings.bucket_recordings, prefix=call_prefix(call_id)
    )
    return Trace(
        rows=rows_of(storage, call_id),
        call=call.model_dump() if call else None,
        objects=sorted((o.key, o.version_id, o.is_delete_marker) for o in objects),
        tombstone=(
            (tombstone.call_date, tombstone.deleted_at, tombstone.reason) if tombstone else None
        ),
    )


def add_calls(
    storage: Storage, calls: tuple[DrawnCall, ...], *, prefix: str = "prop"
) -> dict[str, DrawnCall]:
    """Call rows (with a job and their holds) inserted directly, one object per call; the ids
    are unique (the bucket is shared) and start with ``prefix``."""
    by_id = {f"{prefix}-{uuid.uuid4().hex[:12]}": call for call in calls}
    with storage.catalogue.session() as session:
        for call_id, call in by_id.items():
            key = call_prefix(call_id) + "original.wav"
            session.add(
                Call(
                    id=call_id, started_at=call.started_at, duration_s=1.0, channels=1,
                    sample_rate=8000, codec="pcm_mulaw", sha256="0" * 64, original_key=key,
                )
            )  # fmt: skip
            session.flush()
            session.add(Job(call_id=call_id))
            for active in call.holds:
                released = None if active else call.started_at + timedelta(days=1)
                session.add(
                    Hold(
                        call_id=call_id, reason="dispute", created_by="handler",
                        review_at=call.started_at + timedelta(days=365), released_at=released,
                    )
                )  # fmt: skip
    for call_id, call in by_id.items():
        for version in range(call.versions):
            storage.objects.put(
                storage.settings.bucket_recordings,
                call_prefix(call_id) + "original.wav",
                f"{call_id} version {version}".encode(),
            )
    return by_id


def check_purge_keeps_the_promise(storage: Storage, case: PurgeCase) -> None:
    """The property: exactly the calls at or past their deadline by the next run, unless
    actively held, are erased — objects (every version), rows, with a tombstone; everything else
    is untouched; a dry run foretells it and a second run changes nothing."""
    assert storage.settings.retention_days == RETENTION_DAYS
    calls = add_calls(storage, case.calls)
    next_run = case.now + timedelta(seconds=case.lookahead_s)
    past = {i for i, c in calls.items() if is_expired(c.started_at, RETENTION_DAYS, next_run)}
    held = {i for i, c in calls.items() if any(c.holds)}
    due = past - held
    before = {call_id: trace(storage, call_id) for call_id in calls}

    dry = purge(storage, now=case.now, lookahead_s=case.lookahead_s, dry_run=True)
    assert (set(dry.calls_purged), dry.held) == (due, len(past & held))
    assert {call_id: trace(storage, call_id) for call_id in calls} == before, "a dry run deletes"

    report = purge(storage, now=case.now, lookahead_s=case.lookahead_s)
    assert sorted(report.calls_purged) == sorted(due) and report.held == len(past & held)
    assert report.objects_deleted == sum(calls[call_id].versions for call_id in due)
    after = {call_id: trace(storage, call_id) for call_id in calls}
    for call_id, call in calls.items():
        if call_id in due:
            assert after[call_id] == Trace(
                rows=dict.fromkeys(before[call_id].rows, 0),
                call=None,
                objects=[],
                tombstone=(call.started_at.date(), case.now, "retention period ended"),
            ), call
        else:
            assert after[call_id] == before[call_id], call

    again = purge(storage, now=case.now, lookahead_s=case.lookahead_s)
    assert (again.calls_purged, again.objects_deleted) == ([], 0)
    assert {call_id: trace(storage, call_id) for call_id in calls} == after
    with storage.catalogue.session() as session:
        tombstones = session.exec(select(Tombstone.call_id)).all()
    assert sorted(tombstones) == sorted(due), "one tombstone per erased call, none for the rest"


@contextlib.contextmanager
def fresh_storage(
    data_dir: Path, endpoint: S3Endpoint, objects: ObjectStore, *, database_url: str | None
) -> Iterator[Storage]:
    settings = settings_for(data_dir, endpoint, database_url=database_url)
    catalogue = Catalogue.open(settings.catalogue_url)
    try:
        yield Storage(settings=settings, objects=objects, catalogue=catalogue)
    finally:
        catalogue.close()


@settings(max_examples=25, deadline=None)
@given(case=purge_cases())
def test_purge_erases_exactly_the_calls_past_their_deadline_and_not_held_sqlite(
    tmp_path_factory: pytest.TempPathFactory,
    s3_endpoint: S3Endpoint,
    object_store: ObjectStore,
    case: PurgeCase,
):
    data_dir = tmp_path_factory.mktemp("purge-example")
    with fresh_storage(data_dir, s3_endpoint, object_store, database_url=None) as storage:
        check_purge_keeps_the_promise(storage, case)


@pytest.mark.postgres
@settings(max_examples=8, deadline=None)
@given(case=purge_cases())
def test_purge_erases_exactly_the_calls_past_their_deadline_and_not_held_postgres(
    tmp_path_factory: pytest.TempPathFactory,
    s3_endpoint: S3Endpoint,
    object_store: ObjectStore,
    postgres_server: PostgresServer,
    case: PurgeCase,
):
    """The server runs in Europe/Amsterdam: a comparison done in its local time would show."""
    url = postgres_server.create_database()
    try:
        data_dir = tmp_path_factory.mktemp("purge-example-pg")
        with fresh_storage(data_dir, s3_endpoint, object_store, database_url=url) as storage:
            check_purge_keeps_the_promise(storage, case)
    finally:
        postgres_server.drop_database(url)


# -- the rule itself ------------------------------------------------------------------------

INSTANTS = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
IN_ANY_ZONE = st.sampled_from([ZoneInfo(z) for z in ZONES])
RETENTION = st.integers(1, 3650)
NEAR = st.one_of(JITTER, st.timedeltas(-timedelta(days=400), timedelta(days=400)))


@given(started=INSTANTS, days=RETENTION, offset=NEAR, zone=IN_ANY_ZONE)
def test_a_call_expires_exactly_at_its_deadline_and_days_left_never_overpromises(
    started: datetime, days: int, offset: timedelta, zone: ZoneInfo
):
    """Starts as stored (UTC), the clock given in any zone: expired from the deadline on, not a
    microsecond before; ``days_left`` = n means the call is still there for n whole days and
    gone within n + 1. (Arithmetic here is in UTC: adding days to a zoned time is wall-clock.)"""
    end = started + timedelta(days=days)
    clock = end + offset

    def expired_at(instant: datetime) -> bool:
        return is_expired(started, days, instant.astimezone(zone))

    assert deadline(started, days) == end
    assert expired_at(clock) == (offset >= timedelta(0))
    assert expired_at(end) and not expired_at(end - MICROSECOND)
    left = days_left(started, days, clock.astimezone(zone))
    assert not expired_at(clock + timedelta(days=left) - MICROSECOND)
    assert expired_at(clock + timedelta(days=left + 1))
    assert (left < 0) <= expired_at(clock) <= (left <= 0)


@given(started=INSTANTS, days=RETENTION, zone=IN_ANY_ZONE)
def test_the_deadline_is_the_same_instant_whatever_zone_the_start_is_given_in(
    started: datetime, days: int, zone: ZoneInfo
):
    assert deadline(started.astimezone(zone), days) == deadline(started, days)


WINTER_2026 = st.datetimes(
    min_value=datetime(2026, 1, 1), max_value=datetime(2026, 3, 1), timezones=st.just(UTC)
)


@settings(max_examples=10, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(
    started=WINTER_2026,
    early=st.timedeltas(MICROSECOND, timedelta(hours=1) - MICROSECOND),
    zone=st.sampled_from(ZONES[:2]),
)
def test_the_purge_never_erases_early_whatever_zone_now_is_given_in(
    tmp_path_factory: pytest.TempPathFactory,
    s3_endpoint: S3Endpoint,
    object_store: ObjectStore,
    started: datetime,
    early: timedelta,
    zone: str,
):
    """A winter start has its deadline in summer time, so the hour of the DST change lies
    between the two: a purge up to an hour before the deadline must not take the call."""
    data_dir = tmp_path_factory.mktemp("purge-zone")
    with fresh_storage(data_dir, s3_endpoint, object_store, database_url=None) as storage:
        add_calls(storage, (DrawnCall(started, holds=(), versions=1),))
        try:
            now = (deadline(started, RETENTION_DAYS) - early).astimezone(ZoneInfo(zone))
            assert purge(storage, now=now, dry_run=True).calls_purged == []
        finally:  # the shared bucket keeps nothing of this example
            purge(storage, now=datetime(2027, 1, 1, tzinfo=UTC))
