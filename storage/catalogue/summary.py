"""The numbers behind ``callrec status``: what is in the catalogue and how old the oldest call is.

The oldest call's age is the quickest check that the purge keeps its promise: past the
retention period it means something is not being erased (or is held).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Mapped
from sqlmodel import Session, col, func, select

from .models import Call, CallState, Hold, Job, JobState, QuarantineItem

__all__ = ["CatalogueSummary", "summarize"]

_DAY = timedelta(days=1)


@dataclass(frozen=True)
class CatalogueSummary:
    """Counts at one instant (``as_of``). Every state is listed, zero included, so a report
    and a dashboard always show the same rows."""

    as_of: datetime
    calls_by_state: dict[str, int]
    jobs_by_state: dict[str, int]
    quarantined: int
    active_holds: int
    oldest_call_started_at: datetime | None

    @property
    def total_calls(self) -> int:
        return sum(self.calls_by_state.values())

    @property
    def oldest_call_age_days(self) -> float:
        """Days between the oldest call's start and ``as_of``; 0 when there are no calls."""
        if self.oldest_call_started_at is None:
            return 0.0
        return (self.as_of - self.oldest_call_started_at) / _DAY

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: datetimes as ISO 8601 strings in UTC."""
        oldest = self.oldest_call_started_at
        return {
            "as_of": self.as_of.isoformat(),
            "calls_by_state": dict(self.calls_by_state),
            "jobs_by_state": dict(self.jobs_by_state),
            "quarantined": self.quarantined,
            "active_holds": self.active_holds,
            "oldest_call_started_at": oldest.isoformat() if oldest else None,
            "oldest_call_age_days": round(self.oldest_call_age_days, 3),
        }


def summarize(session: Session, now: datetime) -> CatalogueSummary:
    """Count calls and jobs per state, quarantined items and active holds.

    Raises:
        ValueError: ``now`` is naive (an age needs an instant, not a wall-clock time).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("summary needs an aware 'now', e.g. datetime.now(UTC)")
    return CatalogueSummary(
        as_of=now,
        calls_by_state=_count_by(session, col(Call.state), CallState),
        jobs_by_state=_count_by(session, col(Job.state), JobState),
        quarantined=session.exec(select(func.count()).select_from(QuarantineItem)).one(),
        active_holds=session.exec(
            select(func.count()).select_from(Hold).where(col(Hold.released_at).is_(None))
        ).one(),
        oldest_call_started_at=session.exec(select(func.min(Call.started_at))).one(),
    )


def _count_by(session: Session, column: Mapped[Any], states: type[StrEnum]) -> dict[str, int]:
    counts = {state.value: 0 for state in states}
    for state, count in session.exec(select(column, func.count()).group_by(column)).all():
        counts[str(state.value if isinstance(state, StrEnum) else state)] = count
    return counts
