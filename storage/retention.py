"""The retention rule, written once: a call's deadline is its start plus the retention period.

Everything that asks "how long may this stay?" — ingest refusing an expired recording, the
calls list showing days left, the purge — asks here, so the rule cannot drift between them.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta


def deadline(started_at: datetime, retention_days: int) -> datetime:
    """The instant after which nothing of the call may exist (unless held). Counted in UTC:
    Python adds days to an aware time on its own wall clock, which across a DST change would
    move the deadline by an hour for a start given in a local zone."""
    return started_at.astimezone(UTC) + timedelta(days=retention_days)


def is_expired(started_at: datetime, retention_days: int, now: datetime) -> bool:
    """True at and after the deadline: a call is never kept *until* its deadline plus a run."""
    return deadline(started_at, retention_days) <= now


def days_left(started_at: datetime, retention_days: int, now: datetime) -> int:
    """Whole days before the deadline, rounded down (0 on the last day, negative if overdue)."""
    return math.floor((deadline(started_at, retention_days) - now) / timedelta(days=1))
