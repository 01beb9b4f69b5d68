"""Read-side views of the calls table for listings (CLI, status pages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select

from storage.catalogue import Call
from storage.connect import Storage
from storage.retention import days_left


@dataclass(frozen=True)
class CallRow:
    """One line of a calls listing."""

    call_id: str
    started_at: datetime
    duration_s: float
    channels: int
    agent_id: str | None
    state: str
    days_left: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id,
            "started_at": self.started_at.isoformat(),
            "duration_s": round(self.duration_s, 2),
            "channels": self.channels,
            "agent_id": self.agent_id,
            "state": self.state,
            "days_left": self.days_left,
        }


def recent_calls(storage: Storage, *, now: datetime, limit: int = 50) -> list[CallRow]:
    """The newest calls first, each with the whole days left before it is erased."""
    retention = storage.settings.retention_days
    with storage.catalogue.session() as session:
        calls = session.exec(select(Call).order_by(col(Call.started_at).desc()).limit(limit)).all()
    return [
        CallRow(
            call_id=call.id,
            started_at=call.started_at,
            duration_s=call.duration_s,
            channels=call.channels,
            agent_id=call.agent_id,
            state=str(call.state),
            days_left=days_left(call.started_at, retention, now),
        )
        for call in calls
    ]
