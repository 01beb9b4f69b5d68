"""The purge: every trace of a call whose deadline has come is erased, and a tombstone says so.

Deadline = ``started_at + retention_days`` (``storage.retention``). A call under an active hold
is skipped. Per batch of calls: mark them ``erasing`` (hidden from every list and page from then
on), erase the exports that hold them, every version and delete marker under each call's
``calls/ID/`` prefix, then the catalogue rows in one transaction that also writes the tombstones
and one audit event per call. A purge interrupted anywhere never shows a half-deleted call and
never marks a call deleted while its bytes exist; the next run finds the ``erasing`` calls and
finishes them. Erasure requests (``storage.subject_requests``) use the same :func:`erase_calls`.

Coverage is structural: :data:`CALL_DATA_TABLES` and :data:`CALL_DATA_BUCKETS` name every table
and bucket that can hold data of a call and how it is erased, and ``tests/test_purge.py``
compares them with the live schema and the live bucket list, so a new table or bucket cannot be
forgotten.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from storage.audit import Action, record
from storage.catalogue import (
    Call,
    CallState,
    Export,
    ExportCall,
    Hold,
    QuarantineItem,
    Tombstone,
)
from storage.connect import Storage
from storage.objects import ObjectLockedError
from storage.search.index import FTS5_SHADOW_TABLES, INDEX_TABLE

log = logging.getLogger(__name__)

# Every table that can hold data of a call, and how the purge erases it.
CALL_DATA_TABLES = {
    "calls": "deleted by id, last, with the tombstone",
    "jobs": "ON DELETE CASCADE from calls",
    "segments": "ON DELETE CASCADE from calls",
    "transcripts": "ON DELETE CASCADE from calls",
    "holds": "ON DELETE CASCADE from calls (a call under an active hold is not purged)",
    "notes": "ON DELETE CASCADE from calls",
    "scores": "ON DELETE CASCADE from calls",
    "export_calls": "with its export, before the call (the foreign key is RESTRICT)",
    "exports": "erased with any call it holds, or at its expiry (storage.exports)",
    "quarantine_items": "at their own deadline, from the call's start or their arrival",
    INDEX_TABLE: "search entries: by cascade (PostgreSQL) or a trigger on segments (SQLite)",
    **{shadow: "SQLite FTS5's storage behind segment_index" for shadow in FTS5_SHADOW_TABLES},
}
# Tables that refer to a call on purpose after it is gone, holding no personal data.
KEPT_AFTER_PURGE = {
    "tombstones": "proof of deletion: call id, call date, when and why",
    "audit_events": "who did what to which call id, append-only",
}
# Tables that never hold data of a call.
NO_CALL_DATA = {
    "users": "staff accounts",
    "checkpoints": "where a scan got to (an object key in the incoming bucket at most)",
    "job_locks": "leases of recurring jobs",
    "scheduled_runs": "the last run of each recurring job and its figures",
    "alembic_version": "schema revision",
}
# Every bucket (by its settings field), and how the purge erases what it holds of a call.
CALL_DATA_BUCKETS = {
    "recordings": "every version under calls/ID/ (original, rendition, derived files)",
    "exports": "every version under EXPORT_ID/, with any call it holds or at expiry",
    "quarantine": "the item and its sidecar, at the item's deadline",
    "incoming": "leftovers last written longer ago than the retention period",
}
NO_CALL_DATA_BUCKETS = {"callrec-health": "the embedded server's readiness probe"}

REASON = "retention period ended"
RESUMED_REASON = "erasure finished after an interruption"


def call_prefix(call_id: str) -> str:
    """Where every object of a call lives in the recordings bucket."""
    return f"calls/{call_id}/"


def export_prefix(export_id: str) -> str:
    """Where every object of an export lives in the exports bucket."""
    return f"{export_id}/"


@dataclass(frozen=True)
class PurgeReport:
    """What one purge run erased and what it had to leave."""

    calls_purged: list[str] = field(default_factory=list)  # with dry_run: would be purged
    objects_deleted: int = 0
    quarantine_purged: int = 0
    incoming_purged: int = 0
    held: int = 0  # past the deadline, kept by an active hold
    dry_run: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "calls": self.calls_purged,
            "objects_deleted": self.objects_deleted,
            "quarantined_items": self.quarantine_purged,
            "incoming_leftovers": self.incoming_purged,
            "held_past_deadline": self.held,
        }

    def figures(self) -> dict[str, object]:
        """The counts without the call list, for logs and the scheduler's record."""
        return {k: v for k, v in self.to_dict().items() if k != "calls"} | {
            "calls": len(self.calls_purged)
        }


def purge(
    storage: Storage,
    *,
    now: datetime,
    lookahead_s: float = 0.0,
    batch: int = 200,
    dry_run: bool = False,
    actor: str = "scheduler",
) -> PurgeReport:
    """Erase every call, quarantined item and incoming leftover whose deadline falls before
    ``now + lookahead_s``, and finish erasures an earlier run left half-done.

    Args:
        lookahead_s: The time until the next run, so nothing outlives its deadline between runs.
        batch: Calls whose rows are deleted in one transaction.
        dry_run: Report what would go; delete nothing.
        actor: Who runs it, for the audit trail.

    Raises:
        ObjectStoreError: S3 failed; calls whose objects could not be deleted keep their rows
            (hidden as ``erasing``) and the next run retries them.
    """
    settings = storage.settings
    now = now.astimezone(UTC)  # day arithmetic on a local wall clock would shift it by DST
    expired_from = now + timedelta(seconds=lookahead_s) - timedelta(days=settings.retention_days)
    unfinished = _unfinished(storage, expired_from)
    due, held = _due_calls(storage, expired_from)
    if dry_run:
        return PurgeReport(
            calls_purged=[call.id for call in unfinished + due],
            quarantine_purged=len(_due_quarantine(storage, expired_from)),
            incoming_purged=len(_incoming_leftovers(storage, expired_from)),
            held=held,
            dry_run=True,
        )
    purged, objects = erase_calls(
        storage, unfinished, now=now, reason=RESUMED_REASON, actor=actor, action=Action.ERASE
    )
    erased, more = erase_calls(
        storage, due, now=now, reason=REASON, actor=actor, action=Action.PURGE, batch=batch
    )
    quarantined, quarantine_objects = _purge_quarantine(storage, expired_from)
    leftovers = _incoming_leftovers(storage, expired_from)
    incoming_objects = storage.objects.delete_many(settings.bucket_incoming, leftovers)
    return PurgeReport(
        calls_purged=purged + erased,
        objects_deleted=objects + more + quarantine_objects + incoming_objects,
        quarantine_purged=quarantined,
        incoming_purged=len(leftovers),
        held=held,
    )


def erase_calls(
    storage: Storage,
    calls: Sequence[Call],
    *,
    now: datetime,
    reason: str,
    actor: str,
    action: Action,
    batch: int = 200,
) -> tuple[list[str], int]:
    """Erase ``calls`` now, whatever their deadline: the exports that hold them, every object
    version, every row; then a tombstone with ``reason`` and one audit event per call. A call
    under an active hold is never touched, even one held after the caller looked (marking as
    ``erasing`` and the hold check are one statement). Returns the erased call ids and how many
    objects were deleted."""
    erased: list[str] = []
    objects = 0
    active_hold = select(Hold.call_id).where(col(Hold.released_at).is_(None))
    for start in range(0, len(calls), batch):
        dates = {call.id: call.started_at.date() for call in calls[start : start + batch]}
        with storage.catalogue.session() as session:
            marked = session.execute(
                sa.update(Call)
                .where(col(Call.id).in_(list(dates)), col(Call.id).not_in(active_hold))
                .values(state=CallState.ERASING)
                .returning(col(Call.id))
            )
            taken = set(marked.scalars())
        ids = [call_id for call_id in dates if call_id in taken]  # in the caller's order
        exports = _erase_exports_holding(storage, ids)
        objects += exports.objects + _delete_objects_of(storage, ids)
        with storage.catalogue.session() as session:
            session.execute(sa.delete(Call).where(col(Call.id).in_(ids)))
            known = set(
                session.exec(select(Tombstone.call_id).where(col(Tombstone.call_id).in_(ids)))
            )
            for call_id in ids:
                if call_id not in known:
                    session.add(
                        Tombstone(
                            call_id=call_id, call_date=dates[call_id], deleted_at=now, reason=reason
                        )
                    )
                removed = (
                    {"exports_removed": exports.held_by[call_id]}
                    if call_id in exports.held_by
                    else {}
                )
                record(
                    session,
                    actor=actor,
                    action=action,
                    at=now,
                    call_id=call_id,
                    why=reason,
                    **removed,
                )
        erased += ids
        log.debug("erased %d calls (%s)", len(ids), reason)
    return erased, objects


def _delete_objects_of(storage: Storage, call_ids: list[str]) -> int:
    """Every version under the calls' prefixes: listed in parallel, deleted 1000 per request.

    A legal hold found there is a leftover of an interrupted hold or release (the calls were
    marked in the same statement that checked they have no active hold): then each call's
    marks are cleared to match the catalogue and its objects deleted on their own.
    """
    bucket = storage.settings.bucket_recordings
    prefixes = [call_prefix(call_id) for call_id in call_ids]
    try:
        return storage.objects.delete_prefixes(bucket, prefixes)
    except ObjectLockedError:
        from storage.holds import settle_objects  # holds builds on this module

        log.warning("clearing hold marks left by an interrupted release on %d calls", len(call_ids))
        deleted = 0
        for call_id in call_ids:
            settle_objects(storage, call_id)
            deleted += storage.objects.delete_prefix(bucket, call_prefix(call_id))
        return deleted


@dataclass(frozen=True)
class _ErasedExports:
    objects: int
    held_by: dict[str, list[str]]  # call id -> the exports that held it


def _erase_exports_holding(storage: Storage, call_ids: list[str]) -> _ErasedExports:
    """An export holds copies of its calls' audio and text, so it goes with the first of them;
    the call's audit event names the exports that went with it."""
    with storage.catalogue.session() as session:
        links = session.exec(
            select(ExportCall.call_id, ExportCall.export_id).where(
                col(ExportCall.call_id).in_(call_ids)
            )
        ).all()
    held_by: dict[str, list[str]] = {}
    for call_id, export_id in links:
        held_by.setdefault(call_id, []).append(export_id)
    exports = sorted({export_id for _, export_id in links})
    objects = sum(
        storage.objects.delete_prefix(storage.settings.bucket_exports, export_prefix(export_id))
        for export_id in exports
    )
    if exports:
        with storage.catalogue.session() as session:
            session.execute(sa.delete(Export).where(col(Export.id).in_(exports)))
    return _ErasedExports(objects=objects, held_by=held_by)


def _unfinished(storage: Storage, expired_from: datetime) -> list[Call]:
    """Calls an interrupted erasure request left ``erasing`` (the due ones are purged anyway)."""
    with storage.catalogue.session() as session:
        return list(
            session.exec(
                select(Call).where(
                    Call.state == CallState.ERASING, col(Call.started_at) > expired_from
                )
            )
        )


def _due_calls(storage: Storage, expired_from: datetime) -> tuple[list[Call], int]:
    """Calls at or past their deadline, and how many of those an active hold keeps."""
    active_hold = select(Hold.call_id).where(col(Hold.released_at).is_(None))
    with storage.catalogue.session() as session:
        past = col(Call.started_at) <= expired_from
        due = list(
            session.exec(
                select(Call)
                .where(past, col(Call.id).not_in(active_hold))
                .order_by(col(Call.started_at))
            )
        )
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


def _incoming_leftovers(storage: Storage, expired_from: datetime) -> list[str]:
    """Objects in the incoming bucket written before the oldest allowed call start: ingest
    normally empties it in seconds, so these were never ingested and must not outlive the
    promise (a call cannot have started after its file was written)."""
    return sorted(
        {
            version.key
            for version in storage.objects.list_versions(storage.settings.bucket_incoming)
            if version.last_modified is not None and version.last_modified <= expired_from
        }
    )
