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
from storage.catalogue import (
    Call,
    CallState,
    Hold,
    Job,
    QuarantineItem,
    Segment,
    Tombstone,
    metadata,
)
from storage.connect import Storage
from storage.purge import (
    CALL_DATA_BUCKETS,
    CALL_DATA_TABLES,
    KEPT_AFTER_PURGE,
    NO_CALL_DATA,
    NO_CALL_DATA_BUCKETS,
    call_prefix,
    purge,
)
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
    """Rows mentioning ``call_id`` in every table of the live schema, kept records aside."""
    counts = {}
    with storage.catalogue.session() as session:
        inspector = sa.inspect(session.connection())
        for table in inspector.get_table_names():
            if table in KEPT_AFTER_PURGE:
                continue
            columns = {c["name"] for c in inspector.get_columns(table)}
            column = "call_id" if "call_id" in columns else "id" if table == "calls" else None
            if column is not None:
                counts[table] = session.execute(
                    sa.text(f"SELECT count(*) FROM {table} WHERE {column} = :id"), {"id": call_id}
                ).scalar_one()
    assert {"calls", "jobs", "segments", "transcripts", "holds", "export_calls"} <= set(counts)
    return counts


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
        counts = rows_of(storage, call.id)
        assert counts == dict.fromkeys(counts, 0) | {"calls": 1, "jobs": 1, "segments": 1}


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


def test_every_table_of_the_live_schema_is_in_the_purge_registry(storage: Storage):
    """Structural: a new table must be classified (call data, kept record, or no call data);
    one that refers to calls must be call data or a kept record, and its foreign key must
    cascade (or, for an export's list of calls, restrict so the export is erased first)."""
    registry = CALL_DATA_TABLES | KEPT_AFTER_PURGE | NO_CALL_DATA
    with storage.catalogue.session() as session:
        inspector = sa.inspect(session.connection())
        for table in inspector.get_table_names():
            assert table in registry, f"table {table} is not in the purge registry (purge.py)"
            columns = {c["name"] for c in inspector.get_columns(table)}
            keys = inspector.get_foreign_keys(table)
            refers = "call_id" in columns or any(k["referred_table"] == "calls" for k in keys)
            if refers:
                assert table in CALL_DATA_TABLES | KEPT_AFTER_PURGE, (
                    f"table {table} refers to calls but the purge does not cover it"
                )
            for key in keys:
                if key["referred_table"] == "calls":
                    expected = "RESTRICT" if table == "export_calls" else "CASCADE"
                    assert (key["options"].get("ondelete") or "").upper() == expected, table
    assert set(metadata.tables) <= set(registry)


def test_every_bucket_on_the_server_is_in_the_purge_registry(tmp_path: Path):
    """Structural, against a fresh installation's own server: every bucket callrec creates is
    named in the registry, so a new bucket cannot escape the purge."""
    from settings import BucketNames, load_settings
    from storage.connect import open_storage

    assert set(CALL_DATA_BUCKETS) == set(BucketNames.__dataclass_fields__)
    settings = load_settings(data_dir=tmp_path / "fresh", s3_endpoint=None, database_url=None)
    with open_storage(settings) as fresh:
        names = fresh.objects.bucket_names()
    by_name = {getattr(settings.buckets, role): role for role in CALL_DATA_BUCKETS}
    for name in names:
        assert name in by_name or name in NO_CALL_DATA_BUCKETS, f"bucket {name} not in registry"


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


def test_a_purge_writes_one_audit_event_per_erased_call(storage: Storage, tmp_path: Path):
    from storage.audit import events

    old = ingest_at(storage, tmp_path, "audited", NOW - 200 * DAY)
    purge(storage, now=NOW)
    with storage.catalogue.session() as session:
        [event] = events(session, call_id=old.id)
    assert (event.actor, event.action, event.at) == ("scheduler", "purge", NOW)
    assert event.details == {"why": "retention period ended"}


def test_an_erasure_killed_after_marking_hides_the_call_and_the_next_purge_finishes_it(
    storage: Storage, tmp_path: Path
):
    """The state a crash between marking and deleting leaves: the call is hidden at once,
    also when it is young (an erasure request), and the next purge run erases it."""
    from storage.access import Role, Viewer
    from storage.calls import CallFilters, find_calls

    young = ingest_at(storage, tmp_path, "marked", NOW - 3 * DAY)
    with storage.catalogue.session() as session:
        session.get_one(Call, young.id).state = CallState.ERASING
    admin = Viewer("privacy-officer", Role.ADMIN)
    listed = find_calls(storage, admin, CallFilters(), now=NOW)
    assert young.id not in [row.call_id for row in listed]
    with pytest.raises(CallNotFoundError, match="is being erased"):
        call_detail(storage, young.id, now=NOW)

    assert purge(storage, now=NOW).calls_purged == [young.id]
    assert versions(storage, young.id) == []
    assert set(rows_of(storage, young.id).values()) == {0}
    with storage.catalogue.session() as session:
        assert (
            session.get_one(Tombstone, young.id).reason == "erasure finished after an interruption"
        )


def test_an_export_holding_a_purged_call_goes_with_it(storage: Storage, tmp_path: Path):
    from storage.audit import events
    from storage.catalogue import Export, ExportCall
    from storage.purge import export_prefix

    old = ingest_at(storage, tmp_path, "exported", NOW - 181 * DAY)
    young = ingest_at(storage, tmp_path, "kept", NOW - 10 * DAY)
    export_id = f"exp-{uuid.uuid4().hex[:8]}"
    bucket = storage.settings.bucket_exports
    storage.objects.put(bucket, export_prefix(export_id) + "calls.zip", b"zip with both calls")
    with storage.catalogue.session() as session:
        session.add(
            Export(
                id=export_id, kind="call", object_key=export_prefix(export_id) + "calls.zip",
                reason="dispute", created_by="t", expires_at=NOW + DAY,
            )
        )  # fmt: skip
        session.flush()
        session.add_all([ExportCall(export_id=export_id, call_id=c.id) for c in (old, young)])

    assert purge(storage, now=NOW).calls_purged == [old.id]
    assert list(storage.objects.list_versions(bucket, prefix=export_prefix(export_id))) == []
    with storage.catalogue.session() as session:
        assert session.get(Export, export_id) is None
        assert session.exec(select(ExportCall)).all() == []
        assert session.get(Call, young.id) is not None  # the other call stays
        [event] = events(session, call_id=old.id)
        assert event.details["exports_removed"] == [export_id]


def test_incoming_leftovers_older_than_the_retention_period_are_erased(storage: Storage):
    """Nothing in incoming is older than the moment it was written; judged from a time when the
    fresh upload is past the period, it goes, and before that it stays."""
    bucket = storage.settings.bucket_incoming
    key = f"stuck-{uuid.uuid4().hex[:8]}/never-ingested.wav"
    storage.objects.put(bucket, key, b"a file nobody ingested")
    written = storage.objects.stat(bucket, key).last_modified
    assert written is not None
    assert purge(storage, now=written + 179 * DAY, dry_run=True).incoming_purged == 0
    assert storage.objects.exists(bucket, key)
    report = purge(storage, now=written + 180 * DAY + timedelta(seconds=1))
    assert report.incoming_purged >= 1
    assert not list(storage.objects.list_versions(bucket, prefix=key))


def test_an_s3_outage_delays_the_purge_and_never_tombstones_a_call_with_objects(
    storage: Storage, tmp_path: Path
):
    from storage.embedded_s3 import S3Endpoint
    from storage.objects import ObjectStore, ObjectStoreError, RetryPolicy

    old = ingest_at(storage, tmp_path, "outage", NOW - 181 * DAY)
    dead = S3Endpoint(endpoint="127.0.0.1:9", access_key="k", secret_key="s", secure=False)
    broken = Storage(
        settings=storage.settings,
        objects=ObjectStore(dead, retry=RetryPolicy(attempts=1)),
        catalogue=storage.catalogue,
    )
    with pytest.raises(ObjectStoreError):
        purge(broken, now=NOW)
    assert len(versions(storage, old.id)) == 2
    with storage.catalogue.session() as session:
        assert session.get(Tombstone, old.id) is None
        assert session.get_one(Call, old.id).state == CallState.ERASING  # hidden, not deleted
    assert purge(storage, now=NOW).calls_purged == [old.id]
    assert versions(storage, old.id) == []


@pytest.mark.parametrize("backend", ["storage", "pg_storage"], ids=["sqlite", "postgres"])
def test_after_a_purge_no_object_version_and_no_row_anywhere_mentions_the_call(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
):
    """The whole-installation scan: every bucket in the registry (all versions, delete markers
    included) and every column of every table of the live schema, kept records aside."""
    from storage.catalogue import Export, ExportCall, Transcript

    storage: Storage = request.getfixturevalue(backend)

    call = ingest_at(storage, tmp_path, "trace", NOW - 181 * DAY)
    settings = storage.settings
    storage.objects.put(settings.bucket_recordings, call_prefix(call.id) + "waveform.png", b"png")
    storage.objects.delete(settings.bucket_recordings, call.rendition_key or "")
    storage.objects.put(settings.bucket_recordings, call.rendition_key or "", b"re-rendered")
    export_id = f"exp-{uuid.uuid4().hex[:8]}"
    storage.objects.put(settings.bucket_exports, f"{export_id}/{call.id}.zip", b"zip")
    with storage.catalogue.session() as session:
        session.add(
            Transcript(
                call_id=call.id, model="m", layout="stereo", language="nl", expected_language="nl"
            )
        )
        session.add(
            Hold(
                call_id=call.id, reason="old dispute", review_at=NOW - 100 * DAY,
                created_by="t", released_at=NOW - 90 * DAY, released_by="t",
            )
        )  # fmt: skip
        session.add(
            Export(
                id=export_id, kind="call", object_key=f"{export_id}/{call.id}.zip",
                reason="dispute", created_by="t", expires_at=NOW + DAY,
            )
        )  # fmt: skip
        session.flush()
        session.add(ExportCall(export_id=export_id, call_id=call.id))

    assert purge(storage, now=NOW).calls_purged == [call.id]

    for role in CALL_DATA_BUCKETS:
        bucket = getattr(settings.buckets, role)
        left = [v.key for v in storage.objects.list_versions(bucket) if call.id in v.key]
        assert left == [], f"{bucket} still holds {left}"
    with storage.catalogue.session() as session:
        inspector = sa.inspect(session.connection())
        for table in inspector.get_table_names():
            if table in KEPT_AFTER_PURGE:
                continue
            for column in inspector.get_columns(table):
                found = session.execute(
                    sa.text(f"SELECT count(*) FROM {table} WHERE CAST({column['name']} AS TEXT) "
                            "LIKE :needle"),
                    {"needle": f"%{call.id}%"},
                ).scalar_one()  # fmt: skip
                assert found == 0, f"{table}.{column['name']} still mentions {call.id}"


def test_erase_calls_never_touches_a_call_held_after_the_caller_looked(
    storage: Storage, tmp_path: Path
):
    from storage.audit import Action
    from storage.purge import erase_calls

    held = ingest_at(storage, tmp_path, "raced", NOW - 5 * DAY)
    free = ingest_at(storage, tmp_path, "free", NOW - 5 * DAY)
    with storage.catalogue.session() as session:
        session.add(Hold(call_id=held.id, reason="dispute", review_at=NOW + DAY, created_by="t"))
    erased, _ = erase_calls(
        storage, [held, free], now=NOW, reason="erasure request: test", actor="t",
        action=Action.ERASE,
    )  # fmt: skip
    assert erased == [free.id]
    assert len(versions(storage, held.id)) == 2
    with storage.catalogue.session() as session:
        assert session.get_one(Call, held.id).state != CallState.ERASING
