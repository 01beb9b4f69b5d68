"""The recurring work of an installation, on APScheduler.

Today: poll the incoming bucket (after a checkpoint) every ``poll_interval_s`` and sweep it from
the start every ``sweep_interval_s``. The retention issue adds the purge, verification and
export expiry here. A job never overlaps itself in one process (``max_instances=1``); a run
missed while the process was busy is merged into the next (``coalesce``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from ingest.pipeline import IngestOptions
from ingest.poller import poll_incoming
from storage.connect import Storage

log = logging.getLogger(__name__)

JOBS = {
    "poll-incoming": "ingest new recordings listed after the checkpoint",
    "sweep-incoming": "ingest stragglers: list the incoming bucket from the start",
}


def add_jobs(scheduler: BaseScheduler, storage: Storage) -> BaseScheduler:
    """Register callrec's recurring jobs on ``scheduler`` (all start at once, then repeat)."""
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
    return scheduler


def background(storage: Storage) -> BackgroundScheduler:
    """A started scheduler on its own threads, for ``callrec run``; stop it with shutdown()."""
    scheduler = BackgroundScheduler(timezone=UTC)
    add_jobs(scheduler, storage)
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
