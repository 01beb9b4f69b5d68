"""The purge: every trace of a call whose deadline has come is erased, and a tombstone says so.

Deadline = ``started_at + retention_days`` (``storage.retention``). A call under an active hold
is skipped. Objects go first — every version and delete marker under the call's
``calls/ID/`` prefix — and the catalogue rows after, in one transaction per batch that also
writes the tombstones; so a purge interrupted anywhere never shows a call as deleted while its
bytes exist, and the next run finishes what it started. The rows of a call (jobs, segments,
transcript, holds) go by ``ON DELETE CASCADE``; ``CALL_TABLES`` names them so a test can prove
that no table referring to calls is forgotten.

This is the first part of the retention issue: holds' review dates, verification, exports and
the scheduler's locks come with it later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from storage.catalogue import Call, Hold, Job, QuarantineItem, Segment, Tombstone, Transcript
from storage.connect import Storage

# Tables whose rows belong to one call and must vanish with it (by cascade from calls.id).
CALL_TABLES = (Call, Job, Segment, Transcript, Hold)
# Tables that refer to a call on purpose after it is gone, holding no personal data.
KEPT_AFTER_PURGE = ("tombstones", "audit_events")
REASON = "retention period ended"


def call_prefix(call_id: str) -> str:
    """Where every object of a call lives in the recordings bucket."""
    return f"calls/{call_id}/"


@dataclass(frozen=True)
class PurgeReport:
    """What one purge run erased and what it had to leave."""

    calls_purged: list[str] = field(default_factory=list)  # with dry_run: would be purged
    objects_deleted: int = 0
    quarantine_purged: int = 0
    held: int = 0  # past the deadline, kept by an active hold
    dry_run: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "calls": self.calls_purged,
            "objects_deleted": self.objects_deleted,
            "quarantined_items": self.quarantine_purged,
            "held_past_deadline": self.held,
        }


def purge(
    storage: Storage,
    *,
    now: datetime,
    lookahead_s: float = 0.0,
    batch: int = 200,
    dry_run: bool = False,
) -> PurgeReport:
    """Erase every call and quarantined item whose deadline falls before ``now + lookahead_s``.

    Args:
        lookahead_s: The time until the next run, so nothing outlives its deadline between runs.
        batch: Calls whose rows are deleted in one transaction.
        dry_run: Report what would go; delete nothing.

    Raises:
        ObjectStoreError: S3 failed; calls whose objects could not be deleted keep their rows.
    """
    settings = storage.settings
    expired_from = now + timedelta(seconds=lookahead_s) - timedelta(days=settings.retention_days)
    due, held = _due_calls(storage, expired_from)
    if dry_run:
        return PurgeReport(
            calls_purged=[call.id for call in due],
            quarantine_purged=len(_due_quarantine(storage, expired_from)),
            held=held,
            dry_run=True,
        )
    purged: list[str] = []
    objects = 0
    for start in range(0, len(due), batch):
        calls = due[start : start + batch]
        for call in calls:
            objects += storage.objects.delete_prefix(
                settings.bucket_recordings, call_prefix(call.id)
            )
        with storage.catalogue.session() as session:
            ids = [call.id for call in calls]
            session.execute(sa.delete(Call).where(col(Call.id).in_(ids)))
            for call in calls:
                if session.get(Tombstone, call.id) is None:
                    session.add(
                        Tombstone(
                            call_id=call.id,
                            call_date=call.started_at.date(),
                            deleted_at=now,
                            reason=REASON,
                        )
                    )
        purged += ids
    quarantined, quarantine_objects = _purge_quarantine(storage, expired_from)
    return PurgeReport(
        calls_purged=purged,
        objects_deleted=objects + quarantine_objects,
        quarantine_purged=quarantined,
        held=held,
    )


def _due_calls(storage: Storage, expired_from: datetime) -> tuple[list[Call], int]:
    """Calls at or past their deadline, and how many of those an active hold keeps."""
    active_hold = select(Hold.call_id).where(col(Hold.released_at).is_(None))
    with storage.catalogue.session() as session:
        past = col(Call.started_at) <= expired_from
        due = list(session.exec(select(Call).where(past, col(Call.id).not_in(active_hold))))
        held = session.exec(
            select(sa.func.count()).select_from(Call).where(past, col(Call.id).in_(active_hold))
        ).one()
    return due, int(held)


def _purge_quarantine(storage: Storage, expired_from: datetime) -> tuple[int, int]:
    """Rejected input obeys the same limit, counted from its start (or, unknown, its arrival)."""
    bucket = storage.settings.bucket_quarantine
    items = _due_quarantine(storage, expired_from)
    if not items:
        return 0, 0
    deleted = storage.objects.delete_many(
        bucket, [k for i in items for k in (i.object_key, i.object_key + ".json")]
    )
    with storage.catalogue.session() as session:
        session.execute(
            sa.delete(QuarantineItem).where(col(QuarantineItem.id).in_([i.id for i in items]))
        )
    return len(items), deleted


def _due_quarantine(storage: Storage, expired_from: datetime) -> list[QuarantineItem]:
    started = sa.func.coalesce(col(QuarantineItem.started_at), col(QuarantineItem.received_at))
    with storage.catalogue.session() as session:
        return list(session.exec(select(QuarantineItem).where(started <= expired_from)))
