"""Quarantine: rejected input is kept, visible and reasoned — never silently dropped.

A rejected recording (and its sidecar) is copied to the quarantine bucket under a key derived
from the incoming object's ETag (``ETAG/KEY``), so a retry after a crash overwrites instead of
duplicating; a catalogue row records the reason and the dates its deletion is counted from.
Quarantined items obey the retention limit like calls (the purge deletes them at their deadline).
"""

from __future__ import annotations

import contextlib
import hashlib
from datetime import datetime

from sqlmodel import select

from ingest.metadata import SIDECAR_SUFFIX
from storage.catalogue import QuarantineItem
from storage.connect import Storage
from storage.objects import ObjectNotFoundError

_MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes


def quarantine(
    storage: Storage,
    key: str,
    reason: str,
    *,
    started_at: datetime | None,
    sha256: str | None,
    now: datetime,
) -> QuarantineItem:
    """Move ``key`` (and ``key.json``) from incoming to quarantine and record why.

    Args:
        key: The incoming object's key.
        reason: One line a person can act on ("metadata has no call_id").
        started_at: The call's start if known; else the deadline counts from ``now``.
        sha256: Of the bytes, when they were read.
    """
    settings = storage.settings
    objects = storage.objects
    info = objects.stat(settings.bucket_incoming, key)
    target = _quarantine_key(info.etag.strip(chr(34)) or "no-etag", key)
    objects.copy(settings.bucket_incoming, key, to_bucket=settings.bucket_quarantine, to_key=target)
    with contextlib.suppress(ObjectNotFoundError):  # most recordings come without a sidecar
        objects.copy(
            settings.bucket_incoming,
            key + SIDECAR_SUFFIX,
            to_bucket=settings.bucket_quarantine,
            to_key=target + SIDECAR_SUFFIX,
        )
    with storage.catalogue.session() as session:
        item = session.exec(
            select(QuarantineItem).where(QuarantineItem.object_key == target)
        ).first()
        if item is None:
            item = QuarantineItem(object_key=target, source_key=key, reason=reason, received_at=now)
        item.reason, item.started_at, item.sha256 = reason, started_at, sha256
        session.add(item)
        session.flush()
        session.refresh(item)
        session.expunge(item)
    objects.delete_many(settings.bucket_incoming, [key, key + SIDECAR_SUFFIX])
    return item


def _quarantine_key(etag: str, key: str) -> str:
    """``ETAG/KEY``, or ``ETAG/`` and the key's sha256 when that (or its sidecar's key) would pass
    S3's limit: a key near the limit must be quarantined too, not fail on every retry. The item
    keeps the incoming key as ``source_key``."""
    target = f"{etag}/{key}"
    if len((target + SIDECAR_SUFFIX).encode()) <= _MAX_KEY_BYTES:
        return target
    return f"{etag}/{hashlib.sha256(key.encode()).hexdigest()}"
