"""A process killed (SIGKILL) at each named ingest step, then a re-run: exactly one call, no
orphan object, no leftover copy of the recording. Also for a recording that loses its call id
to another one: killed while it settles as a conflict, it still ends as one quarantine item
with nothing of it left under the call."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from ingest.pipeline import IngestOptions, Outcome, ingest_object
from ingest.poller import poll_incoming
from storage.catalogue import Call, Job, QuarantineItem
from storage.connect import Storage
from tests.audio_files import make_recording
from tests.invariants import Source, assert_recovered
from tests.stores import callrec_env

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[1]

# Runs ingest in a child process that kills itself right after the named step returns.
_CRASHER = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import datetime
    import ingest.pipeline as pipeline
    from ingest.pipeline import IngestOptions, ingest_object
    from settings import load_settings
    from storage.connect import open_storage

    step, key, now = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3])
    real = getattr(pipeline, step)

    def crash_after(*args, **kwargs):
        real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(pipeline, step, crash_after)
    with open_storage(load_settings()) as storage:
        ingest_object(storage, key, now=now, options=IngestOptions.from_settings(storage))
    sys.exit("the step never ran")
    """
)

STEPS = {
    "probed": "probe_and_render",
    "original stored": "_store_original",
    "rendition stored": "_store_rendition",
    "catalogued": "_catalogue",
    "incoming removed": "_remove_incoming",
}
# The steps of a recording whose call id another recording (other bytes) has catalogued.
CONFLICT_STEPS = {
    "own objects removed": "_remove_delivery",
    "quarantined": "quarantine",
}


def crash_at(storage: Storage, step: str, key: str) -> None:
    """Ingest ``key`` in a child process that is killed right after ``step`` returns."""
    child = subprocess.run(
        [sys.executable, "-c", _CRASHER, step, key, NOW.isoformat()],
        env=callrec_env(storage),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr


def call_objects(storage: Storage, call_id: str) -> list[tuple[str, bool]]:
    """(key, is_delete_marker) of every version under the call's prefix."""
    versions = storage.objects.list_versions(
        storage.settings.bucket_recordings, prefix=f"calls/{call_id}/"
    )
    return sorted((v.key, v.is_delete_marker) for v in versions)


@pytest.mark.parametrize("step", list(STEPS))
def test_ingest_killed_at_each_step_converges_to_one_call_and_no_orphans(
    storage: Storage, key_prefix: str, tmp_path: Path, step: str
):
    settings = storage.settings
    recording = make_recording(tmp_path / "call", seconds=3.0, fmt="wav-ulaw")  # needs a rendition
    call_id = f"crash-{uuid.uuid4().hex[:8]}"  # the recordings bucket is the session's
    key = key_prefix + "call.wav"
    storage.objects.put(
        settings.bucket_incoming,
        key,
        recording,
        metadata={"call_id": call_id, "started_at": "2026-11-20T10:00:00+01:00"},
    )
    crash_at(storage, STEPS[step], key)

    report = poll_incoming(
        storage, now=NOW, options=IngestOptions.from_settings(storage), prefix=key_prefix
    )

    expected = Outcome.GONE if step == "incoming removed" else None
    assert all(r.outcome in (Outcome.INGESTED, Outcome.DUPLICATE, expected) for r in report.results)
    with storage.catalogue.session() as session:
        [call] = session.exec(select(Call))
        assert [j.call_id for j in session.exec(select(Job))] == [call_id]
        assert list(session.exec(select(QuarantineItem))) == []
    assert call.id == call_id and call.rendition_key is not None
    assert call_objects(storage, call_id) == [
        (call.original_key, False),
        (call.rendition_key, False),
    ], "one version of each object, nothing else"
    assert list(storage.objects.list(settings.bucket_incoming, prefix=key_prefix)) == []
    assert list((settings.data_dir / "tmp").iterdir()) == [], "the dead process's temp copy remains"
    assert_recovered(storage, [Source.of(key, recording, call_id)], now=NOW)


@pytest.mark.parametrize("step", list(CONFLICT_STEPS))
def test_a_conflicting_recording_killed_while_it_settles_leaves_nothing_under_the_call(
    storage: Storage, key_prefix: str, tmp_path: Path, step: str
):
    """A stores its objects and dies; B (other bytes, same call id) becomes the call; A, run
    again, is killed while it settles as the conflict; the next run finishes it."""
    settings = storage.settings
    first = make_recording(tmp_path / "first", seconds=3.0, fmt="wav-ulaw")
    second = make_recording(tmp_path / "second", seconds=2.0, fmt="wav-ulaw")
    call_id = f"conflict-{uuid.uuid4().hex[:8]}"
    meta = {"call_id": call_id, "started_at": "2026-11-20T10:00:00+01:00"}
    a_key, b_key = key_prefix + "a.wav", key_prefix + "b.wav"
    storage.objects.put(settings.bucket_incoming, a_key, first, metadata=meta)
    crash_at(storage, "_store_rendition", a_key)
    assert len(call_objects(storage, call_id)) == 2, "A's original and rendition, of no call"
    storage.objects.put(settings.bucket_incoming, b_key, second, metadata=meta)
    options = IngestOptions.from_settings(storage)
    assert ingest_object(storage, b_key, now=NOW, options=options).outcome == Outcome.INGESTED

    crash_at(storage, CONFLICT_STEPS[step], a_key)
    report = poll_incoming(storage, now=NOW, options=options, prefix=key_prefix)

    assert {r.outcome for r in report.results} <= {Outcome.QUARANTINED, Outcome.GONE}
    with storage.catalogue.session() as session:
        [call] = session.exec(select(Call))
        [item] = session.exec(select(QuarantineItem))
    assert item.source_key == a_key and "conflict" in item.reason
    assert call_objects(storage, call_id) == sorted(
        [(call.original_key, False), (call.rendition_key, False)]
    ), "the winner's objects, one version each, and nothing of the loser"
    assert_recovered(
        storage, [Source.of(a_key, first, call_id), Source.of(b_key, second, call_id)], now=NOW
    )
