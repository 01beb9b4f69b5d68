"""The transcription worker: leases, take-over after a crash, retries, and what it stores."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from ingest.backfill import LocalRecording, upload_and_ingest
from ingest.pipeline import IngestOptions, Outcome
from storage.catalogue import Call, Job, Segment
from storage.catalogue import Transcript as TranscriptRow
from storage.connect import Storage
from tests.audio_files import make_recording
from tests.stores import callrec_env
from transcribe.engine import Transcriber
from transcribe.jobs import LeaseLostError, LeasePolicy, claim, complete, retry
from transcribe.worker import Worker

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "ingest" / "samples"
NOW = datetime.now(UTC)


def ingest_files(storage: Storage, files: list[tuple[Path, str]]) -> list[str]:
    started = (NOW - timedelta(days=1)).isoformat()
    recordings = [
        LocalRecording(path, {"call_id": call_id, "started_at": started}) for path, call_id in files
    ]
    results = upload_and_ingest(
        storage, recordings, now=NOW, options=IngestOptions.from_settings(storage)
    )
    assert all(r.outcome == Outcome.INGESTED for r in results), results
    return [call_id for _, call_id in files]


def digit_run(text: str) -> int:
    """The longest run of digits, reading through the separators Whisper puts in numbers."""
    runs = re.findall(r"\d[\d ,.-]*\d|\d", text)
    return max((len(re.sub(r"\D", "", run)) for run in runs), default=0)


def rows(storage: Storage, model: type) -> list:
    with storage.catalogue.session() as session:
        return list(session.exec(select(model)))


def test_a_worker_stores_a_redacted_speaker_labelled_transcript_with_metrics(
    storage: Storage, transcriber: Transcriber
):
    [call_id] = ingest_files(storage, [(SAMPLES / "imei_iban.wav", "w-iban")])
    report = Worker(storage, transcriber).run(until_idle=True)
    assert report.done == [call_id] and report.failed == []

    [call] = rows(storage, Call)
    assert call.state == "transcribed"
    [job] = rows(storage, Job)
    assert (job.state, job.attempts, job.lease_owner) == ("done", 1, None)
    [transcript] = rows(storage, TranscriptRow)
    assert transcript.model == "whisper-base" and transcript.layout == "stereo"
    assert transcript.options["beam_size"] == 5 and transcript.options["compute_type"] == "int8"
    assert transcript.metrics["agent_talk_s"] > 5 and transcript.metrics["customer_talk_s"] > 5
    segments = rows(storage, Segment)
    assert {s.speaker for s in segments} == {"agent", "customer"}
    spoken_iban = [s for s in segments if "NL" in s.text and digit_run(s.text) >= 6]
    assert spoken_iban, "the IBAN must be in the full text"
    assert all(digit_run(s.redacted_text) < 4 and "[IBAN]" in s.redacted_text for s in spoken_iban)
    assert all(s.words for s in segments)


def test_re_transcription_replaces_the_previous_transcript(
    storage: Storage, transcriber: Transcriber
):
    ingest_files(storage, [(SAMPLES / "upmixed_mono.wav", "w-again")])
    Worker(storage, transcriber).run(until_idle=True)
    first = len(rows(storage, Segment))
    with storage.catalogue.session() as session:
        job = session.exec(select(Job)).one()
        job.state = "failed"  # as if it had failed; retry queues it again
        session.add(job)
    assert retry(storage.catalogue, all_failed=True, now=NOW) == 1
    Worker(storage, transcriber).run(until_idle=True)
    assert len(rows(storage, Segment)) == first
    assert len(rows(storage, TranscriptRow)) == 1


def test_a_job_whose_lease_ran_out_is_taken_over_and_the_old_owner_cannot_store(
    storage: Storage, tmp_path: Path
):
    ingest_files(storage, [(make_recording(tmp_path / "tone", seconds=1.0), "w-lease")])
    policy = LeasePolicy(lease_s=60, max_attempts=3)
    first = claim(storage.catalogue, owner="a", now=NOW, policy=policy)
    assert first is not None
    assert (
        claim(storage.catalogue, owner="b", now=NOW + timedelta(seconds=30), policy=policy) is None
    )
    second = claim(storage.catalogue, owner="b", now=NOW + timedelta(seconds=61), policy=policy)
    assert second is not None and (second.job_id, second.attempt) == (first.job_id, 2)
    with pytest.raises(LeaseLostError), storage.catalogue.session() as session:
        complete(session, first, owner="a", now=NOW + timedelta(seconds=62))


def test_a_job_that_keeps_failing_ends_failed_with_its_error_and_can_be_retried(
    storage: Storage, transcriber: Transcriber, tmp_path: Path
):
    [call_id] = ingest_files(storage, [(make_recording(tmp_path / "tone", seconds=1.0), "w-gone")])
    [call] = rows(storage, Call)
    storage.objects.delete(
        storage.settings.bucket_recordings, call.original_key
    )  # the audio is gone
    worker = Worker(storage, transcriber, policy=LeasePolicy(lease_s=60, max_attempts=2))
    report = worker.run(until_idle=True)
    assert len(report.failed) == 2  # two attempts, then failed
    [job] = rows(storage, Job)
    assert job.state == "failed" and "not found" in (job.last_error or "")
    assert rows(storage, Call)[0].state == "failed"
    from storage.status import collect_status

    shown = collect_status(storage, now=NOW).to_dict()["failed_jobs"]
    assert [(j["job"], j["call_id"]) for j in shown] == [
        (job.id, call_id)
    ] and "not found" in shown[0]["error"]
    assert retry(storage.catalogue, job_id=job.id, now=NOW) == 1
    [job] = rows(storage, Job)
    assert (job.state, job.attempts) == ("queued", 0)
    assert call_id == call.id


_WORKER = """
import sys
from cli import main
main(["worker", "--until-idle"])
"""


def test_a_worker_killed_mid_job_leaves_it_to_the_next_worker_with_exactly_one_transcript(
    storage: Storage, transcriber: Transcriber
):
    [call_id] = ingest_files(storage, [(SAMPLES / "claim_screen_repair.wav", "w-kill")])
    env = callrec_env(storage) | {"CALLREC_WORKER_LEASE_S": "4"}
    child = subprocess.Popen(
        [sys.executable, "-c", _WORKER], env=env, cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            [job] = rows(storage, Job)
            if job.state == "running":
                break
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            time.sleep(0.2)
        time.sleep(1.0)  # mid-job: the model is decoding
        child.send_signal(signal.SIGKILL)
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    [job] = rows(storage, Job)
    assert job.state == "running" and rows(storage, TranscriptRow) == []
    scratch = storage.settings.data_dir / "tmp"
    assert [p.name.split("-")[0] for p in scratch.iterdir()] == ["transcribe"], (
        "the copy it was working on"
    )

    time.sleep(4.5)  # the dead worker's lease runs out
    report = Worker(storage, transcriber, policy=LeasePolicy(lease_s=4)).run(until_idle=True)

    assert report.done == [call_id]
    [job] = rows(storage, Job)
    assert (job.state, job.attempts) == ("done", 2)
    assert len(rows(storage, TranscriptRow)) == 1
    assert list(scratch.iterdir()) == [], "the dead worker's copy of the recording must be gone"
    segments = rows(storage, Segment)
    assert len({(s.speaker, s.start_s) for s in segments}) == len(segments), (
        "no duplicated segments"
    )


def test_two_workers_on_postgresql_never_transcribe_the_same_call(
    pg_storage: Storage, transcriber: Transcriber, tmp_path: Path
):
    tone = make_recording(tmp_path / "tone", seconds=1.0)
    call_ids = ingest_files(pg_storage, [(tone, f"pg-{n:02d}") for n in range(12)])
    workers = [Worker(pg_storage, transcriber), Worker(pg_storage, transcriber)]
    reports: list = [None, None]

    def run(index: int) -> None:
        reports[index] = workers[index].run(concurrency=2, until_idle=True)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    done = [call for report in reports for call in report.done]
    assert sorted(done) == sorted(call_ids), "every call exactly once"
    assert all(report.done for report in reports), "both workers took part"
    assert {job.attempts for job in rows(pg_storage, Job)} == {1}


def test_show_prints_the_transcript_and_hides_personal_data_when_redacted(
    storage: Storage, transcriber: Transcriber
):
    [call_id] = ingest_files(storage, [(SAMPLES / "imei_iban.wav", "w-show")])
    Worker(storage, transcriber).run(until_idle=True)
    env = callrec_env(storage)
    callrec = str(Path(sys.executable).parent / "callrec")

    def show(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [callrec, "show", *args], env=env, capture_output=True, text=True, timeout=120
        )

    plain = show(call_id)
    assert plain.returncode == 0, plain.stderr
    assert "agent" in plain.stdout and "customer" in plain.stdout and digit_run(plain.stdout) >= 6
    redacted = json.loads(show(call_id, "--json", "--redacted").stdout)
    texts = [s["text"] for s in redacted["segments"]]
    assert max(digit_run(text) for text in texts) < 4 and "[IBAN]" in " ".join(texts)
    assert "customer_number" not in redacted["call"]
    missing = show("no-such-call")
    assert missing.returncode == 1 and missing.stderr.startswith(
        "callrec: error: no call no-such-call"
    )
