"""The recurring work of an installation, on APScheduler.

Jobs: poll the incoming bucket (after a checkpoint) every ``poll_interval_s``, sweep it from the
start every ``sweep_interval_s``, transcribe queued calls (the embedded worker), purge every
``purge_interval_s`` (at most hourly) whatever would pass its deadline before the next purge,
verify every bucket against the catalogue daily, and erase expired exports (as often as the purge).

Several schedulers may run at once for availability: each run of a job first takes the job's
lease in the catalogue (``storage.locks``), so a job never overlaps itself, in one process or
across machines; a run that finds the lease taken is skipped. Every run records when it
started and finished, whether it worked and its figures (``scheduled_runs``): that is what
``callrec status`` shows (the last verify result, a failing purge), and where catch-up starts:
a job whose last run is older than its interval (the machine was off) runs at once at start,
the others when their interval since the last run is over.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from errors import CallrecError
from ingest.pipeline import IngestOptions, Outcome
from ingest.poller import poll_incoming
from storage import locks
from storage.catalogue import Job, JobState, ScheduledRun
from storage.connect import Storage
from storage.exports import expire_exports
from storage.purge import purge
from storage.verify import verify
from transcribe import Worker, build_worker

log = logging.getLogger(__name__)

JOBS = {
    "poll-incoming": "ingest new recordings listed after the checkpoint",
    "sweep-incoming": "ingest stragglers: list the incoming bucket from the start",
    "transcribe": "transcribe queued calls until the queue is empty (embedded worker)",
    "purge": "erase every call and quarantined item whose deadline falls before the next run",
    "verify": "scan every bucket (all versions) against the catalogue and the deadlines",
    "expire-exports": "erase exports (access requests, disputes) whose download period is over",
}
LEASE_S = 300.0  # renewed every 100 s while a run works; a killed holder frees it after this


def add_jobs(
    scheduler: BaseScheduler,
    storage: Storage,
    *,
    stop: threading.Event | None = None,
    with_worker: bool = True,
    now: datetime | None = None,
) -> BaseScheduler:
    """Register callrec's recurring jobs on ``scheduler``.

    Args:
        stop: Set it to make a running transcription end after its current call.
        with_worker: Also transcribe in this process (the embedded default); production runs
            ``callrec worker`` processes instead, on machines sized for the model.
        now: The start time that catch-up is judged from (tests pass it).
    """
    settings = storage.settings
    options = IngestOptions.from_settings(storage)
    now = now or datetime.now(UTC)

    def poll(full_sweep: bool) -> dict[str, Any]:
        report = poll_incoming(
            storage,
            now=datetime.now(UTC),
            options=options,
            full_sweep=full_sweep,
            workers=settings.ingest_workers,
        )
        return {"listed": report.listed} | {
            str(outcome): report.count(outcome) for outcome in Outcome if report.count(outcome)
        }

    def erase() -> dict[str, Any]:
        return purge(
            storage, now=datetime.now(UTC), lookahead_s=settings.purge_interval_s
        ).figures()

    def check() -> dict[str, Any]:
        return verify(storage, now=datetime.now(UTC)).to_dict()

    def expire() -> dict[str, Any]:
        return {"exports": expire_exports(storage, now=datetime.now(UTC))}

    recurring: dict[str, tuple[Callable[[], dict[str, Any]], float]] = {
        "poll-incoming": (lambda: poll(False), settings.poll_interval_s),
        "sweep-incoming": (lambda: poll(True), settings.sweep_interval_s),
        "purge": (erase, settings.purge_interval_s),
        "verify": (check, settings.verify_interval_s),
        "expire-exports": (expire, settings.purge_interval_s),
    }
    last = last_runs(storage)
    for name, (work, interval_s) in recurring.items():
        previous = last.get(name)
        scheduler.add_job(
            run_once, "interval", args=[storage, name, work], seconds=interval_s, id=name,
            name=JOBS[name], max_instances=1, coalesce=True,
            next_run_time=first_run(previous.finished_at if previous else None, interval_s, now),
        )  # fmt: skip
    if with_worker:
        worker = _LazyWorker(storage, stop or threading.Event())
        scheduler.add_job(
            worker.drain, "interval", seconds=settings.poll_interval_s, id="transcribe",
            name=JOBS["transcribe"], max_instances=1, coalesce=True, next_run_time=now,
        )  # fmt: skip
    return scheduler


def first_run(last_finished: datetime | None, interval_s: float, now: datetime) -> datetime:
    """When a job first runs after a start: at once if it never ran or its interval has passed
    since its last run (runs missed while the machine was off are caught up, once), else when
    that interval is over."""
    if last_finished is None:
        return now
    return max(now, last_finished + timedelta(seconds=interval_s))


def run_once(
    storage: Storage, name: str, work: Callable[[], dict[str, Any]]
) -> dict[str, Any] | None:
    """One run of a job under its lease, recorded and logged with its figures. Returns the
    figures, or None when another process holds the lease or the run failed (logged, recorded,
    retried at the next run: an S3 outage delays a purge, it never skips one silently). With
    the catalogue itself unreachable nothing can be leased or recorded: one error line, and the
    next run tries again."""
    try:
        return _run_leased(storage, name, work)
    except CallrecError as exc:
        log.error("%s not run: %s; retried at the next run", name, exc)
        return None


def _run_leased(
    storage: Storage, name: str, work: Callable[[], dict[str, Any]]
) -> dict[str, Any] | None:
    catalogue = storage.catalogue
    with locks.leased(catalogue, name, lease_s=LEASE_S) as held:
        if not held:
            holder = locks.holder(catalogue, name)
            log.info("%s: skipped, running elsewhere (%s)", name, holder.owner if holder else "?")
            return None
        _record(storage, name, started_at=datetime.now(UTC))
        try:
            figures = work()
        except Exception as exc:
            _record(storage, name, finished_at=datetime.now(UTC), ok=False, error=str(exc))
            log.error("%s failed: %s; retried at the next run", name, exc)
            return None
        _record(storage, name, finished_at=datetime.now(UTC), ok=True, result=figures)
        idle_poll = figures.get("listed") == 0  # every 10 s: only worth a line when it found work
        log.log(logging.DEBUG if idle_poll else logging.INFO, "%s: %s", name, _summary(figures))
        return figures


def last_runs(storage: Storage) -> dict[str, ScheduledRun]:
    """The last recorded run of each job."""
    from sqlmodel import select

    with storage.catalogue.session() as session:
        return {run.job: run for run in session.exec(select(ScheduledRun))}


def _record(storage: Storage, name: str, **fields: Any) -> None:
    with storage.catalogue.session() as session:
        run = session.get(ScheduledRun, name)
        if run is None or "started_at" in fields:
            run = run or ScheduledRun(job=name, started_at=fields["started_at"], owner="")
            run.finished_at, run.ok, run.result, run.error = None, None, {}, None
        for key, value in fields.items():
            setattr(run, key, value)
        run.owner = locks.owner_id().rsplit(":", 1)[0]
        session.add(run)


def _summary(figures: dict[str, Any]) -> str:
    """Counts as they are, lists as their length (a verify finding list can be long)."""
    return ", ".join(
        f"{key} {len(value) if isinstance(value, list) else value}"
        for key, value in figures.items()
    )


class _LazyWorker:
    """Loads the model on the first run that has work, then keeps it for the process."""

    def __init__(self, storage: Storage, stop: threading.Event) -> None:
        self.storage = storage
        self.worker: Worker | None = None
        self.stop = stop

    def drain(self) -> None:
        if self.worker is None:
            if not _has_work(self.storage):
                return
            self.worker = build_worker(self.storage)
        self.worker.run(
            concurrency=self.storage.settings.worker_concurrency, until_idle=True, stop=self.stop
        )


def _has_work(storage: Storage) -> bool:
    """Is any transcription queued or running (a lease that may run out)?"""
    from sqlmodel import col, select

    pending = col(Job.state).in_([JobState.QUEUED, JobState.RUNNING])
    with storage.catalogue.session() as session:
        return session.exec(select(Job.id).where(pending).limit(1)).first() is not None


def background(storage: Storage, *, stop: threading.Event) -> BackgroundScheduler:
    """A started scheduler on its own threads, for ``callrec run``. To stop: set ``stop`` (a
    running transcription ends after its current call), then ``shutdown()``."""
    scheduler = BackgroundScheduler(timezone=UTC)
    add_jobs(scheduler, storage, stop=stop)
    scheduler.start()
    return scheduler


def run_forever(storage: Storage, *, with_worker: bool = True) -> None:
    """Run the jobs in the foreground until interrupted (``callrec scheduler``; SIGTERM arrives
    as KeyboardInterrupt): a running transcription ends after its current call, other running
    jobs finish their run, leases are released, then it returns. Without the worker, this
    process never loads the model: ``callrec worker`` processes transcribe."""
    stop = threading.Event()
    scheduler = BlockingScheduler(timezone=UTC)
    add_jobs(scheduler, storage, stop=stop, with_worker=with_worker)
    try:
        scheduler.start()
    finally:
        stop.set()
        if scheduler.running:
            scheduler.shutdown(wait=True)
