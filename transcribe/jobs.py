"""The transcription queue: jobs claimed under a lease, so a dead worker's job is taken over.

A worker claims the oldest claimable job — queued, or running with a lease that ran out — and
renews the lease while it works. On PostgreSQL the claim is ``FOR UPDATE SKIP LOCKED``, so many
workers on many machines never take the same job; on SQLite the database has one writer and
the claim is a single ``UPDATE``. Attempts are counted; a job whose worker died on its last
attempt, or that failed on it, is ``failed`` with its error, for ``callrec retry``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from storage.catalogue import Call, CallState, Catalogue, Job, JobState

KIND = "transcribe"


@dataclass(frozen=True)
class ClaimedJob:
    job_id: int
    call_id: str
    attempt: int


@dataclass(frozen=True)
class LeasePolicy:
    lease_s: float = 300.0
    max_attempts: int = 3


class LeaseLostError(Exception):
    """Another worker took the job over (our lease ran out); our result must be dropped."""


def claim(
    catalogue: Catalogue, *, owner: str, now: datetime, policy: LeasePolicy
) -> ClaimedJob | None:
    """Take the oldest claimable job, or None when there is none."""
    with catalogue.session() as session:
        _fail_abandoned(session, now=now, policy=policy)
        claimable = (
            select(Job.id)
            .where(
                Job.kind == KIND,
                sa.or_(
                    col(Job.state) == JobState.QUEUED,
                    sa.and_(col(Job.state) == JobState.RUNNING, col(Job.lease_expires_at) < now),
                ),
            )
            .order_by(col(Job.created_at), col(Job.id))
            .limit(1)
        )
        if session.get_bind().dialect.name == "postgresql":
            claimable = claimable.with_for_update(skip_locked=True)
        row = session.execute(
            sa.update(Job)
            .where(col(Job.id) == claimable.scalar_subquery())
            .values(
                state=JobState.RUNNING,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=policy.lease_s),
                attempts=col(Job.attempts) + 1,
                updated_at=now,
            )
            .returning(col(Job.id), col(Job.call_id), col(Job.attempts))
        ).first()
        if row is None:
            return None
        session.execute(
            sa.update(Call).where(col(Call.id) == row.call_id).values(state=CallState.TRANSCRIBING)
        )
        return ClaimedJob(job_id=row.id, call_id=row.call_id, attempt=row.attempts)


def renew(
    catalogue: Catalogue, job: ClaimedJob, *, owner: str, now: datetime, policy: LeasePolicy
) -> bool:
    """Extend our lease; False if the job is no longer ours."""
    with catalogue.session() as session:
        updated = session.execute(
            sa.update(Job)
            .where(
                col(Job.id) == job.job_id,
                col(Job.lease_owner) == owner,
                col(Job.state) == JobState.RUNNING,
            )
            .values(lease_expires_at=now + timedelta(seconds=policy.lease_s), updated_at=now)
        )
        return bool(updated.rowcount)  # type: ignore[attr-defined]


def complete(session: Session, job: ClaimedJob, *, owner: str, now: datetime) -> None:
    """Mark the job done inside the caller's transaction (the one that stores the transcript).

    Raises:
        LeaseLostError: The job was taken over; the caller's transaction must roll back.
    """
    updated = session.execute(
        sa.update(Job)
        .where(
            col(Job.id) == job.job_id,
            col(Job.lease_owner) == owner,
            col(Job.state) == JobState.RUNNING,
        )
        .values(
            state=JobState.DONE,
            lease_owner=None,
            lease_expires_at=None,
            last_error=None,
            updated_at=now,
        )
    )
    if not updated.rowcount:  # type: ignore[attr-defined]
        raise LeaseLostError(
            f"job {job.job_id} of call {job.call_id} was taken over by another worker"
        )


def fail(
    catalogue: Catalogue,
    job: ClaimedJob,
    error: str,
    *,
    owner: str,
    now: datetime,
    policy: LeasePolicy,
) -> str:
    """Record a failed attempt: back to the queue, or ``failed`` after the last attempt."""
    final = job.attempt >= policy.max_attempts
    state = JobState.FAILED if final else JobState.QUEUED
    with catalogue.session() as session:
        updated = session.execute(
            sa.update(Job)
            .where(col(Job.id) == job.job_id, col(Job.lease_owner) == owner)
            .values(
                state=state,
                lease_owner=None,
                lease_expires_at=None,
                last_error=error[:2000],
                updated_at=now,
            )
        )
        if updated.rowcount and final:  # type: ignore[attr-defined]
            session.execute(
                sa.update(Call).where(col(Call.id) == job.call_id).values(state=CallState.FAILED)
            )
    return str(state)


def retry(
    catalogue: Catalogue, *, job_id: int | None = None, all_failed: bool = False, now: datetime
) -> int:
    """Put failed jobs back in the queue with a fresh attempt count; returns how many."""
    with catalogue.session() as session:
        condition = col(Job.state) == JobState.FAILED
        if job_id is not None:
            condition = sa.and_(condition, col(Job.id) == job_id)
        elif not all_failed:
            return 0
        ids = [row[0] for row in session.execute(select(Job.id).where(condition))]
        if not ids:
            return 0
        session.execute(
            sa.update(Job)
            .where(col(Job.id).in_(ids))
            .values(state=JobState.QUEUED, attempts=0, updated_at=now)
        )
        call_ids = select(Job.call_id).where(col(Job.id).in_(ids))
        session.execute(
            sa.update(Call).where(col(Call.id).in_(call_ids)).values(state=CallState.INGESTED)
        )
        return len(ids)


def _fail_abandoned(session: Session, *, now: datetime, policy: LeasePolicy) -> None:
    """A job whose lease ran out on its last attempt killed its worker every time (a crash, an
    out-of-memory kill): it fails instead of being taken over for ever."""
    abandoned = sa.and_(
        col(Job.kind) == KIND,
        col(Job.state) == JobState.RUNNING,
        col(Job.lease_expires_at) < now,
        col(Job.attempts) >= policy.max_attempts,
    )
    call_ids = [row[0] for row in session.execute(select(Job.call_id).where(abandoned))]
    if not call_ids:
        return
    session.execute(
        sa.update(Job)
        .where(abandoned)
        .values(
            state=JobState.FAILED, lease_owner=None, lease_expires_at=None, updated_at=now,
            last_error=f"the worker stopped without finishing, {policy.max_attempts} times",
        )
    )  # fmt: skip
    session.execute(
        sa.update(Call).where(col(Call.id).in_(call_ids)).values(state=CallState.FAILED)
    )
