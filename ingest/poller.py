"""Polling the incoming bucket: works on MinIO and any S3 (SeaweedFS has no notifications).

A checkpoint (the last key settled) lets each poll list only what is new, so a large bucket is
not re-listed from the start every few seconds; a periodic full sweep (no checkpoint) catches
stragglers whose keys sort before it. The checkpoint never passes a recording that is still
waiting for its sidecar, so nothing is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice

from ingest.metadata import SIDECAR_SUFFIX
from ingest.pipeline import (
    IngestOptions,
    IngestResult,
    Outcome,
    ingest_or_retry,
)
from ingest.quarantine import quarantine
from storage.catalogue import Checkpoint
from storage.connect import Storage
from storage.objects import ObjectInfo
from storage.scratch import remove_dead_scratch

log = logging.getLogger(__name__)

CHECKPOINT = "ingest.incoming"


@dataclass(frozen=True)
class PollReport:
    """What one poll saw and did."""

    listed: int
    results: list[IngestResult] = field(default_factory=list)
    checkpoint: str | None = None
    full_sweep: bool = False

    def count(self, outcome: Outcome) -> int:
        return sum(result.outcome == outcome for result in self.results)


def poll_incoming(
    storage: Storage,
    *,
    now: datetime,
    options: IngestOptions,
    full_sweep: bool = False,
    prefix: str = "",
    limit: int = 1000,
    workers: int = 4,
    on_result: Callable[[IngestResult], None] | None = None,
) -> PollReport:
    """Ingest up to ``limit`` recordings from the incoming bucket, ``workers`` at a time.

    Args:
        full_sweep: List from the start instead of after the checkpoint.
        prefix: Only keys under this prefix (one PBX of several sharing a bucket); each prefix
            keeps its own checkpoint.
        on_result: Called as each recording is settled (progress reporting).
    """
    remove_dead_scratch(storage.settings)
    name = f"{CHECKPOINT}:{prefix}"
    start_after = None if full_sweep else _load_checkpoint(storage, name)
    listing = storage.objects.list(
        storage.settings.bucket_incoming, prefix=prefix, start_after=start_after
    )
    batch = list(islice(listing, limit))
    recordings = [o for o in batch if not o.key.endswith(SIDECAR_SUFFIX)]
    present = {o.key for o in batch}

    def settle(info: ObjectInfo) -> IngestResult:
        result = ingest_or_retry(storage, info.key, now=now, options=options)
        if on_result is not None:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="ingest") as pool:
        results = list(pool.map(settle, recordings))
    results += _quarantine_orphan_sidecars(storage, batch, present, now=now, options=options)

    checkpoint = _advance(start_after, recordings, results)
    if checkpoint != start_after and not full_sweep:
        _save_checkpoint(storage, name, checkpoint, now=now)
    report = PollReport(
        listed=len(batch), results=results, checkpoint=checkpoint, full_sweep=full_sweep
    )
    if results:
        log.info(
            "poll: %d listed, %d ingested, %d duplicate, %d quarantined, %d expired, %d waiting",
            report.listed,
            report.count(Outcome.INGESTED),
            report.count(Outcome.DUPLICATE),
            report.count(Outcome.QUARANTINED),
            report.count(Outcome.EXPIRED),
            report.count(Outcome.WAITING),
        )
    return report


def _advance(
    start_after: str | None, recordings: list[ObjectInfo], results: list[IngestResult]
) -> str | None:
    """The last key of the leading run of settled recordings: one that waits for its sidecar
    or failed for a retry holds it back."""
    checkpoint = start_after
    for info, result in zip(recordings, results, strict=False):
        if result.outcome in (Outcome.WAITING, Outcome.RETRY):
            break
        checkpoint = info.key
    return checkpoint


def _quarantine_orphan_sidecars(
    storage: Storage,
    batch: list[ObjectInfo],
    present: set[str],
    *,
    now: datetime,
    options: IngestOptions,
) -> list[IngestResult]:
    """A sidecar whose recording never arrived (or arrived and left without it) is input too."""
    grace = timedelta(seconds=options.metadata_grace_s)
    results = []
    for info in batch:
        if (
            not info.key.endswith(SIDECAR_SUFFIX)
            or info.key.removesuffix(SIDECAR_SUFFIX) in present
        ):
            continue
        if info.last_modified is not None and now - info.last_modified < grace:
            continue
        if storage.objects.exists(
            storage.settings.bucket_incoming, info.key.removesuffix(SIDECAR_SUFFIX)
        ):
            continue
        reason = "sidecar without a recording"
        quarantine(storage, info.key, reason, started_at=None, sha256=None, now=now)
        results.append(IngestResult(info.key, Outcome.QUARANTINED, reason=reason))
    return results


def _load_checkpoint(storage: Storage, name: str) -> str | None:
    with storage.catalogue.session() as session:
        row = session.get(Checkpoint, name)
        return row.value if row else None


def _save_checkpoint(storage: Storage, name: str, value: str | None, *, now: datetime) -> None:
    with storage.catalogue.session() as session:
        row = session.get(Checkpoint, name) or Checkpoint(name=name)
        row.value, row.updated_at = value, now
        session.add(row)
