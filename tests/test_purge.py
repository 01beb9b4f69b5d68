"""The purge keeps the retention promise in both directions, against the real S3 server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlmodel import select

from ingest.backfill import LocalRecording, upload_and_ingest
from ingest.pipeline import IngestOptions, Outcome
from storage.calls import CallNotFoundError, call_detail
from storage.catalogue import Call, Hold, Job, QuarantineItem, Segment, Tombstone, metadata
from storage.connect import Storage
from storage.purge import CALL_TABLES, KEPT_AFTER_PURGE, call_prefix, purge
from tests.audio_files import make_recording

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def ingest_at(
    storage: Storage, tmp_path: Path, name: str, started: datetime, *, fmt: str = "wav-ulaw"
) -> Call:
    """Ingest a call that started at ``started`` (ingested while it was young)."""
    call_id = f"{name}-{uuid.uuid4().hex[:8]}"  # tests share the S3 server
    audio = make_recording(tmp_path / call_id, seconds=1.0, fmt=fmt)
    recording = LocalRecording(audio, {"call_id": call_id, "started_at": started.isoformat()})
    [result] = upload_and_ingest(
        storage,
        [recording],
        now=started + timedelta(hours=1),
        options=IngestOptions.from_settings(storage),
    )
    assert result.outcome == Outcome.INGESTED, result
    with storage.catalogue.session() as session:
        call = session.get_one(Call, call_id)
        session.add(
            Segment(
                call_id=call_id,
                speaker="agent",
                start_s=0,
                end_s=1,
                text="t",
                redacted_text="t",
                model="m",
            )
        )
    return call


def versions(storage: Storage, call_id: str) -> list[str]:
    return [
        v.key
        for v in storage.objects.list_versions(
            storage.settings.bucket_recordings, prefix=call_prefix(call_id)
        )
    ]


def rows_of(storage: Storage, call_id: str) -> dict[str, int]:
    with storage.catalogue.session() as session:
        return {
            model.__tablename__: len(
                session.exec(select(model).where(model.call_id == call_id)).all()
            )  # type: ignore[attr-defined]
            if model is not Call
            else int(session.get(Call, call_id) is not None)
            for model in CALL_TABLES
        }


@pytest.mark.parametrize(
    ("age", "purged"),
    [
        (180 * DAY - timedelta(hours=1), False),  # 179 d 23 h: one hour left
        (180 * DAY - timedelta(seconds=1), False),
        (180 * DAY, True),  # the deadline itself
        (180 * DAY + timedelta(seconds=1), True),
        (400 * DAY, True),
    ],
    ids=["179d23h", "180d-1s", "180d", "180d+1s", "400d"],
)
def test_purge_erases_calls_at_or_past_their_deadline_and_keeps_younger_ones(
    storage: Storage, tmp_path: Path, age: timedelta, purged: bool
):
    call = ingest_at(storage, tmp_path, "c", NOW - age)
    storage.objects.put(
        storage.settings.bucket_recordings, call.original_key, b"an overwrite: a second version"
    )

    report = purge(storage, now=NOW)

    assert (report.calls_purged == [call.id]) == purged
    if purged:
        assert versions(storage, call.id) == [], "every version of every object must go"
        assert set(rows_of(storage, call.id).values()) == {0}
        with pytest.raises(
            CallNotFoundError,
            match=r"was deleted on 2026-11-28 12:00 UTC \(retention period ended\)",
        ):
            call_detail(storage, call.id, now=NOW)
    else:
        assert len(versions(storage, call.id)) == 3  # original (two versions) and the rendition
        assert rows_of(storage, call.id) == {
            "calls": 1,
            "jobs": 1,
            "segments": 1,
            "transcripts": 0,
            "holds": 0,
        }


def test_purge_looks_ahead_to_the_next_run(storage: Storage, tmp_path: Path):
    call = ingest_at(storage, tmp_path, "soon", NOW - 180 * DAY + timedelta(minutes=30))
    assert purge(storage, now=NOW).calls_purged == []
    assert purge(storage, now=NOW, lookahead_s=3600).calls_purged == [call.id]


def test_a_held_call_survives_its_deadline_until_the_hold_is_released(
    storage: Storage, tmp_path: Path
):
    call = ingest_at(storage, tmp_path, "disputed", NOW - 200 * DAY)
    with storage.catalogue.session() as session:
        session.add(
            Hold(
                call_id=call.id,
                reason="complaint 42",
                review_at=NOW + 30 * DAY,
                created_by="handler",
            )
        )
    report = purge(storage, now=NOW)
    assert report.calls_purged == [] and report.held == 1
    assert len(versions(storage, call.id)) == 2

    with storage.catalogue.session() as session:
        hold = session.exec(select(Hold)).one()
        hold.released_at, hold.released_by = NOW, "handler"
        session.add(hold)
    assert purge(storage, now=NOW).calls_purged == [call.id]
    assert versions(storage, call.id) == [] and set(rows_of(storage, call.id).values()) == {0}


def test_a_purge_leaves_a_tombstone_without_personal_data(storage: Storage, tmp_path: Path):
    call = ingest_at(storage, tmp_path, "t", NOW - 181 * DAY)
    purge(storage, now=NOW)
    with storage.catalogue.session() as session:
        tombstone = session.get_one(Tombstone, call.id)
    assert (tombstone.call_date, tombstone.deleted_at) == ((NOW - 181 * DAY).date(), NOW)
    assert set(Tombstone.model_fields) == {"call_id", "call_date", "deleted_at", "reason"}


def test_a_purge_interrupted_after_the_objects_is_finished_by_the_next_run(
    storage: Storage, tmp_path: Path
):
    call = ingest_at(storage, tmp_path, "half", NOW - 190 * DAY)
    # as if a purge had been killed after deleting the objects, before the rows
    storage.objects.delete_prefix(storage.settings.bucket_recordings, call_prefix(call.id))
    assert purge(storage, now=NOW).calls_purged == [call.id]
    assert set(rows_of(storage, call.id).values()) == {0}


def test_quarantined_input_is_erased_at_its_deadline_too(storage: Storage, tmp_path: Path):
    bucket = storage.settings.bucket_quarantine
    q = f"q-{uuid.uuid4().hex[:8]}/"
    for key, started in ((q + "old.wav", NOW - 181 * DAY), (q + "young.wav", NOW - 10 * DAY)):
        storage.objects.put(bucket, key, b"rejected bytes")
        storage.objects.put(bucket, key + ".json", b"{}")
        with storage.catalogue.session() as session:
            session.add(
                QuarantineItem(
                    object_key=key,
                    source_key=key,
                    reason="empty",
                    received_at=started,
                    started_at=None,
                )
            )
    report = purge(storage, now=NOW)
    assert report.quarantine_purged == 1
    assert [o.key for o in storage.objects.list_versions(bucket, prefix=q)] == [
        q + "young.wav",
        q + "young.wav.json",
    ]
    with storage.catalogue.session() as session:
        assert [i.object_key for i in session.exec(select(QuarantineItem))] == [q + "young.wav"]


def test_every_table_that_refers_to_a_call_is_covered_by_the_purge():
    """Structural: a new table with a call reference must be added to CALL_TABLES (and cascade
    from calls.id) or be one of the records kept on purpose."""
    covered = {model.__tablename__ for model in CALL_TABLES}  # type: ignore[attr-defined]
    for table in metadata.tables.values():
        refers = "call_id" in table.columns or any(
            fk.column.table.name == "calls" for fk in table.foreign_keys
        )
        if not refers or table.name in KEPT_AFTER_PURGE:
            continue
        assert table.name in covered, (
            f"table {table.name} refers to calls but the purge does not cover it"
        )
        for fk in table.foreign_keys:
            if fk.column.table.name == "calls":
                assert fk.ondelete == "CASCADE", (
                    f"{table.name}.{fk.parent.name} must cascade from calls"
                )


def test_a_purge_of_nothing_is_harmless(storage: Storage):
    report = purge(storage, now=NOW)
    assert (report.calls_purged, report.objects_deleted, report.quarantine_purged) == ([], 0, 0)
    with storage.catalogue.session() as session:
        assert session.exec(select(sa.func.count()).select_from(Job)).one() == 0


def test_callrec_purge_dry_run_lists_without_deleting_and_purge_erases(
    storage: Storage, tmp_path: Path
):
    import json
    import subprocess
    import sys

    from tests.stores import callrec_env

    real_now = datetime.now(UTC)
    old = ingest_at(storage, tmp_path, "old", real_now - 181 * DAY)
    young = ingest_at(storage, tmp_path, "young", real_now - 175 * DAY)
    callrec = str(Path(sys.executable).parent / "callrec")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [callrec, "purge", *args],
            env=callrec_env(storage),
            capture_output=True,
            text=True,
            timeout=120,
        )

    dry = json.loads(run("--dry-run", "--json").stdout)
    assert dry["dry_run"] and dry["calls"] == [old.id]
    assert versions(storage, old.id), "a dry run deletes nothing"
    later = (real_now + 10 * DAY).date().isoformat()
    assert sorted(
        json.loads(run("--dry-run", "--as-of", later, "--json").stdout)["calls"]
    ) == sorted([old.id, young.id])
    refused = run("--as-of", later)
    assert (
        refused.returncode == 2
        and refused.stderr.count("\n") == 1
        and "--dry-run" in refused.stderr
    )

    done = run()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("erased 1 calls") and old.id in done.stdout
    assert versions(storage, old.id) == [] and versions(storage, young.id)
