"""The catalogue: every call, its jobs, transcript segments, holds and the audit trail.

SQLite by default, PostgreSQL via URL; the schema is made only by the packaged Alembic
migrations, which :meth:`Catalogue.open` applies. Timestamps are aware UTC on the way in and
out (:class:`UTCDateTime`).
"""

from .database import Catalogue
from .engine import CatalogueError
from .migrate import alembic_config, current_revision, downgrade, head_revision, upgrade
from .models import (
    AgentChannel,
    AuditEvent,
    Call,
    CallState,
    CatalogueModel,
    Checkpoint,
    Export,
    ExportCall,
    Hold,
    Job,
    JobLock,
    JobState,
    Note,
    QuarantineItem,
    ScheduledRun,
    Score,
    Segment,
    Speaker,
    Tombstone,
    Transcript,
    User,
    metadata,
)
from .summary import CatalogueSummary
from .types import UTCDateTime, utc_now

__all__ = [
    "AgentChannel",
    "AuditEvent",
    "Call",
    "CallState",
    "Catalogue",
    "CatalogueError",
    "CatalogueModel",
    "CatalogueSummary",
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
    "UTCDateTime",
    "User",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "metadata",
    "upgrade",
    "utc_now",
]
