"""The catalogue on real SQLite and real PostgreSQL: summary counts, UTC round trips, cascades,
and a clear error for a database that is not there."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from storage.catalogue import (
    AgentChannel,
    AuditEvent,
    Call,
    CallState,
    Catalogue,
    CatalogueError,
    Checkpoint,
    Hold,
    Job,
    JobState,
    QuarantineItem,
    Segment,
    Speaker,
    Tombstone,
)
from storage.connect import open_storage
from storage.embedded_s3 import S3Endpoint
from tests.stores import settings_for

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalogue(catalogue_url: str) -> Iterator[Catalogue]:
    with Catalogue.open(catalogue_url) as opened:
        yield opened


def make_call(call_id: str, started_at: datetime, **fields: Any) -> Call:
    values: dict[str, Any] = {
        "duration_s": 61.5,
        "channels": 2,
        "sample_rate": 8000,
        "codec": "pcm_s16le",
        "agent_id": "agent-7",
        "team": "claims",
        "customer_number": "+31201234567",
        "sha256": "ab" * 32,
        "original_key": f"originals/{call_id}.wav",
    }
    values.update(fields)
    return Call(id=call_id, started_at=started_at, **values)


def make_segment(call_id: str, start_s: float) -> Segment:
    return Segment(
        call_id=call_id,
        speaker=Speaker.CUSTOMER,
        start_s=start_s,
        end_s=start_s + 2.0,
        text="mijn polisnummer is 12345",
        redacted_text="mijn polisnummer is [NUMBER]",
        words=[{"word": "mijn", "start": start_s, "end": start_s + 0.3, "probability": 0.9}],
        model="whisper-base beam_size=5 vad=on",
    )


def make_hold(call_id: str, *, released: bool = False) -> Hold:
    return Hold(
        call_id=call_id,
        reason="dispute 2026-17",
        review_at=NOW + timedelta(days=30),
        created_by="handler-1",
        released_at=NOW if released else None,
        released_by="handler-1" if released else None,
    )


def test_a_fresh_catalogue_summarises_every_state_at_zero(catalogue: Catalogue) -> None:
    summary = catalogue.summary(NOW)

    assert summary.calls_by_state == {state.value: 0 for state in CallState}
    assert summary.jobs_by_state == {state.value: 0 for state in JobState}
    assert (summary.quarantined, summary.active_holds) == (0, 0)
    assert summary.oldest_call_started_at is None
    assert summary.oldest_call_age_days == 0
    assert json.loads(json.dumps(summary.to_dict()))["calls_by_state"]["ingested"] == 0


def test_summary_counts_calls_jobs_quarantine_active_holds_and_oldest_age(
    catalogue: Catalogue,
) -> None:
    states = [CallState.INGESTED, CallState.INGESTED, CallState.TRANSCRIBED, CallState.FAILED]
    with catalogue.session() as session:
        for n, state in enumerate(states):
            session.add(make_call(f"c{n}", NOW - timedelta(days=n + 0.5), state=state))
        session.flush()
        for job_state in (JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.DONE):
            session.add(Job(call_id="c0", state=job_state))
        session.add_all([make_hold("c1"), make_hold("c2"), make_hold("c3", released=True)])
        for n in range(3):
            session.add(
                QuarantineItem(object_key=f"q/{n}", source_key=f"in/{n}.wav", reason="no metadata")
            )

    summary = catalogue.summary(NOW)

    assert summary.calls_by_state == {
        "ingested": 2,
        "transcribing": 0,
        "transcribed": 1,
        "failed": 1,
        "erasing": 0,
    }
    assert summary.jobs_by_state == {"queued": 1, "running": 1, "done": 2, "failed": 0}
    assert summary.quarantined == 3
    assert summary.active_holds == 2
    assert summary.oldest_call_started_at == NOW - timedelta(days=3.5)
    assert summary.oldest_call_age_days == pytest.approx(3.5)
    assert summary.to_dict()["oldest_call_age_days"] == pytest.approx(3.5)


def test_summary_refuses_a_naive_now(catalogue: Catalogue) -> None:
    with pytest.raises(ValueError, match="aware"):
        catalogue.summary(NOW.replace(tzinfo=None))


def test_datetimes_come_back_as_the_same_instant_in_aware_utc(catalogue: Catalogue) -> None:
    plus_two = timezone(timedelta(hours=2))
    started = datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=plus_two)
    with catalogue.session() as session:
        session.add(make_call("tz", started))

    with catalogue.session() as session:
        call = session.get_one(Call, "tz")
        # The same instant, queried with a third offset, finds the row.
        found = session.exec(
            select(Call).where(Call.started_at == started.astimezone(timezone(-timedelta(hours=5))))
        ).one()

    assert call.started_at == started
    assert call.started_at.utcoffset() == timedelta(0)
    assert call.started_at.tzinfo is UTC
    assert (call.started_at.hour, call.started_at.microsecond) == (12, 123456)
    assert call.created_at.tzinfo is UTC
    assert found.id == "tz"


def test_naive_datetimes_are_refused_and_nothing_is_stored(catalogue: Catalogue) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), catalogue.session() as s:
        s.add(make_call("naive", datetime(2026, 3, 1, 12, 0)))

    with catalogue.session() as session:
        assert session.get(Call, "naive") is None


def test_enums_json_and_dates_round_trip(catalogue: Catalogue) -> None:
    extra = {"pbx_trunk": "T2", "tags": ["vip", 3], "nested": {"ok": True}}
    with catalogue.session() as session:
        session.add(
            make_call(
                "rt", NOW, agent_channel=AgentChannel.LEFT, extra=extra, state=CallState.TRANSCRIBED
            )
        )
        session.flush()
        session.add(make_segment("rt", 1.0))
        session.add(Tombstone(call_id="gone", call_date=date(2025, 9, 1), reason="retention"))
        session.add(Checkpoint(name="ingest.incoming", value="2026/03/01/x.wav"))

    with catalogue.session() as session:
        call = session.get_one(Call, "rt")
        segment = session.exec(select(Segment).where(Segment.call_id == "rt")).one()
        tombstone = session.get_one(Tombstone, "gone")
        checkpoint = session.get_one(Checkpoint, "ingest.incoming")

    assert call.state is CallState.TRANSCRIBED
    assert call.agent_channel is AgentChannel.LEFT
    assert call.extra == extra
    assert segment.speaker is Speaker.CUSTOMER
    assert segment.words[0]["word"] == "mijn"
    assert tombstone.call_date == date(2025, 9, 1)
    assert (checkpoint.value, checkpoint.updated_at.tzinfo) == ("2026/03/01/x.wav", UTC)


def test_deleting_a_call_removes_its_jobs_segments_and_holds(catalogue: Catalogue) -> None:
    with catalogue.session() as session:
        for call_id in ("doomed", "kept"):
            session.add(make_call(call_id, NOW - timedelta(days=200)))
            session.flush()
            session.add_all(
                [
                    Job(call_id=call_id),
                    make_segment(call_id, 0.0),
                    make_segment(call_id, 5.0),
                    make_hold(call_id, released=True),
                    AuditEvent(actor="purge", action="call.read", call_id=call_id),
                ]
            )

    with catalogue.session() as session:
        session.exec(sa.delete(Call).where(col(Call.id) == "doomed"))

    with catalogue.session() as session:
        for model in (Job, Segment, Hold):
            remaining = session.exec(select(model.call_id)).all()
            assert set(remaining) == {"kept"}, model.__name__
        # The audit trail is not part of the call: it outlives it.
        audited = session.exec(select(AuditEvent.call_id)).all()
        assert sorted(audited) == ["doomed", "kept"]  # type: ignore[type-var]


def test_a_failing_session_block_rolls_back(catalogue: Catalogue) -> None:
    with pytest.raises(RuntimeError), catalogue.session() as session:
        session.add(make_call("rolled-back", NOW))
        session.flush()
        raise RuntimeError("boom")

    with catalogue.session() as session:
        assert session.get(Call, "rolled-back") is None


def test_an_unreachable_postgres_url_raises_catalogue_error_without_the_password() -> None:
    with socket.socket() as sock:  # a port nobody listens on once this closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://callrec:s3cret-pw@127.0.0.1:{port}/callrec"

    with pytest.raises(CatalogueError) as caught:
        Catalogue.open(url)

    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message
    assert "\n" not in message
    assert "check" in message
    assert "s3cret-pw" not in caught.value.url


def test_a_malformed_url_raises_catalogue_error_without_echoing_it() -> None:
    with pytest.raises(CatalogueError, match="not a valid") as caught:
        Catalogue.open("not a url :: pw=s3cret")
    assert "s3cret" not in str(caught.value)


def test_opening_a_fresh_sqlite_file_waits_for_a_writer_instead_of_failing(tmp_path: Path) -> None:
    """Switching a fresh file to WAL ignores SQLite's busy timeout; the catalogue must wait."""
    import sqlite3
    import threading

    path = tmp_path / "fresh.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # a writer holds the fresh file, still in rollback mode
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        with Catalogue.open(f"sqlite:///{path}") as catalogue:
            assert catalogue.summary(datetime.now(UTC)).total_calls == 0
    finally:
        release.join()
        holder.close()


def test_the_data_folder_holding_the_catalogue_is_private_to_its_owner(
    tmp_path: Path, s3_endpoint: S3Endpoint
):
    """Anyone who can read the embedded SQLite file reads every transcript: the folder is
    created 0700, and one left readable by an earlier version is closed."""
    fresh, left_open = tmp_path / "fresh", tmp_path / "left-open"
    left_open.mkdir(mode=0o755)
    left_open.chmod(0o755)
    for data_dir in (fresh, left_open):
        with open_storage(settings_for(data_dir, s3_endpoint)):
            pass
        assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700, data_dir
        assert (data_dir / "catalogue.db").exists()
