"""The transcription worker: claim a job, transcribe the call, store the result, repeat.

The model is loaded once per process and shared by ``concurrency`` threads. While a job runs, a
timer renews its lease; if the process dies the lease runs out and another worker takes the job
over. ``until_idle`` drains the queue and returns (scripts, backfills, tests).

A storage outage (the catalogue database or the S3 server unreachable) is not the call's fault:
its job is not failed, which would spend its attempts on the outage, but left to its lease for
the next worker. A draining worker stops and raises the outage (it cannot drain); a long-running
one waits for storage to come back.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePosixPath

from errors import CallrecError
from storage.catalogue import Call, CatalogueError
from storage.connect import Storage
from storage.objects import ObjectStoreUnavailableError
from storage.scratch import remove_dead_scratch, scratch_dir
from transcribe.engine import Transcriber
from transcribe.jobs import ClaimedJob, LeaseLostError, LeasePolicy, claim, fail, renew
from transcribe.metrics import metrics_from_speech
from transcribe.store import save_transcript

log = logging.getLogger(__name__)

_OUTAGES = (CatalogueError, ObjectStoreUnavailableError)
_OUTAGE_WAIT_S = 5.0


@dataclass
class WorkerReport:
    """What a worker did; updated from its threads."""

    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, call_id: str, error: str | None) -> None:
        with self._lock:
            if error is None:
                self.done.append(call_id)
            else:
                self.failed.append((call_id, error))


class Worker:
    """Works the transcription queue of one installation.

    Args:
        storage: Where calls and jobs are.
        transcriber: The loaded model, wrapped (shared by all threads).
        policy: Lease length and attempts.
        clock: Current time (tests move it).
    """

    def __init__(
        self,
        storage: Storage,
        transcriber: Transcriber,
        *,
        policy: LeasePolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.storage = storage
        self.transcriber = transcriber
        self.policy = policy or LeasePolicy()
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def run(
        self, *, concurrency: int = 1, until_idle: bool = False, stop: threading.Event | None = None
    ) -> WorkerReport:
        """Work until ``stop`` is set (or, with ``until_idle``, until nothing is claimable).

        Raises:
            CatalogueError, ObjectStoreUnavailableError: With ``until_idle``, storage became
                unreachable before the queue was drained (the unfinished jobs stay claimable).
        """
        stop = stop or threading.Event()
        remove_dead_scratch(self.storage.settings)  # copies left by a worker that was killed
        report = WorkerReport()
        outages: list[Exception] = []
        threads = [
            threading.Thread(
                target=self._loop, args=(report, stop, until_idle, outages), name=f"worker-{n}"
            )
            for n in range(max(1, concurrency))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if outages:
            raise outages[0]
        return report

    def _loop(
        self,
        report: WorkerReport,
        stop: threading.Event,
        until_idle: bool,
        outages: list[Exception],
    ) -> None:
        while not stop.is_set():
            try:
                job = claim(
                    self.storage.catalogue, owner=self.owner, now=self.clock(), policy=self.policy
                )
                if job is None:
                    if until_idle:
                        return
                    stop.wait(2.0)
                    continue
                report.record(job.call_id, self.process(job))
            except _OUTAGES as exc:
                if until_idle:
                    outages.append(exc)
                    return
                log.warning("storage unavailable, trying again in %g s: %s", _OUTAGE_WAIT_S, exc)
                stop.wait(_OUTAGE_WAIT_S)

    def process(self, job: ClaimedJob) -> str | None:
        """Transcribe one claimed job; returns None on success, else the error recorded.

        Raises:
            CatalogueError, ObjectStoreUnavailableError: Storage is unreachable; the job is left
                to its lease, unfailed.
        """
        renewer = _Renewer(self, job)
        renewer.start()
        try:
            self._transcribe_and_store(job)
        except LeaseLostError as exc:
            log.warning("%s", exc)
            return str(exc)
        except _OUTAGES:
            raise
        except (CallrecError, RuntimeError, ValueError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            state = fail(
                self.storage.catalogue,
                job,
                error,
                owner=self.owner,
                now=self.clock(),
                policy=self.policy,
            )
            log.error(
                "transcription of call %s failed (attempt %d, now %s): %s",
                job.call_id,
                job.attempt,
                state,
                error,
            )
            return error
        finally:
            renewer.stop()
        log.info("transcribed call %s", job.call_id)
        return None

    def _transcribe_and_store(self, job: ClaimedJob) -> None:
        storage = self.storage
        with storage.catalogue.session() as session:
            call = session.get(Call, job.call_id)
        if call is None:
            raise LeaseLostError(f"call {job.call_id} no longer exists (purged or erased)")
        with scratch_dir(storage.settings, "transcribe") as tmp:
            local = tmp / ("original" + PurePosixPath(call.original_key).suffix)
            storage.objects.download(storage.settings.bucket_recordings, call.original_key, local)
            transcript = self.transcriber.transcribe_file(
                local,
                channels=call.channels,
                agent_channel=str(call.agent_channel) if call.agent_channel != "none" else "left",
                language=call.language or storage.settings.language,
            )
        metrics = metrics_from_speech(
            transcript.speech,
            duration_s=transcript.duration_s,
            options=self.transcriber.options.vad,
        ).to_dict()
        save_transcript(
            storage.catalogue, job, transcript, metrics, owner=self.owner, now=self.clock()
        )


class _Renewer:
    """Renews a job's lease every third of its length while the job runs."""

    def __init__(self, worker: Worker, job: ClaimedJob) -> None:
        self.worker, self.job = worker, job
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"lease-{job.job_id}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        worker = self.worker
        while not self._stop.wait(worker.policy.lease_s / 3):
            try:
                if not renew(
                    worker.storage.catalogue,
                    self.job,
                    owner=worker.owner,
                    now=worker.clock(),
                    policy=worker.policy,
                ):
                    log.warning(
                        "lost the lease on job %d (call %s)", self.job.job_id, self.job.call_id
                    )
                    return
            except CallrecError as exc:  # the database is briefly away: try again next time
                log.warning("could not renew the lease on job %d: %s", self.job.job_id, exc)
