"""A process killed (SIGKILL) at each named ingest step, then a re-run: exactly one call, no
orphan object, no leftover copy of the recording."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from ingest.pipeline import IngestOptions, Outcome
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


@pytest.mark.parametrize("step", list(STEPS))
def test_ingest_killed_at_each_step_converges_to_one_call_and_no_orphans(
    storage: Storage, key_prefix: str, tmp_path: Path, step: str
):
    settings = storage.settings
    recording = make_recording(tmp_path / "call", seconds=3.0, fmt="wav-ulaw")  # needs a rendition
    call_id = f"crash-{key_prefix[2:12].strip('-')}"
    key = key_prefix + "call.wav"
    storage.objects.put(
        settings.bucket_incoming,
        key,
        recording,
        metadata={"call_id": call_id, "started_at": "2026-11-20T10:00:00+01:00"},
    )
    env = callrec_env(storage)
    child = subprocess.run(
        [sys.executable, "-c", _CRASHER, STEPS[step], key, NOW.isoformat()],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr

    report = poll_incoming(
        storage, now=NOW, options=IngestOptions.from_settings(storage), prefix=key_prefix
    )

    expected = Outcome.GONE if step == "incoming removed" else None
    assert all(r.outcome in (Outcome.INGESTED, Outcome.DUPLICATE, expected) for r in report.results)
    with storage.catalogue.session() as session:
        assert [c.id for c in session.exec(select(Call))] == [call_id]
        assert [j.call_id for j in session.exec(select(Job))] == [call_id]
        assert list(session.exec(select(QuarantineItem))) == []
    versions = storage.objects.list_versions(settings.bucket_recordings, prefix=f"calls/{call_id}/")
    assert sorted((v.key, v.is_delete_marker) for v in versions) == [
        (f"calls/{call_id}/original.wav", False),
        (f"calls/{call_id}/rendition.mp3", False),
    ], "one version of each object, nothing else"
    assert list(storage.objects.list(settings.bucket_incoming, prefix=key_prefix)) == []
    assert list((settings.data_dir / "tmp").iterdir()) == [], "the dead process's temp copy remains"
    assert_recovered(storage, [Source.of(key, recording, call_id)], now=NOW)
