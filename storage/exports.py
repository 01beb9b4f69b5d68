"""Exports: calls handed out as one zip behind a link that expires, and their expiry.

An export copies personal data out of the recordings bucket, so it is held to stricter rules
than the calls themselves: it lives ``CALLREC_EXPORT_TTL_S`` (at most 7 days, the longest an S3
link can be valid) and goes with the first of its calls that is erased (``storage.purge``). The
zip is built in a scratch folder, which is removed when the work ends, also on error; the
catalogue rows (the export, the calls it holds, one audit event per call) are written in one
transaction only after the upload succeeded (if they fail, the upload is deleted again; only a
process killed in between leaves an unrecorded zip). :func:`expire_exports` deletes the objects
before the rows, so a crash in between leaves a row the next run finishes.
"""

from __future__ import annotations

import json
import shutil
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlmodel import col, select

from storage.audit import Action, record
from storage.calls import CallDetail, call_detail
from storage.catalogue import Call, Export, ExportCall
from storage.connect import Storage
from storage.purge import export_prefix
from storage.retention import deadline
from storage.scratch import scratch_dir

# Columns of a call that describe callrec's own bookkeeping, not the call.
INTERNAL_FIELDS = frozenset({"original_key", "rendition_key", "state"})
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ExportResult:
    """What the operator hands on: the link, and when it (and the export) stops existing."""

    export_id: str
    object_key: str
    calls: int
    size_bytes: int
    expires_at: datetime
    url: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "export_id": self.export_id,
            "object_key": self.object_key,
            "calls": self.calls,
            "size_bytes": self.size_bytes,
            "expires_at": self.expires_at.isoformat(),
            "url": self.url,
        }


def create_export(
    storage: Storage,
    calls: Sequence[Call],
    *,
    kind: str,
    subject: str,
    reason: str,
    actor: str,
    now: datetime,
) -> ExportResult:
    """Zip ``calls`` (audio, metadata, transcript each), upload it and record who took it.

    Args:
        calls: In the order the zip lists them.
        kind: ``customer`` (an access request) or ``call``; names the zip.
        subject: What the export holds, in words, for its README (e.g. "every call of ...").
        reason: Why it was made (a ticket number); kept on the export and in the audit trail.
        actor: Who made it, for the audit trail.

    Raises:
        ObjectStoreError: S3 failed; nothing is recorded and no upload is left behind.
        CallNotFoundError: A call was erased while the export was being built.
    """
    settings = storage.settings
    export_id = uuid.uuid4().hex
    key = f"{export_prefix(export_id)}{kind}-export.zip"
    expires_at = now + timedelta(seconds=settings.export_ttl_s)
    details = [call_detail(storage, call.id, now=now) for call in calls]
    with scratch_dir(settings, "export") as folder:
        archive = folder / f"{kind}-export.zip"
        _write_zip(
            storage,
            archive,
            details,
            head={
                "export_id": export_id,
                "kind": kind,
                "subject": subject,
                "created_at": now.isoformat(),
                "expires_at": expires_at.isoformat(),
            },
        )
        stored = storage.objects.put(
            settings.bucket_exports, key, archive, content_type="application/zip"
        )
    try:
        with storage.catalogue.session() as session:
            session.add(
                Export(
                    id=export_id,
                    kind=kind,
                    object_key=key,
                    reason=reason,
                    created_by=actor,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            session.flush()  # the export row before the rows that refer to it
            for call in calls:
                session.add(ExportCall(export_id=export_id, call_id=call.id))
                record(
                    session,
                    actor=actor,
                    action=Action.EXPORT,
                    at=now,
                    call_id=call.id,
                    export_id=export_id,
                    reason=reason,
                )
    except BaseException:
        # Unrecorded bytes would escape both the expiry and the purge: take them back.
        storage.objects.delete_prefix(settings.bucket_exports, export_prefix(export_id))
        raise
    url = storage.objects.presigned_get(
        settings.bucket_exports, key, expires_s=settings.export_ttl_s
    )
    return ExportResult(
        export_id=export_id,
        object_key=key,
        calls=len(calls),
        size_bytes=stored.size,
        expires_at=expires_at,
        url=url,
    )


def expire_exports(storage: Storage, *, now: datetime, actor: str = "scheduler") -> int:
    """Delete every export whose ``expires_at`` has come: all object versions under its prefix,
    then its rows (the calls it held by cascade) with an audit event. Returns how many."""
    bucket = storage.settings.bucket_exports
    with storage.catalogue.session() as session:
        due = list(session.exec(select(Export.id).where(col(Export.expires_at) <= now)))
    expired = 0
    for export_id in due:
        storage.objects.delete_prefix(bucket, export_prefix(export_id))
        with storage.catalogue.session() as session:
            deleted = session.execute(sa.delete(Export).where(col(Export.id) == export_id))
            if deleted.rowcount:  # type: ignore[attr-defined]  # not taken by a concurrent run
                record(
                    session,
                    actor=actor,
                    action=Action.EXPORT_EXPIRED,
                    at=now,
                    export_id=export_id,
                )
                expired += 1
    return expired


def _write_zip(
    storage: Storage, path: Path, details: Sequence[CallDetail], *, head: dict[str, Any]
) -> None:
    """README and manifest first (what a person opening the zip sees), then a folder per call."""
    settings = storage.settings
    zone = settings.zone
    folders = [_folder(number, detail, zone) for number, detail in enumerate(details, 1)]
    manifest = {
        **head,
        "retention_days": settings.retention_days,
        "calls": [
            {
                "call_id": detail.call.id,
                "started_at": detail.call.started_at.isoformat(),
                "erased_after": deadline(
                    detail.call.started_at, settings.retention_days
                ).isoformat(),
                "audio_sha256": detail.call.sha256,
                "folder": folder,
                "files": _files(detail),
            }
            for folder, detail in zip(folders, details, strict=True)
        ],
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", _readme(manifest, zone))
        archive.writestr("manifest.json", _json(manifest))
        for folder, detail in zip(folders, details, strict=True):
            _write_call(storage, archive, folder, detail)


def _folder(number: int, detail: CallDetail, zone: ZoneInfo) -> str:
    """Numbered oldest first; ``:`` (allowed in call ids) is not allowed in Windows file names."""
    day = detail.call.started_at.astimezone(zone)
    return f"{number:03d}_{day:%Y-%m-%d}_{detail.call.id.replace(':', '_')}"


def _audio_name(call: Call) -> str:
    return "audio" + PurePosixPath(call.original_key).suffix


def _has_transcript(detail: CallDetail) -> bool:
    return detail.transcript is not None or bool(detail.segments)


def _files(detail: CallDetail) -> list[str]:
    transcript = ["transcript.json", "transcript.txt"] if _has_transcript(detail) else []
    return [_audio_name(detail.call), "metadata.json", *transcript]


def _write_call(
    storage: Storage, archive: zipfile.ZipFile, folder: str, detail: CallDetail
) -> None:
    call = detail.call
    shown = detail.to_dict(redacted=False)
    audio = zipfile.ZipInfo(
        f"{folder}/{_audio_name(call)}",
        date_time=call.started_at.astimezone(storage.settings.zone).timetuple()[:6],
    )
    audio.compress_type = zipfile.ZIP_STORED  # recordings hardly compress; don't spend CPU
    with (
        storage.objects.open(storage.settings.bucket_recordings, call.original_key) as source,
        archive.open(audio, "w") as target,
    ):
        shutil.copyfileobj(source, target, _CHUNK)
    metadata = {k: v for k, v in shown["call"].items() if k not in INTERNAL_FIELDS}
    archive.writestr(f"{folder}/metadata.json", _json(metadata))
    if not _has_transcript(detail):
        return
    transcript = shown["transcript"] or {}
    segments = [
        {k: s[k] for k in ("speaker", "start_s", "end_s", "text")} for s in shown["segments"]
    ]
    archive.writestr(
        f"{folder}/transcript.json",
        _json(
            {
                "call_id": call.id,
                "model": transcript.get("model"),
                "language": transcript.get("language"),
                "text": " ".join(s["text"] for s in segments),
                "segments": segments,
            }
        ),
    )
    archive.writestr(f"{folder}/transcript.txt", _transcript_text(detail, storage.settings.zone))


def _transcript_text(detail: CallDetail, zone: ZoneInfo) -> str:
    started = detail.call.started_at.astimezone(zone)
    model = detail.transcript.model if detail.transcript else "speech recognition"
    lines = [
        f"Call {detail.call.id}, {started:%Y-%m-%d %H:%M %Z}, {detail.call.duration_s:.0f} s",
        f"Transcribed automatically ({model}); it can contain mistakes.",
        "",
    ]
    lines += [
        f"[{_clock(s.start_s)} - {_clock(s.end_s)}] {s.speaker}: {s.text}" for s in detail.segments
    ]
    return "\n".join(lines) + "\n"


def _clock(seconds: float) -> str:
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:04.1f}"


def _readme(manifest: dict[str, Any], zone: ZoneInfo) -> str:
    def local(iso: str) -> str:
        return f"{datetime.fromisoformat(iso).astimezone(zone):%Y-%m-%d %H:%M %Z}"

    return f"""callrec export {manifest["export_id"]}

This archive holds {manifest["subject"]}: {len(manifest["calls"])} recorded call(s), oldest first.
It was made on {local(manifest["created_at"])} and is deleted on {local(manifest["expires_at"])};
the download link stops working then.

Each call has its own folder, named after its place in this export, its date and its id:
  audio.*          the recording as it was received
  metadata.json    what was recorded about the call: time, duration, numbers, agent, queue
  transcript.json  the automatic transcript: every stretch of speech with its speaker,
                   start and end (seconds from the start of the call) and text
  transcript.txt   the same transcript, readable
A call without transcript files has not been transcribed.
manifest.json lists every call and file; audio_sha256 is the checksum of each recording.

Calls are deleted {manifest["retention_days"]} days after they took place, unless a hold keeps
one for a complaint or dispute.
"""


def _json(payload: dict[str, Any]) -> str:
    return json.dumps(payload, indent=2, ensure_ascii=False, default=str) + "\n"
