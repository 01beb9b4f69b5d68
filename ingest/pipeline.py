"""One incoming recording becomes one catalogued call — or a quarantined item with its reason.

The steps run in an order that makes a crash anywhere harmless: the original is stored, then the
call row and its transcription job are written in one transaction, and only then is the incoming
object removed. A re-run after a crash finds the stored bytes or the row and finishes the job;
the same bytes delivered twice are a no-op.

Each delivery (one incoming object and its bytes) stores its original and rendition in a folder
of its own under the call, ``calls/ID/TAG/``, TAG derived from the bytes and the incoming key.
So two recordings naming one call id never write the same key, whether they race or one of them
crashed before it could catalogue: the first to insert the call row becomes the call, and the
other removes its folder before it is quarantined as a conflict (or dropped as a duplicate). The
call's original is then only ever the bytes its row's sha256 names, in a single version. Two
alternatives were rejected. A conditional write (``If-None-Match: *``) cannot be sent through the
minio SDK (7.2 turns unknown headers into user metadata, and a multipart upload needs it on its
completion), SeaweedFS honoured it on versioned buckets and under concurrent writes only in
recent releases, and a server that ignores the header overwrites silently. Reserving the call
row before the upload would show a call without audio to every reader (worker, app, verify) or
need a new hidden state in all of them, and a crash would leave the reservation to clean up.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy.exc import IntegrityError

from errors import CallrecError
from ingest.audio import AudioError, AudioInfo, Rendition, probe_and_render
from ingest.filename_pattern import FilenamePattern
from ingest.metadata import (
    MAX_SIDECAR_BYTES,
    SIDECAR_SUFFIX,
    CallMetadata,
    MetadataError,
    MetadataOptions,
    parse_metadata,
    parse_sidecar,
    quoted,
    started_at_of,
)
from ingest.quarantine import quarantine
from storage.backstop import STANDARD_TAGS
from storage.catalogue import AgentChannel, Call, Job, Tombstone
from storage.connect import Storage
from storage.objects import SHA256_META, ObjectInfo, ObjectNotFoundError, one_line, sha256_of
from storage.purge import call_prefix
from storage.retention import is_expired
from storage.scratch import scratch_dir

log = logging.getLogger(__name__)

_SAFE_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")  # names the stored original and the scratch copy


class Outcome(StrEnum):
    INGESTED = "ingested"
    DUPLICATE = "duplicate"  # same call id, same bytes: already catalogued
    QUARANTINED = "quarantined"
    EXPIRED = "expired"  # arrived past its retention deadline: deleted, tombstone written
    WAITING = "waiting"  # no metadata yet; its sidecar may still be on its way
    GONE = "gone"  # the object disappeared before we got to it (another ingester took it)
    RETRY = "retry"  # storage failed (an outage, a full disk): left in incoming for the next run


@dataclass(frozen=True)
class IngestResult:
    """What happened to one incoming object."""

    key: str
    outcome: Outcome
    call_id: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "outcome": str(self.outcome),
            "call_id": self.call_id,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class IngestOptions:
    """How metadata is read and when input is refused."""

    metadata: MetadataOptions
    retention_days: int
    max_recording_bytes: int  # a larger recording is refused before it is downloaded
    max_duration_s: float  # a longer one is refused, and ffmpeg stops decoding there
    filename_pattern: FilenamePattern | None = None
    metadata_grace_s: float = 120.0  # wait this long for a sidecar before quarantining
    future_tolerance_s: float = 300.0  # clock skew accepted on started_at

    @classmethod
    def from_settings(cls, storage: Storage) -> IngestOptions:
        settings = storage.settings
        return cls(
            metadata=MetadataOptions(
                timezone=settings.timezone,
                default_region=settings.phone_region,
                agent_channel=settings.agent_channel,
            ),
            retention_days=settings.retention_days,
            max_recording_bytes=settings.ingest_max_recording_mb * 1_000_000,
            max_duration_s=settings.ingest_max_call_hours * 3600,
            filename_pattern=(
                FilenamePattern.compile(settings.filename_pattern)
                if settings.filename_pattern
                else None
            ),
            metadata_grace_s=settings.ingest_metadata_grace_s,
        )


def _delivery_prefix(call_id: str, sha256: str, source_key: str) -> str:
    """The folder this delivery stores its objects in, ``calls/ID/TAG/``: a re-run of the same
    delivery finds what it stored before, another delivery never shares a key with it, and all
    stay under the call's prefix so the purge finds every one of them with a single listing."""
    tag = hashlib.sha256(f"{sha256}\n{source_key}".encode()).hexdigest()[:16]
    return f"{call_prefix(call_id)}{tag}/"


def _suffix(key: str) -> str:
    """The key's extension when it is a plain one (``.wav``), else ``.bin``: a key may end in
    anything, up to 1,000 bytes of it, and the container is sniffed from the bytes anyway."""
    suffix = PurePosixPath(key).suffix.lower()
    return suffix if _SAFE_SUFFIX.fullmatch(suffix) else ".bin"


def ingest_object(
    storage: Storage, key: str, *, now: datetime, options: IngestOptions
) -> IngestResult:
    """Validate, store and catalogue the incoming object ``key`` (and its sidecar).

    Every outcome except WAITING removes the object from the incoming bucket: into the
    recordings bucket, into quarantine with its reason, or deleted (already catalogued, or
    already past its retention deadline). Never raises for bad input; storage outages do raise
    (:class:`~storage.objects.ObjectStoreError`), leaving the object in place for the next run.
    """
    if {".", ".."} & set(key.split("/")):
        # AWS S3 keys are opaque, but minio-py refuses to address a key with such a segment (and
        # MinIO and SeaweedFS never store one): it can be neither read nor quarantined, so it is
        # left for a person, loudly, instead of failing the whole batch.
        reason = f"the key {quoted(key)} has a '.' or '..' segment, which callrec cannot address"
        log.error("cannot ingest: %s; rename the object", reason)
        return IngestResult(key, Outcome.RETRY, reason=reason)
    try:
        info = storage.objects.stat(storage.settings.bucket_incoming, key)
    except ObjectNotFoundError:
        return IngestResult(key, Outcome.GONE)
    raw_sidecar = _read_sidecar(storage, key)
    try:
        meta = _metadata(key, info, raw_sidecar, options)
        _check_dates(meta, now=now, options=options)
    except _Expired as expired:
        return _expire(storage, key, expired.meta, now=now)
    except MetadataError as exc:
        told_nothing = raw_sidecar is None and not _pbx_metadata(info)
        if told_nothing and _younger_than(info, options.metadata_grace_s, now):
            return IngestResult(key, Outcome.WAITING, reason=str(exc))
        started_at = _started_at_hint(key, info, raw_sidecar, options, now=now)
        return _reject(storage, key, exc.message, started_at=started_at, sha256=None, now=now)
    if info.size > options.max_recording_bytes:
        reason = (
            f"too_large: {info.size:,} bytes, more than the {options.max_recording_bytes:,} a "
            "recording may be (CALLREC_INGEST_MAX_RECORDING_MB)"
        )
        return _reject(storage, key, reason, started_at=meta.started_at, sha256=None, now=now)
    return _store_and_catalogue(storage, key, meta, now=now, options=options)


def ingest_or_retry(
    storage: Storage, key: str, *, now: datetime, options: IngestOptions
) -> IngestResult:
    """:func:`ingest_object`, with a storage failure reported as RETRY instead of raised, so
    one failing recording does not stop a batch; the recording stays where it is."""
    try:
        return ingest_object(storage, key, now=now, options=options)
    except CallrecError as exc:
        log.error("ingest of %s failed, will retry: %s", one_line(key), exc)
        return IngestResult(key, Outcome.RETRY, reason=str(exc))


def _store_and_catalogue(
    storage: Storage, key: str, meta: CallMetadata, *, now: datetime, options: IngestOptions
) -> IngestResult:
    """Steps 2-4 for a recording whose metadata is valid: bytes, audio, rows, clean-up."""
    with scratch_dir(storage.settings, "ingest") as tmp:
        local = tmp / ("audio" + _suffix(key))
        storage.objects.download(storage.settings.bucket_incoming, key, local)
        sha256, _ = sha256_of(local)
        folder = _delivery_prefix(meta.call_id, sha256, key)
        existing = _existing(storage, meta.call_id)
        if existing is not None:
            return _settle_duplicate(storage, key, existing, sha256, folder, now=now)
        try:
            audio, rendition = probe_and_render(local, tmp, max_duration_s=options.max_duration_s)
        except AudioError as exc:
            return _reject(
                storage, key, exc.message, started_at=meta.started_at, sha256=sha256, now=now
            )
        stored_key = _store_original(storage, meta, key, local, folder)
        rendition_key = _store_rendition(storage, meta, rendition, folder)
    if not _catalogue(storage, _call_row(meta, audio, sha256, stored_key, rendition_key)):
        # Another ingester catalogued the same call id between our check and our insert.
        existing = _existing(storage, meta.call_id)
        assert existing is not None
        return _settle_duplicate(storage, key, existing, sha256, folder, now=now)
    _remove_incoming(storage, key)
    log.info("ingested %s as call %s (%.1f s)", one_line(key), meta.call_id, audio.duration_s)
    return IngestResult(key, Outcome.INGESTED, call_id=meta.call_id)


class _Expired(Exception):
    def __init__(self, meta: CallMetadata) -> None:
        self.meta = meta


def _metadata(
    key: str, info: ObjectInfo, raw_sidecar: bytes | None, options: IngestOptions
) -> CallMetadata:
    """Merge the three sources, file name lowest, sidecar highest."""
    sources: list[dict[str, Any]] = []
    if options.filename_pattern is not None:
        sources.append(options.filename_pattern.parse(PurePosixPath(key).name))
    sources.append(_pbx_metadata(info))
    if raw_sidecar is not None:
        sources.append(parse_sidecar(raw_sidecar, name=key + SIDECAR_SUFFIX))
    return parse_metadata(*sources, options=options.metadata)


def _started_at_hint(
    key: str, info: ObjectInfo, raw_sidecar: bytes | None, options: IngestOptions, *, now: datetime
) -> datetime | None:
    """Whatever start time the usable sources give, for a rejected recording's deadline; None
    (count from its arrival) for a start in the future, which would keep it for centuries."""
    sources: list[dict[str, Any]] = [_pbx_metadata(info)]
    for source in (
        lambda: (
            options.filename_pattern.parse(PurePosixPath(key).name)
            if options.filename_pattern
            else {}
        ),
        lambda: (
            parse_sidecar(raw_sidecar, name=key + SIDECAR_SUFFIX) if raw_sidecar is not None else {}
        ),
    ):
        try:
            sources.append(source())
        except MetadataError:
            continue
    started_at = started_at_of(*sources, options=options.metadata)
    return started_at if started_at is not None and started_at <= now else None


def _pbx_metadata(info: ObjectInfo) -> dict[str, str]:
    """S3 user metadata minus what callrec itself adds when it uploads (the checksum)."""
    return {k: v for k, v in info.metadata.items() if k != SHA256_META}


def _check_dates(meta: CallMetadata, *, now: datetime, options: IngestOptions) -> None:
    if meta.started_at > now + timedelta(seconds=options.future_tolerance_s):
        raise MetadataError(
            f"metadata started_at {meta.started_at.isoformat()} is in the future",
            field="started_at",
        )
    if is_expired(meta.started_at, options.retention_days, now):
        raise _Expired(meta)


def _read_sidecar(storage: Storage, key: str) -> bytes | None:
    """The sidecar's bytes, at most one more than a sidecar may hold (enough to refuse it)."""
    try:
        return storage.objects.read(
            storage.settings.bucket_incoming, key + SIDECAR_SUFFIX, length=MAX_SIDECAR_BYTES + 1
        )
    except ObjectNotFoundError:
        return None


def _younger_than(info: ObjectInfo, seconds: float, now: datetime) -> bool:
    return info.last_modified is not None and (now - info.last_modified).total_seconds() < seconds


def _existing(storage: Storage, call_id: str) -> Call | None:
    with storage.catalogue.session() as session:
        return session.get(Call, call_id)


def _settle_duplicate(
    storage: Storage, key: str, existing: Call, sha256: str, folder: str, *, now: datetime
) -> IngestResult:
    """The call id is catalogued already: by this delivery (a re-run), by the same bytes
    delivered again (a no-op), or by other bytes (a conflict, quarantined)."""
    _remove_delivery(storage, existing, folder)
    if existing.sha256 == sha256:
        _remove_incoming(storage, key)
        return IngestResult(key, Outcome.DUPLICATE, call_id=existing.id)
    reason = (
        f"conflict: call {existing.id} is already catalogued with other audio "
        f"(sha256 {existing.sha256[:12]}…, this file {sha256[:12]}…)"
    )
    return _reject(storage, key, reason, started_at=existing.started_at, sha256=sha256, now=now)


def _remove_delivery(storage: Storage, call: Call, folder: str) -> None:
    """Delete what this delivery stored before another one became the call (it lost the race
    to the row, or died before it got there), so the call's prefix keeps only the call's own
    objects. Runs before the recording leaves incoming, so a crash here is finished by the
    re-run. Never the call's own folder: a re-run of the delivery that became the call has it."""
    if not call.original_key.startswith(folder):
        storage.objects.delete_prefix(storage.settings.bucket_recordings, folder)


def _store_original(
    storage: Storage, meta: CallMetadata, key: str, local: Path, folder: str
) -> str:
    """Upload the original into this delivery's folder."""
    target = f"{folder}original{_suffix(key)}"
    _put_once(storage, meta, target, local, content_type=_content_type(key))
    return target


def _store_rendition(
    storage: Storage, meta: CallMetadata, rendition: Rendition | None, folder: str
) -> str | None:
    """Upload the playback rendition; None when the original plays in a browser as it is."""
    if rendition is None:
        return None
    target = f"{folder}rendition{rendition.path.suffix}"
    _put_once(storage, meta, target, rendition.path, content_type=rendition.content_type)
    return target


def _put_once(
    storage: Storage, meta: CallMetadata, target: str, source: Path, *, content_type: str
) -> None:
    """Upload unless an earlier, interrupted run of this delivery did: the key is the
    delivery's own, so what is there holds these bytes, and a second upload would leave the
    versioned bucket two versions of it."""
    bucket = storage.settings.bucket_recordings
    if not storage.objects.exists(bucket, target):
        storage.objects.put(
            bucket,
            target,
            source,
            metadata={"call_id": meta.call_id},
            content_type=content_type,
            tags=STANDARD_TAGS,
        )


def _catalogue(storage: Storage, call: Call) -> bool:
    """Write the call and its transcription job in one transaction; False if the id exists."""
    try:
        with storage.catalogue.session() as session:
            session.add(call)
            session.add(Job(call_id=call.id))
    except IntegrityError:
        return False
    return True


def _call_row(
    meta: CallMetadata, audio: AudioInfo, sha256: str, stored: str, rendition: str | None
) -> Call:
    layout = AgentChannel(meta.agent_channel) if audio.channels == 2 else AgentChannel.NONE
    return Call(
        id=meta.call_id,
        **meta.model_dump(exclude={"call_id", "agent_channel"}),
        agent_channel=layout,
        duration_s=audio.duration_s,
        channels=audio.channels,
        sample_rate=audio.sample_rate,
        codec=audio.codec,
        sha256=sha256,
        original_key=stored,
        rendition_key=rendition,
    )


def _expire(storage: Storage, key: str, meta: CallMetadata, *, now: datetime) -> IngestResult:
    """A recording already past its deadline may not be kept even for a moment: delete it and
    write a tombstone so the deletion can be shown."""
    with storage.catalogue.session() as session:
        if session.get(Tombstone, meta.call_id) is None:
            session.add(
                Tombstone(
                    call_id=meta.call_id,
                    call_date=meta.started_at.date(),
                    deleted_at=now,
                    reason="arrived past retention deadline",
                )
            )
    _remove_incoming(storage, key)
    return IngestResult(
        key, Outcome.EXPIRED, call_id=meta.call_id, reason="arrived past its retention deadline"
    )


def _reject(
    storage: Storage,
    key: str,
    reason: str,
    *,
    started_at: datetime | None,
    sha256: str | None,
    now: datetime,
) -> IngestResult:
    quarantine(storage, key, reason, started_at=started_at, sha256=sha256, now=now)
    log.warning("quarantined %s: %s", one_line(key), reason)
    return IngestResult(key, Outcome.QUARANTINED, reason=reason)


def _remove_incoming(storage: Storage, key: str) -> None:
    storage.objects.delete_many(storage.settings.bucket_incoming, [key, key + SIDECAR_SUFFIX])


_CONTENT_TYPES = {
    ".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".opus": "audio/ogg",
    ".flac": "audio/flac", ".gsm": "audio/x-gsm",
}  # fmt: skip


def _content_type(key: str) -> str:
    return _CONTENT_TYPES.get(_suffix(key), "application/octet-stream")
