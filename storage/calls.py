"""Read-side views of the calls table for listings (CLI, status pages)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from errors import CallrecError
from storage.catalogue import Call, CallState, Segment, Tombstone, Transcript
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
        visible = select(Call).where(Call.state != CallState.ERASING)
        calls = session.exec(visible.order_by(col(Call.started_at).desc()).limit(limit)).all()
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


class CallNotFoundError(CallrecError):
    """No such call; if it was erased, the message says when and why."""


@dataclass(frozen=True)
class SegmentView:
    speaker: str
    start_s: float
    end_s: float
    text: str
    redacted_text: str
    confidence: float | None

    def to_dict(self, *, redacted: bool) -> dict[str, Any]:
        return {
            "speaker": self.speaker,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "text": self.redacted_text if redacted else self.text,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class CallDetail:
    """A call with its transcript, as ``callrec show`` and the call page present it."""

    call: Call
    transcript: Transcript | None
    segments: list[SegmentView]
    days_left: int

    def to_dict(self, *, redacted: bool) -> dict[str, Any]:
        call = self.call
        hidden = {"customer_number", "customer_id", "policy_number", "extra"} if redacted else set()
        metadata = {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in call.model_dump().items()
            if k not in hidden
        }
        transcript = None
        if self.transcript is not None:
            transcript = self.transcript.model_dump(exclude={"call_id"})
            transcript["created_at"] = self.transcript.created_at.isoformat()
        return {
            "call": metadata,
            "days_left": self.days_left,
            "transcript": transcript,
            "segments": [s.to_dict(redacted=redacted) for s in self.segments],
        }


def require_call(session: Session, call_id: str) -> Call:
    """The call ``call_id``, for anything that acts on one call (show, hold, release).

    Raises:
        CallNotFoundError: No such call (with the date and reason if it was erased), or it is
            being erased.
    """
    call = session.get(Call, call_id)
    if call is None:
        tombstone = session.get(Tombstone, call_id)
        if tombstone is not None:
            raise CallNotFoundError(
                f"call {call_id} was deleted on {tombstone.deleted_at:%Y-%m-%d %H:%M} UTC "
                f"({tombstone.reason})",
                hint="nothing of it is kept",
            )
        raise CallNotFoundError(f"no call {call_id}", hint="list calls with `callrec calls`")
    if call.state == CallState.ERASING:
        raise CallNotFoundError(
            f"call {call_id} is being erased", hint="the purge finishes it on its next run"
        )
    return call


def call_detail(storage: Storage, call_id: str, *, now: datetime) -> CallDetail:
    """Everything stored about one call.

    Raises:
        CallNotFoundError: No such call (with the date and reason if it was erased).
    """
    with storage.catalogue.session() as session:
        call = require_call(session, call_id)
        transcript = session.get(Transcript, call_id)
        rows = session.exec(
            select(Segment).where(Segment.call_id == call_id).order_by(col(Segment.start_s))
        ).all()
    segments = [
        SegmentView(s.speaker, s.start_s, s.end_s, s.text, s.redacted_text, s.confidence)
        for s in rows
    ]
    left = days_left(call.started_at, storage.settings.retention_days, now)
    return CallDetail(call=call, transcript=transcript, segments=segments, days_left=left)
