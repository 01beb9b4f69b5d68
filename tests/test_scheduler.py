"""The scheduler's guarantees: one run of a job at a time across processes, every run recorded
and shown in status, missed runs caught up at start, and a clean stop on SIGTERM."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlmodel import select

import scheduler
from storage import locks
from storage.catalogue import Job, JobLock, JobState, ScheduledRun
from storage.connect import Storage
from storage.embedded_s3 import S3Endpoint
from storage.objects import ObjectStore
from storage.status import collect_status
from tests.audio_files import make_recording
from tests.postgres_server import PostgresCluster
from tests.stores import callrec_env
from tests.test_faults import stores_on_postgres
from tests.test_ingest import drop

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_first_run_catches_up_a_missed_run_once_and_otherwise_waits_its_interval():
    day = 86400.0
    assert scheduler.first_run(None, day, NOW) == NOW  # never ran
    assert scheduler.first_run(NOW - timedelta(days=3), day, NOW) == NOW  # machine was off
    assert scheduler.first_run(NOW - timedelta(hours=1), day, NOW) == NOW + timedelta(hours=23)


def test_add_jobs_schedules_from_the_recorded_last_runs(storage: Storage):
    with storage.catalogue.session() as session:
        session.add(
            ScheduledRun(
                job="verify", started_at=NOW - timedelta(hours=2),
                finished_at=NOW - timedelta(hours=2), ok=True, owner="x",
            )
        )  # fmt: skip
        session.add(
            ScheduledRun(
                job="purge", started_at=NOW - timedelta(days=2),
                finished_at=NOW - timedelta(days=2), ok=True, owner="x",
            )
        )  # fmt: skip
    jobs = scheduler.add_jobs(BackgroundScheduler(timezone=UTC), storage, now=NOW)
    first = {job.id: job.next_run_time for job in jobs.get_jobs()}
    assert first["verify"] == NOW + timedelta(hours=22)
    assert first["purge"] == NOW  # missed while off: caught up at once
    assert first["poll-incoming"] == NOW


def test_a_run_is_recorded_with_its_figures_and_shown_in_status(storage: Storage):
    assert scheduler.run_once(storage, "verify", lambda: {"ok": True, "orphan_objects": []})
    with storage.catalogue.session() as session:
        run = session.get_one(ScheduledRun, "verify")
        assert run.ok and run.finished_at and run.result == {"ok": True, "orphan_objects": []}
        assert session.get(JobLock, "verify") is None  # the lease is released after the run
    shown = collect_status(storage, now=datetime.now(UTC)).to_dict()["scheduled_runs"]
    assert shown["verify"]["ok"] and shown["verify"]["result"] == {"ok": True, "orphan_objects": 0}


def test_a_failing_run_is_recorded_as_an_alarm_and_the_next_run_replaces_it(storage: Storage):
    def outage() -> dict[str, object]:
        raise RuntimeError("S3 unreachable at http://127.0.0.1:9")

    assert scheduler.run_once(storage, "purge", outage) is None
    with storage.catalogue.session() as session:
        run = session.get_one(ScheduledRun, "purge")
        assert run.ok is False and "S3 unreachable" in (run.error or "")
    status = subprocess.run(
        [str(Path(sys.executable).parent / "callrec"), "status"],
        env=callrec_env(storage), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "ALARM: the last purge run failed" in status.stdout, status.stdout + status.stderr
    assert scheduler.run_once(storage, "purge", lambda: {"calls": 0})
    with storage.catalogue.session() as session:
        run = session.get_one(ScheduledRun, "purge")
        assert run.ok and run.error is None


def test_a_job_whose_lease_another_process_holds_is_skipped(storage: Storage):
    assert locks.try_acquire(storage.catalogue, "purge", owner="other-host:1:x", lease_s=60)
    ran: list[bool] = []
    assert scheduler.run_once(storage, "purge", lambda: ran.append(True) or {}) is None
    assert ran == []
    with storage.catalogue.session() as session:
        assert session.get(ScheduledRun, "purge") is None


def test_two_schedulers_never_run_the_same_job_at_once(storage: Storage):
    """Two schedulers fire the same job at the same moment: exactly one runs it."""
    import threading

    running, overlaps, runs = [0], [0], [0]
    guard = threading.Lock()

    def slow() -> dict[str, object]:
        with guard:
            running[0] += 1
            overlaps[0] = max(overlaps[0], running[0])
            runs[0] += 1
        time.sleep(0.5)
        with guard:
            running[0] -= 1
        return {}

    threads = [
        threading.Thread(target=scheduler.run_once, args=(storage, "verify", slow))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (overlaps[0], runs[0]) == (1, 1)


def test_callrec_scheduler_runs_its_jobs_and_stops_cleanly_on_sigterm(storage: Storage):
    env = callrec_env(storage) | {"CALLREC_POLL_INTERVAL_S": "1"}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "callrec"), "scheduler"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            runs = scheduler.last_runs(storage)
            if {"purge", "verify", "poll-incoming"} <= set(runs) and all(
                runs[j].finished_at for j in ("purge", "verify")
            ):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the scheduler did not run purge, verify and poll within 90 s")
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode in (0, 130), err
    assert "Traceback" not in err, err
    assert runs["purge"].ok, runs["purge"].error
    with storage.catalogue.session() as session:
        assert session.exec(select(JobLock)).all() == []  # every lease released
    assert "ok" in runs["verify"].result  # the verify report was stored


def test_callrec_scheduler_without_worker_ingests_but_leaves_transcription_to_workers(
    storage: Storage, tmp_path: Path
):
    """Production runs ``callrec worker`` on machines sized for the model: a scheduler started
    with ``--no-worker`` polls and queues the call, and never claims its job."""
    started = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    drop(
        storage,
        "pbx/no-worker.wav",
        make_recording(tmp_path / "call", seconds=2.0),
        metadata={"call_id": "no-worker-1", "started_at": started},
    )
    env = callrec_env(storage) | {"CALLREC_POLL_INTERVAL_S": "1"}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "callrec"), "scheduler", "--no-worker"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not _job_states(storage) and time.monotonic() < deadline:
            time.sleep(0.5)
        # The embedded worker looks for work every poll interval (1 s) and claims a job within
        # seconds of it being queued; give it ten times that.
        time.sleep(10)
        states = _job_states(storage)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode in (0, 130), err
    assert states == [JobState.QUEUED]
    # The embedded worker's first step is to join the bundled model into the data folder.
    assert not (storage.settings.data_dir / "models").exists()
    assert out.startswith("scheduler running: poll-incoming") and "transcribe" not in out, out


def _job_states(storage: Storage) -> list[JobState]:
    with storage.catalogue.session() as session:
        return list(session.exec(select(Job.state)).all())


@pytest.mark.postgres
def test_a_run_while_the_catalogue_is_down_is_one_error_line_and_the_next_run_works(
    private_postgres: PostgresCluster,
    s3_endpoint: S3Endpoint,
    object_store: ObjectStore,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
):
    """Nothing can be leased or recorded without the catalogue: the run is skipped with one
    line (APScheduler would otherwise log a traceback every interval), not retried in a loop."""
    with stores_on_postgres(private_postgres, s3_endpoint, object_store, tmp_path) as storage:
        private_postgres.stop()
        with caplog.at_level(logging.ERROR, logger="scheduler"):
            assert scheduler.run_once(storage, "purge", lambda: {"purged": 1}) is None
        [line] = [r for r in caplog.records if r.name == "scheduler"]
        assert line.getMessage().startswith("purge not run: ") and line.exc_info is None
        assert "retried at the next run" in line.getMessage()
        private_postgres.start()
        assert scheduler.run_once(storage, "purge", lambda: {"purged": 1}) == {"purged": 1}
        assert scheduler.last_runs(storage)["purge"].ok is True
