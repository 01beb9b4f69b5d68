"""The catalogue tables: one row per call and everything the pipeline hangs off it.

The schema itself is made only by the Alembic revisions in ``migrations/versions``; these
classes describe it for queries, and ``tests/test_migrations.py`` fails when the two drift apart.

Rows of a call (jobs, segments, holds) reference ``calls.id`` with ``ON DELETE CASCADE`` so the
purge erases a call with one ``DELETE`` and nothing is left behind by a forgotten table. The
audit trail and tombstones deliberately do not reference ``calls``: they must outlive the call.
JSON columns are not mutation-tracked: assign a new value (``call.extra = {...}``) to change one.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from .types import JSONValue, StrEnumType, UTCDateTime, utc_now

__all__ = [
    "AgentChannel",
    "AuditEvent",
    "Call",
    "CallState",
    "CatalogueModel",
    "Checkpoint",
    "Export",
    "ExportCall",
    "Hold",
    "Job",
    "JobLock",
    "JobState",
    "Note",
    "QuarantineItem",
    "ScheduledRun",
    "Score",
    "Segment",
    "Speaker",
    "Tombstone",
    "Transcript",
    "User",
    "metadata",
]

# Deterministic constraint names: SQLite batch migrations and later ALTERs need to name them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class CatalogueModel(SQLModel, registry=registry(metadata=metadata)):
    """Base of the catalogue tables; its own metadata keeps other SQLModel tables out of the
    migrations and out of the schema comparison."""


class CallState(StrEnum):
    INGESTED = "ingested"
    TRANSCRIBING = "transcribing"
    TRANSCRIBED = "transcribed"
    FAILED = "failed"
    ERASING = "erasing"  # its objects are being deleted; hidden everywhere, finished by the purge


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Speaker(StrEnum):
    AGENT = "agent"
    CUSTOMER = "customer"
    UNKNOWN = "unknown"


class AgentChannel(StrEnum):
    """Which stereo channel carries the agent; ``none`` for mono or unknown layouts."""

    LEFT = "left"
    RIGHT = "right"
    NONE = "none"


def _call_fk() -> Any:
    return Field(foreign_key="calls.id", ondelete="CASCADE", index=True, max_length=128)


class Call(CatalogueModel, table=True):
    """One recorded call. Its deadline is ``started_at + retention_days`` and is never stored,
    so changing the retention setting applies to every call at once."""

    __tablename__ = "calls"

    id: str = Field(primary_key=True, max_length=128, description="The PBX call id.")
    started_at: datetime = Field(sa_type=UTCDateTime, index=True)
    duration_s: float
    channels: int
    sample_rate: int
    codec: str = Field(max_length=32)
    agent_id: str | None = Field(default=None, index=True, max_length=64)
    team: str | None = Field(default=None, index=True, max_length=64)
    queue: str | None = Field(default=None, max_length=64)
    direction: str | None = Field(default=None, max_length=16)
    customer_number: str | None = Field(default=None, index=True, max_length=32)  # E.164
    customer_id: str | None = Field(default=None, index=True, max_length=64)
    policy_number: str | None = Field(default=None, index=True, max_length=64)
    agent_channel: AgentChannel = Field(
        default=AgentChannel.NONE, sa_type=StrEnumType(AgentChannel)
    )
    language: str | None = Field(default=None, max_length=8)
    sha256: str = Field(max_length=64)
    original_key: str
    rendition_key: str | None = None
    extra: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSONValue, description="Metadata keys callrec doesn't know."
    )
    state: CallState = Field(default=CallState.INGESTED, sa_type=StrEnumType(CallState), index=True)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Job(CatalogueModel, table=True):
    """A unit of work on a call, claimed by a worker under a lease that expires if it dies."""

    __tablename__ = "jobs"
    __table_args__ = (sa.Index("ix_jobs_state_lease_expires_at", "state", "lease_expires_at"),)

    id: int | None = Field(default=None, primary_key=True)
    call_id: str = _call_fk()
    kind: str = Field(default="transcribe", max_length=32)
    state: JobState = Field(default=JobState.QUEUED, sa_type=StrEnumType(JobState))
    attempts: int = 0
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    updated_at: datetime = Field(
        default_factory=utc_now, sa_type=UTCDateTime, sa_column_kwargs={"onupdate": utc_now}
    )


class Segment(CatalogueModel, table=True):
    """A stretch of one speaker's speech; ``model`` records the model and options that made it,
    so transcripts from different models can be told apart."""

    __tablename__ = "segments"

    id: int | None = Field(default=None, primary_key=True)
    call_id: str = _call_fk()
    speaker: Speaker = Field(sa_type=StrEnumType(Speaker))
    start_s: float
    end_s: float
    text: str = Field(sa_type=sa.Text)
    redacted_text: str = Field(sa_type=sa.Text)
    confidence: float | None = None
    words: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONValue)
    model: str


class Transcript(CatalogueModel, table=True):
    """How a call's segments were made: model, options, channel layout, language, and the
    coaching metrics measured from the audio. One per call; a re-transcription replaces it and
    its segments in one transaction."""

    __tablename__ = "transcripts"

    call_id: str = Field(
        primary_key=True, foreign_key="calls.id", ondelete="CASCADE", max_length=128
    )
    model: str
    options: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    layout: str = Field(max_length=16, description="stereo, mono or upmixed")
    language: str = Field(max_length=8)
    expected_language: str = Field(max_length=8)
    language_mismatch: bool = False
    language_probability: float = 1.0
    metrics: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class User(CatalogueModel, table=True):
    __tablename__ = "users"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(unique=True, index=True, max_length=64)
    role: str = Field(max_length=32)
    teams: list[str] = Field(default_factory=list, sa_type=JSONValue)
    password_hash: str
    disabled: bool = False
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class AuditEvent(CatalogueModel, table=True):
    """Append-only trail. ``call_id`` is not a foreign key: the trail outlives purged calls."""

    __tablename__ = "audit_events"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
    actor: str = Field(index=True, max_length=64)
    action: str = Field(index=True, max_length=64)
    call_id: str | None = Field(default=None, index=True, max_length=128)
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)


class Tombstone(CatalogueModel, table=True):
    """Proof that a call was erased, and when and why; holds no personal data by design."""

    __tablename__ = "tombstones"

    call_id: str = Field(primary_key=True, max_length=128)
    call_date: date
    deleted_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    reason: str = Field(max_length=255)


class Hold(CatalogueModel, table=True):
    """Keeps a call past its deadline while ``released_at`` is null; ``review_at`` forces
    someone to look again rather than keep it forever."""

    __tablename__ = "holds"

    id: int | None = Field(default=None, primary_key=True)
    call_id: str = _call_fk()
    reason: str = Field(sa_type=sa.Text)
    review_at: datetime = Field(sa_type=UTCDateTime)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    released_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    released_by: str | None = Field(default=None, max_length=64)


class QuarantineItem(CatalogueModel, table=True):
    """Rejected input kept in the quarantine bucket. ``started_at`` may be unknown (unreadable
    metadata); the purge then falls back to ``received_at``."""

    __tablename__ = "quarantine_items"

    id: int | None = Field(default=None, primary_key=True)
    object_key: str = Field(index=True, unique=True)
    source_key: str
    reason: str = Field(sa_type=sa.Text)
    received_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime, index=True)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    sha256: str | None = Field(default=None, max_length=64)


class Checkpoint(CatalogueModel, table=True):
    """Where a repeating scan got to (e.g. the last incoming key listed), kept in the database
    so any process on any machine can resume it."""

    __tablename__ = "checkpoints"

    name: str = Field(primary_key=True, max_length=128)
    value: str | None = Field(default=None, sa_type=sa.Text)
    updated_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Export(CatalogueModel, table=True):
    """A zip of calls handed out (an access request, a dispute). It holds personal data, so it
    expires soon (``expires_at``) and goes with the first of its calls the purge erases."""

    __tablename__ = "exports"

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=32, description="customer (access request) or call")
    object_key: str = Field(description="In the exports bucket.")
    reason: str = Field(sa_type=sa.Text)
    created_by: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class ExportCall(CatalogueModel, table=True):
    """Which calls an export holds. ``RESTRICT``, not cascade: a call cannot be deleted while an
    export still holds its audio, so the purge has to erase the export first."""

    __tablename__ = "export_calls"

    export_id: str = Field(
        primary_key=True, foreign_key="exports.id", ondelete="CASCADE", max_length=64
    )
    call_id: str = Field(
        primary_key=True, foreign_key="calls.id", ondelete="RESTRICT", index=True, max_length=128
    )


class JobLock(CatalogueModel, table=True):
    """A lease on a recurring job, so it never runs twice at once, also across processes and
    machines. A holder that dies stops renewing and the lease runs out."""

    __tablename__ = "job_locks"

    name: str = Field(primary_key=True, max_length=64)
    owner: str = Field(max_length=128)
    acquired_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class ScheduledRun(CatalogueModel, table=True):
    """The last run of each recurring job: when it started and finished, whether it worked, and
    its figures (the verify result shown in status); ``finished_at`` drives catch-up at start."""

    __tablename__ = "scheduled_runs"

    job: str = Field(primary_key=True, max_length=64)
    started_at: datetime = Field(sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ok: bool | None = None
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSONValue)
    error: str | None = Field(default=None, sa_type=sa.Text)
    owner: str = Field(max_length=128)


class Note(CatalogueModel, table=True):
    """A team lead's coaching note at a moment of a call. It is about what was said, so it is
    call data: it goes with the call (cascade) and is read only by those who coach the team."""

    __tablename__ = "notes"

    id: int | None = Field(default=None, primary_key=True)
    call_id: str = _call_fk()
    at_s: float = Field(description="The moment in the call, seconds from its start.")
    author: str = Field(max_length=64)
    text: str = Field(sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)


class Score(CatalogueModel, table=True):
    """A team lead's scorecard of a call: ``{criterion: 1..5}`` for every criterion of
    ``storage.annotations.SCORECARD``, as it was when scored; goes with the call (cascade)."""

    __tablename__ = "scores"

    id: int | None = Field(default=None, primary_key=True)
    call_id: str = _call_fk()
    author: str = Field(max_length=64)
    scorecard: dict[str, int] = Field(default_factory=dict, sa_type=JSONValue)
    comment: str | None = Field(default=None, sa_type=sa.Text)
    created_at: datetime = Field(default_factory=utc_now, sa_type=UTCDateTime)
