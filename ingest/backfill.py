"""``callrec ingest PATH...``: local recordings through exactly the path the bucket takes.

A backfill (an archive from an old recorder, a folder of test calls) is uploaded to the incoming
bucket, each file with a sidecar built from its metadata, and then ingested object by object by
:func:`ingest.pipeline.ingest_object` — so validation, quarantine and idempotency are the same
as for recordings the PBX drops. Metadata for a file comes from, in this order: a manifest row
(``--metadata FILE``, CSV with a header or JSON), a sidecar next to it (``NAME.wav.json`` or
``NAME.json``, read exactly like an S3 sidecar), or the configured file-name pattern.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from errors import CallrecError
from ingest.metadata import SIDECAR_SUFFIX
from ingest.pipeline import (
    IngestOptions,
    IngestResult,
    ingest_or_retry,
)
from storage.connect import Storage
from storage.objects import sha256_of
from storage.scratch import remove_dead_scratch

AUDIO_SUFFIXES = frozenset({".wav", ".mp3", ".ogg", ".opus", ".flac", ".gsm"})
_FILE_COLUMNS = ("file", "filename", "path")


class BackfillError(CallrecError):
    """The paths or the manifest given to ``callrec ingest`` cannot be used."""


@dataclass(frozen=True)
class LocalRecording:
    """A file to ingest and the metadata found for it (None: the file-name pattern decides)."""

    path: Path
    metadata: dict[str, Any] | None


def find_recordings(paths: Iterable[Path], *, manifest: Path | None = None) -> list[LocalRecording]:
    """Expand files and folders (recursively, audio suffixes only) and attach their metadata.

    Raises:
        BackfillError: A path does not exist, the manifest is unreadable, or it names a file
            that is not among the paths.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
            )
        elif path.is_file():
            files.append(path)
        else:
            raise BackfillError(f"no such file or folder: {path}", hint="check the path")
    rows = _read_manifest(manifest) if manifest else {}
    unknown = set(rows) - {f.name for f in files} - {str(f) for f in files}
    if unknown:
        raise BackfillError(
            f"the manifest {manifest} names {len(unknown)} file(s) not given, "
            f"e.g. {sorted(unknown)[0]}",
            hint="pass the folder that holds them",
        )
    return [LocalRecording(f, rows.get(str(f)) or rows.get(f.name) or _sidecar(f)) for f in files]


def upload_and_ingest(
    storage: Storage,
    recordings: list[LocalRecording],
    *,
    now: datetime,
    options: IngestOptions,
    workers: int = 4,
    on_result: Callable[[IngestResult], None] | None = None,
) -> list[IngestResult]:
    """Upload each recording (sidecar first) to incoming and ingest it straight away.

    Nothing more will arrive for these files, so a file without metadata is quarantined at
    once instead of waiting for a sidecar.
    """
    remove_dead_scratch(storage.settings)
    options = dataclasses.replace(options, metadata_grace_s=0)
    incoming = storage.settings.bucket_incoming

    def one(recording: LocalRecording) -> IngestResult:
        sidecar = None
        if recording.metadata is not None:
            sidecar = json.dumps(recording.metadata, ensure_ascii=False, default=str).encode()
        key = _incoming_key(recording.path, sidecar)
        if sidecar is not None:
            storage.objects.put(
                incoming, key + SIDECAR_SUFFIX, sidecar, content_type="application/json"
            )
        storage.objects.put(incoming, key, recording.path)
        result = ingest_or_retry(storage, key, now=now, options=options)
        if on_result is not None:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="backfill") as pool:
        return list(pool.map(one, recordings))


def _incoming_key(path: Path, sidecar: bytes | None) -> str:
    """Derived from the bytes and the metadata, so running the same backfill twice uploads to
    the same keys: duplicates settle as no-ops and a bad file is quarantined once, not twice."""
    digest = hashlib.sha256(sha256_of(path)[0].encode() + (sidecar or b""))
    return f"backfill/{digest.hexdigest()[:24]}/{path.name}"


def _sidecar(path: Path) -> dict[str, Any] | None:
    for candidate in (path.with_name(path.name + SIDECAR_SUFFIX), path.with_suffix(SIDECAR_SUFFIX)):
        if candidate.is_file():
            try:
                data = json.loads(candidate.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise BackfillError(
                    f"sidecar {candidate} is not valid JSON: {exc}", hint="fix it"
                ) from None
            if not isinstance(data, dict):
                raise BackfillError(f"sidecar {candidate} must hold a JSON object", hint="fix it")
            return data
    return None


def _read_manifest(path: Path) -> dict[str, dict[str, Any]]:
    """Rows keyed by the file they describe (a base name or the path as given)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BackfillError(
            f"cannot read the manifest {path}: {exc.strerror}", hint="check the path"
        ) from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BackfillError(
                f"manifest {path} is not valid JSON: {exc}", hint="fix it"
            ) from None
        if isinstance(data, dict):  # {"call.wav": {...metadata...}, ...}
            rows = [{**row, "file": name} for name, row in data.items() if isinstance(row, dict)]
        elif isinstance(data, list):  # [{"file": "call.wav", ...metadata...}, ...]
            rows = data
        else:
            raise BackfillError(f"manifest {path} must hold a JSON list or object", hint="fix it")
    else:
        rows = list(csv.DictReader(text.splitlines()))
    keyed: dict[str, dict[str, Any]] = {}
    for number, row in enumerate(rows, start=1):
        column = next((c for c in _FILE_COLUMNS if isinstance(row, dict) and row.get(c)), None)
        if column is None:
            raise BackfillError(
                f"manifest {path} row {number} names no file",
                hint=f"add a column {'/'.join(_FILE_COLUMNS)}",
            )
        keyed[str(row[column])] = {
            k: v for k, v in row.items() if k not in _FILE_COLUMNS and v not in ("", None)
        }
    return keyed
