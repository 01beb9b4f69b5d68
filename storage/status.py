"""The state of an installation at a glance, for ``callrec status`` and the admin page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from storage.catalogue import CatalogueSummary, Hold, Job, JobState, QuarantineItem, ScheduledRun
from storage.connect import Storage
from storage.holds import holds_due_for_review


@dataclass(frozen=True)
class Status:
    """What an operator checks first: is storage reachable, what is queued, stuck or held."""

    s3_endpoint: str
    s3_embedded: bool
    database: str
    summary: CatalogueSummary
    recent_quarantine: list[QuarantineItem]
    failed_jobs: list[Job]
    holds_due: list[Hold]  # active holds past their review date
    last_runs: list[ScheduledRun]  # the last run of each scheduled job

    def to_dict(self) -> dict[str, Any]:
        return {
            "storage": {
                "s3_endpoint": self.s3_endpoint,
                "s3_embedded": self.s3_embedded,
                "database": self.database,
            },
            "calls": {"total": self.summary.total_calls, "by_state": self.summary.calls_by_state},
            "jobs": {"by_state": self.summary.jobs_by_state},
            "quarantine": self.summary.quarantined,
            "quarantine_recent": [
                {
                    "source_key": item.source_key,
                    "reason": item.reason,
                    "received_at": item.received_at.isoformat(),
                    "object_key": item.object_key,
                }
                for item in self.recent_quarantine
            ],
            "failed_jobs": [
                {
                    "job": job.id,
                    "call_id": job.call_id,
                    "attempts": job.attempts,
                    "error": job.last_error,
                }
                for job in self.failed_jobs
            ],
            "holds": self.summary.active_holds,
            "holds_due_for_review": [
                {"call_id": hold.call_id, "review_at": hold.review_at.isoformat()}
                for hold in self.holds_due
            ],
            "scheduled_runs": {run.job: _run_dict(run) for run in self.last_runs},
            "oldest_call_age_days": round(self.summary.oldest_call_age_days, 1),
        }


def collect_status(storage: Storage, *, now: datetime, quarantine_limit: int = 20) -> Status:
    """Read the catalogue's counts after proving every bucket is reachable with our keys, so a
    healthy-looking status never hides a broken object store."""
    from sqlalchemy.engine import make_url

    for bucket in storage.settings.buckets.all():
        storage.objects.check_access(bucket)
    return Status(
        s3_endpoint=storage.objects.endpoint.url,
        s3_embedded=storage.settings.embedded_s3,
        database=make_url(storage.settings.catalogue_url).render_as_string(hide_password=True),
        summary=storage.catalogue.summary(now),
        recent_quarantine=_recent_quarantine(storage, limit=quarantine_limit),
        failed_jobs=_failed_jobs(storage, limit=quarantine_limit),
        holds_due=holds_due_for_review(storage, now),
        last_runs=_last_runs(storage),
    )


def _recent_quarantine(storage: Storage, *, limit: int) -> list[QuarantineItem]:
    with storage.catalogue.session() as session:
        newest_first = col(QuarantineItem.received_at).desc()
        return list(session.exec(select(QuarantineItem).order_by(newest_first).limit(limit)))


def _failed_jobs(storage: Storage, *, limit: int) -> list[Job]:
    with storage.catalogue.session() as session:
        failed = select(Job).where(Job.state == JobState.FAILED)
        return list(session.exec(failed.order_by(col(Job.updated_at).desc()).limit(limit)))


def _last_runs(storage: Storage) -> list[ScheduledRun]:
    with storage.catalogue.session() as session:
        return list(session.exec(select(ScheduledRun).order_by(col(ScheduledRun.job))))


def _run_dict(run: ScheduledRun) -> dict[str, Any]:
    """A job's last run; a verify result keeps its verdict and the number of each finding."""
    result = {
        key: len(value) if isinstance(value, list) else value for key, value in run.result.items()
    }
    return {
        "started_at": run.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "ok": run.ok,
        "error": run.error,
        "result": result,
        "by": run.owner,
    }
