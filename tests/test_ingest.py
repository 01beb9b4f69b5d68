"""Ingest against the real S3 server: every format, every metadata source, every bad input."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from ingest.pipeline import IngestOptions, Outcome, ingest_object
from ingest.poller import poll_incoming
from storage.catalogue import Call, Job, QuarantineItem, Tombstone
from storage.connect import Storage
from tests.audio_files import make_recording
from tests.invariants import Source, assert_recovered

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
STARTED = "2026-11-20T10:00:00+01:00"


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio")


@pytest.fixture(scope="module")
def stereo_wav(audio_dir: Path) -> Path:
    return make_recording(audio_dir / "stereo", seconds=3.0)


def options(storage: Storage, **changes: object) -> IngestOptions:
    import dataclasses

    return dataclasses.replace(IngestOptions.from_settings(storage), **changes)


def drop(
    storage: Storage,
    key: str,
    source: Path | bytes,
    *,
    metadata: dict[str, str] | None = None,
    sidecar: dict[str, object] | bytes | None = None,
) -> str:
    """What the PBX does: put a recording (and maybe a sidecar) into the incoming bucket."""
    incoming = storage.settings.bucket_incoming
    if sidecar is not None:
        raw = sidecar if isinstance(sidecar, bytes) else json.dumps(sidecar).encode()
        storage.objects.put(incoming, key + ".json", raw)
    storage.objects.put(incoming, key, source, metadata=metadata)
    return key


def calls(storage: Storage) -> list[Call]:
    with storage.catalogue.session() as session:
        return list(session.exec(select(Call)))


def quarantined(storage: Storage) -> list[QuarantineItem]:
    with storage.catalogue.session() as session:
        return list(session.exec(select(QuarantineItem)))


def incoming_keys(storage: Storage, prefix: str) -> list[str]:
    return [o.key for o in storage.objects.list(storage.settings.bucket_incoming, prefix=prefix)]


def call_objects(storage: Storage, call_id: str) -> list[tuple[str, bool]]:
    """(key, is_delete_marker) of every version under the call's prefix."""
    versions = storage.objects.list_versions(
        storage.settings.bucket_recordings, prefix=f"calls/{call_id}/"
    )
    return sorted((v.key, v.is_delete_marker) for v in versions)


@pytest.mark.parametrize(
    ("fmt", "channels", "rendition"),
    [
        ("wav-pcm-8k", 2, False),
        ("wav-pcm-16k", 1, False),
        ("wav-ulaw", 2, True),
        ("wav-alaw", 1, True),
        ("mp3", 2, False),
        ("ogg-opus", 2, True),
        ("flac", 2, False),
        ("gsm", 1, True),
    ],
)
def test_every_pbx_format_ingests_with_its_duration_and_channels(
    storage: Storage, key_prefix: str, audio_dir: Path, fmt: str, channels: int, rendition: bool
):
    path = make_recording(audio_dir / f"{fmt}-{channels}", seconds=4.0, channels=channels, fmt=fmt)
    call_id = f"fmt-{fmt}-{key_prefix[2:10]}"
    key = drop(
        storage, key_prefix + path.name, path, metadata={"call_id": call_id, "started_at": STARTED}
    )

    result = ingest_object(storage, key, now=NOW, options=options(storage))

    assert result.outcome == Outcome.INGESTED, result.reason
    [call] = calls(storage)
    assert call.id == call_id
    assert call.channels == channels
    assert call.duration_s == pytest.approx(4.0, abs=0.1)
    assert call.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    original = storage.objects.read(storage.settings.bucket_recordings, call.original_key)
    assert original == path.read_bytes(), "the original must be stored unchanged"
    assert (call.rendition_key is not None) == rendition
    if call.rendition_key:
        assert storage.objects.stat(storage.settings.bucket_recordings, call.rendition_key).size > 0
    with storage.catalogue.session() as session:
        assert [job.call_id for job in session.exec(select(Job))] == [call_id]
    assert incoming_keys(storage, key_prefix) == []


def test_metadata_from_a_sidecar_with_unknown_keys_kept(
    storage: Storage, key_prefix: str, stereo_wav: Path
):
    sidecar = {
        "call_id": "side-1", "started_at": "2026-11-20T10:00:00", "agent_id": "a7",
        "team": "claims",
        "queue": "schade", "direction": "inbound", "customer_number": "06 1234 5678",
        "customer_id": "K-991", "policy_number": "P-2024-001", "pbx_node": "ams-2",
    }  # fmt: skip
    key = drop(storage, key_prefix + "side.wav", stereo_wav, sidecar=sidecar)
    assert (
        ingest_object(storage, key, now=NOW, options=options(storage)).outcome == Outcome.INGESTED
    )
    [call] = calls(storage)
    assert (call.agent_id, call.team, call.queue, call.direction) == (
        "a7",
        "claims",
        "schade",
        "inbound",
    )
    assert call.customer_number == "+31612345678"
    assert call.started_at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)  # read in Europe/Amsterdam
    assert call.extra == {"pbx_node": "ams-2"}
    assert call.agent_channel == "left"
    assert incoming_keys(storage, key_prefix) == [], "the sidecar must go with its recording"


def test_metadata_from_the_filename_pattern(storage: Storage, key_prefix: str, stereo_wav: Path):
    pattern = "{direction}-{customer_number}-{agent_id}-{started:%Y%m%d-%H%M%S}-{call_id}.wav"
    from ingest.filename_pattern import FilenamePattern

    key = drop(storage, key_prefix + "outbound-0201234567-a9-20261120-143000-fn-1.wav", stereo_wav)
    opts = options(storage, filename_pattern=FilenamePattern.compile(pattern))
    assert ingest_object(storage, key, now=NOW, options=opts).outcome == Outcome.INGESTED
    [call] = calls(storage)
    assert (call.id, call.direction, call.agent_id) == ("fn-1", "outbound", "a9")
    assert call.customer_number == "+31201234567"
    assert call.started_at == datetime(2026, 11, 20, 13, 30, tzinfo=UTC)


def _truncated_wav(source: Path) -> bytes:
    return source.read_bytes()[: len(source.read_bytes()) // 2]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("empty", "empty"),
        ("random bytes", "not"),
        ("text", "not"),
        ("truncated wav", "truncated"),
        ("no call_id", "metadata has no call_id"),
        ("bad started_at", "metadata started_at"),
        ("future", "is in the future"),
        ("bad sidecar json", "is not valid JSON"),
    ],
)
def test_bad_input_is_quarantined_with_its_reason(
    storage: Storage, key_prefix: str, stereo_wav: Path, case: str, reason: str
):
    good = {"call_id": "bad-1", "started_at": STARTED}
    payload: bytes | Path = stereo_wav
    metadata: dict[str, str] | None = good
    sidecar: bytes | None = None
    if case == "empty":
        payload = b""
    elif case == "random bytes":
        payload = bytes(range(256)) * 64
    elif case == "text":
        payload = b"Dear customer, this is not a recording.\n" * 50
    elif case == "truncated wav":
        payload = _truncated_wav(stereo_wav)
    elif case == "no call_id":
        metadata = {"started_at": STARTED}
    elif case == "bad started_at":
        metadata = {**good, "started_at": "last tuesday"}
    elif case == "future":
        metadata = {**good, "started_at": (NOW + timedelta(hours=2)).isoformat()}
    elif case == "bad sidecar json":
        metadata, sidecar = None, b"{not json"
    key = drop(storage, key_prefix + "bad.wav", payload, metadata=metadata, sidecar=sidecar)

    result = ingest_object(storage, key, now=NOW, options=options(storage))

    assert result.outcome == Outcome.QUARANTINED
    assert reason in result.reason
    [item] = quarantined(storage)
    assert reason in item.reason and item.source_key == key
    assert calls(storage) == []
    assert incoming_keys(storage, key_prefix) == []
    kept = storage.objects.read(storage.settings.bucket_quarantine, item.object_key)
    assert kept == (payload if isinstance(payload, bytes) else payload.read_bytes()), (
        "nothing is lost"
    )
    if sidecar is not None:
        assert (
            storage.objects.read(storage.settings.bucket_quarantine, item.object_key + ".json")
            == sidecar
        )


def test_a_quarantined_item_keeps_its_start_time_for_the_retention_deadline(
    storage: Storage, key_prefix: str
):
    key = drop(
        storage, key_prefix + "x.wav", b"", metadata={"call_id": "q-1", "started_at": STARTED}
    )
    ingest_object(storage, key, now=NOW, options=options(storage))
    [item] = quarantined(storage)
    assert item.started_at == datetime.fromisoformat(STARTED)
    assert item.received_at == NOW


def test_a_recording_past_its_deadline_is_deleted_with_a_tombstone(
    storage: Storage, key_prefix: str, stereo_wav: Path
):
    old = (NOW - timedelta(days=storage.settings.retention_days, seconds=1)).isoformat()
    key = drop(
        storage,
        key_prefix + "old.wav",
        stereo_wav,
        metadata={"call_id": "old-1", "started_at": old},
    )
    assert ingest_object(storage, key, now=NOW, options=options(storage)).outcome == Outcome.EXPIRED
    assert calls(storage) == [] and quarantined(storage) == []
    assert incoming_keys(storage, key_prefix) == []
    assert call_objects(storage, "old-1") == []
    with storage.catalogue.session() as session:
        tombstone = session.get(Tombstone, "old-1")
    assert tombstone is not None and "retention" in tombstone.reason


def test_the_same_call_twice_with_the_same_bytes_is_a_no_op(
    storage: Storage, key_prefix: str, stereo_wav: Path
):
    meta = {"call_id": "dup-1", "started_at": STARTED}
    first = drop(storage, key_prefix + "a.wav", stereo_wav, metadata=meta)
    assert (
        ingest_object(storage, first, now=NOW, options=options(storage)).outcome == Outcome.INGESTED
    )
    again = drop(storage, key_prefix + "b.wav", stereo_wav, metadata=meta)
    assert (
        ingest_object(storage, again, now=NOW, options=options(storage)).outcome
        == Outcome.DUPLICATE
    )
    [call] = calls(storage)
    assert quarantined(storage) == []
    assert call_objects(storage, "dup-1") == [(call.original_key, False)]
    assert incoming_keys(storage, key_prefix) == []


def test_the_same_call_id_with_other_bytes_is_quarantined_as_a_conflict(
    storage: Storage, key_prefix: str, stereo_wav: Path, audio_dir: Path
):
    meta = {"call_id": "dup-2", "started_at": STARTED}
    drop(storage, key_prefix + "a.wav", stereo_wav, metadata=meta)
    ingest_object(storage, key_prefix + "a.wav", now=NOW, options=options(storage))
    other = make_recording(audio_dir / "other", seconds=2.0)
    drop(storage, key_prefix + "b.wav", other, metadata=meta)
    result = ingest_object(storage, key_prefix + "b.wav", now=NOW, options=options(storage))
    assert result.outcome == Outcome.QUARANTINED and "conflict" in result.reason
    [call] = calls(storage)
    assert call.sha256 == hashlib.sha256(stereo_wav.read_bytes()).hexdigest(), "the first stays"
    assert call_objects(storage, "dup-2") == [(call.original_key, False)], "nothing of the second"


@pytest.fixture(
    params=["storage", pytest.param("pg_storage", marks=pytest.mark.postgres)],
    ids=["sqlite", "postgres"],
)
def any_storage(request: pytest.FixtureRequest) -> Storage:
    """Both catalogues: the race for the call row is settled by each database's own locking."""
    stores: Storage = request.getfixturevalue(request.param)
    return stores


@pytest.mark.parametrize("trial", range(3))
def test_two_recordings_with_one_call_id_ingested_at_once_give_one_call_and_one_quarantine_item(
    any_storage: Storage, key_prefix: str, audio_dir: Path, trial: int
):
    """Both pass the "already catalogued?" check before either writes its row; whichever
    loses the row must leave the winner's original (and rendition) as the only version under
    the call, and nothing of its own there."""
    storage = any_storage
    call_id = f"race-{trial}-{uuid.uuid4().hex[:8]}"  # the recordings bucket is the session's
    meta = {"call_id": call_id, "started_at": STARTED}
    recordings = {
        drop(storage, f"{key_prefix}{name}.wav", path, metadata=meta): path
        for name, path in (
            ("a", make_recording(audio_dir / f"race-a-{trial}", seconds=3.0, fmt="wav-ulaw")),
            ("b", make_recording(audio_dir / f"race-b-{trial}", seconds=2.0, fmt="wav-ulaw")),
        )
    }
    start = threading.Barrier(len(recordings))

    def settle(key: str) -> Outcome:
        start.wait()
        return ingest_object(storage, key, now=NOW, options=options(storage)).outcome

    with ThreadPoolExecutor(max_workers=len(recordings)) as pool:
        outcomes = sorted(pool.map(settle, recordings))

    assert outcomes == sorted([Outcome.INGESTED, Outcome.QUARANTINED])
    [call] = calls(storage)
    [item] = quarantined(storage)
    assert "conflict" in item.reason
    assert call_objects(storage, call_id) == sorted(
        [(call.original_key, False), (call.rendition_key, False)]
    ), "the winner's objects, one version each, nothing of the loser"
    sources = [Source.of(key, path, call_id) for key, path in recordings.items()]
    assert_recovered(storage, sources, now=NOW)


def test_a_recording_without_metadata_waits_for_its_sidecar_then_is_quarantined(
    storage: Storage, key_prefix: str, stereo_wav: Path
):
    key = drop(storage, key_prefix + "early.wav", stereo_wav)
    uploaded = storage.objects.stat(storage.settings.bucket_incoming, key).last_modified
    assert uploaded is not None
    opts = options(storage, metadata_grace_s=60)
    assert (
        ingest_object(storage, key, now=uploaded + timedelta(seconds=5), options=opts).outcome
        == Outcome.WAITING
    )
    assert incoming_keys(storage, key_prefix) == [key]
    late = ingest_object(storage, key, now=uploaded + timedelta(seconds=61), options=opts)
    assert late.outcome == Outcome.QUARANTINED and "metadata has no call_id" in late.reason


def test_poll_uses_a_checkpoint_and_a_full_sweep_finds_stragglers(
    storage: Storage, key_prefix: str, stereo_wav: Path
):
    for name in ("b", "c"):
        drop(
            storage,
            f"{key_prefix}{name}.wav",
            stereo_wav,
            metadata={"call_id": f"p-{name}", "started_at": STARTED},
        )
    first = poll_incoming(storage, now=NOW, options=options(storage), prefix=key_prefix)
    assert first.count(Outcome.INGESTED) == 2 and first.checkpoint == f"{key_prefix}c.wav"

    drop(
        storage,
        f"{key_prefix}a.wav",
        stereo_wav,
        metadata={"call_id": "p-a", "started_at": STARTED},
    )
    behind = poll_incoming(storage, now=NOW, options=options(storage), prefix=key_prefix)
    assert behind.listed == 0, "a poll lists only after the checkpoint"

    sweep = poll_incoming(
        storage, now=NOW, options=options(storage), prefix=key_prefix, full_sweep=True
    )
    assert sweep.count(Outcome.INGESTED) == 1
    assert sorted(c.id for c in calls(storage)) == ["p-a", "p-b", "p-c"]


def test_the_checkpoint_never_passes_a_recording_that_waits_for_its_sidecar(
    storage: Storage, key_prefix: str, stereo_wav: Path
):
    waiting = drop(storage, f"{key_prefix}a.wav", stereo_wav)
    drop(
        storage,
        f"{key_prefix}b.wav",
        stereo_wav,
        metadata={"call_id": "w-b", "started_at": STARTED},
    )
    uploaded = storage.objects.stat(storage.settings.bucket_incoming, waiting).last_modified
    assert uploaded is not None
    opts = options(storage, metadata_grace_s=600)
    report = poll_incoming(storage, now=uploaded, options=opts, prefix=key_prefix)
    assert report.count(Outcome.WAITING) == 1 and report.count(Outcome.INGESTED) == 1
    assert report.checkpoint is None

    storage.objects.put(
        storage.settings.bucket_incoming,
        waiting + ".json",
        json.dumps({"call_id": "w-a", "started_at": STARTED}).encode(),
    )
    later = poll_incoming(storage, now=uploaded, options=opts, prefix=key_prefix)
    assert later.count(Outcome.INGESTED) == 1
    assert sorted(c.id for c in calls(storage)) == ["w-a", "w-b"]


def test_a_sidecar_whose_recording_never_came_is_quarantined(storage: Storage, key_prefix: str):
    key = key_prefix + "lonely.wav.json"
    storage.objects.put(storage.settings.bucket_incoming, key, b'{"call_id": "l-1"}')
    uploaded = storage.objects.stat(storage.settings.bucket_incoming, key).last_modified
    assert uploaded is not None
    opts = options(storage, metadata_grace_s=60)
    assert poll_incoming(storage, now=uploaded, options=opts, prefix=key_prefix).results == []
    report = poll_incoming(
        storage, now=uploaded + timedelta(minutes=5), options=opts, prefix=key_prefix
    )
    assert [r.reason for r in report.results] == ["sidecar without a recording"]
    assert incoming_keys(storage, key_prefix) == []
    assert len(quarantined(storage)) == 1


def test_a_storage_failure_leaves_the_recording_for_the_next_run(
    storage: Storage, key_prefix: str, stereo_wav: Path
):
    import dataclasses

    key = drop(
        storage,
        key_prefix + "a.wav",
        stereo_wav,
        metadata={"call_id": "r-1", "started_at": STARTED},
    )
    broken = dataclasses.replace(
        storage,
        settings=storage.settings.model_copy(update={"bucket_recordings": "no-such-bucket-here"}),
    )
    report = poll_incoming(broken, now=NOW, options=options(storage), prefix=key_prefix)
    [result] = report.results
    assert result.outcome == Outcome.RETRY and "no-such-bucket-here" in result.reason
    assert report.checkpoint is None, "the checkpoint must not pass a recording to retry"
    assert incoming_keys(storage, key_prefix) == [key] and calls(storage) == []

    again = poll_incoming(storage, now=NOW, options=options(storage), prefix=key_prefix)
    assert again.count(Outcome.INGESTED) == 1
