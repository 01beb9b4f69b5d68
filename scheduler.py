"""The recurring work of an installation, on APScheduler.

Today: poll the incoming bucket (after a checkpoint) every ``poll_interval_s``, sweep it from the
start every ``sweep_interval_s``, transcribe queued calls, and purge every ``purge_interval_s``
(at most hourly) whatever would pass its deadline before the next purge. The retention issue
adds verification, export expiry and a cross-process lock here. A job never overlaps itself in
one process (``max_instances=1``); a run missed while the process was busy is merged into the
next (``coalesce``).
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from ingest.pipeline import IngestOptions
from ingest.poller import poll_incoming
from storage.connect import Storage
from storage.purge import purge
from transcribe import Worker, build_worker

log = logging.getLogger(__name__)

JOBS = {
    "poll-incoming": "ingest new recordings listed after the checkpoint",
    "sweep-incoming": "ingest stragglers: list the incoming bucket from the start",
    "transcribe": "transcribe queued calls until the queue is empty (embedded worker)",
    "purge": "erase every call and quarantined item whose deadline falls before the next run",
}


def add_jobs(
    scheduler: BaseScheduler,
    storage: Storage,
    *,
    stop: threading.Event | None = None,
    with_worker: bool = True,
) -> BaseScheduler:
    """Register callrec's recurring jobs on ``scheduler`` (all start at once, then repeat).

    Args:
        stop: Set it to make a running transcription end after its current call.
        with_worker: Also transcribe in this process (the embedded default); production runs
            ``callrec worker`` processes instead, on machines sized for the model.
    """
    settings = storage.settings
    options = IngestOptions.from_settings(storage)

    def poll(full_sweep: bool) -> None:
        poll_incoming(
            storage,
            now=datetime.now(UTC),
            options=options,
            full_sweep=full_sweep,
            workers=settings.ingest_workers,
        )

    common = {"max_instances": 1, "coalesce": True, "next_run_time": datetime.now(UTC)}
    scheduler.add_job(
        poll, "interval", args=[False], seconds=settings.poll_interval_s, id="poll-incoming",
        name=JOBS["poll-incoming"], **common,
    )  # fmt: skip
    scheduler.add_job(
        poll, "interval", args=[True], seconds=settings.sweep_interval_s, id="sweep-incoming",
        name=JOBS["sweep-incoming"], **common,
    )  # fmt: skip

    def erase() -> None:
        report = purge(storage, now=datetime.now(UTC), lookahead_s=settings.purge_interval_s)
        log.info(
            "purge: %d calls, %d quarantined items, %d objects erased; %d held past deadline",
            len(report.calls_purged), report.quarantine_purged, report.objects_deleted, report.held,
        )  # fmt: skip

    scheduler.add_job(
        erase,
        "interval",
        seconds=settings.purge_interval_s,
        id="purge",
        name=JOBS["purge"],
        **common,
    )
    if with_worker:
        worker = _LazyWorker(storage, stop or threading.Event())
        scheduler.add_job(
            worker.drain, "interval", seconds=settings.poll_interval_s, id="transcribe",
            name=JOBS["transcribe"], **common,
        )  # fmt: skip
    return scheduler


class _LazyWorker:
    """Loads the model on the first run that has work, then keeps it for the process."""

    def __init__(self, storage: Storage, stop: threading.Event) -> None:
        self.storage = storage
        self.worker: Worker | None = None
        self.stop = stop

    def drain(self) -> None:
        if self.worker is None:
            self.worker = build_worker(self.storage)
        self.worker.run(
            concurrency=self.storage.settings.worker_concurrency, until_idle=True, stop=self.stop
        )


def background(storage: Storage, *, stop: threading.Event) -> BackgroundScheduler:
    """A started scheduler on its own threads, for ``callrec run``. To stop: set ``stop`` (a
    running transcription ends after its current call), then ``shutdown()``."""
    scheduler = BackgroundScheduler(timezone=UTC)
    add_jobs(scheduler, storage, stop=stop)
    scheduler.start()
    return scheduler


def run_forever(storage: Storage) -> None:
    """Run the jobs in the foreground until interrupted (``callrec scheduler``)."""
    scheduler = BlockingScheduler(timezone=UTC)
    add_jobs(scheduler, storage)
    try:
        scheduler.start()
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)
