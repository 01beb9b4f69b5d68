"""The bundled sample calls, loaded once into a fresh embedded installation by ``callrec run``.

The samples are short Dutch insurer/customer dialogues rendered by ``ingest/samples/render.py``.
Their sidecars carry a reference transcript for the tests; only the call metadata is ingested.
Their start times are moved to the last few days at load, so the demo's calls are not already
past the retention deadline the day it is run.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ingest.backfill import LocalRecording, upload_and_ingest
from ingest.pipeline import IngestOptions, Outcome
from storage.catalogue import Checkpoint
from storage.connect import Storage

SAMPLES_DIR = Path(__file__).with_name("samples")
_MARKER = "demo.samples_loaded"
_REFERENCE_KEYS = {"reference", "pii", "key_phrases"}


def sample_recordings(*, now: datetime) -> list[LocalRecording]:
    """Every bundled sample dialogue with its metadata, the i-th one started i+1 days before
    ``now`` (at its original time of day)."""
    recordings: list[LocalRecording] = []
    for audio in sorted(SAMPLES_DIR.glob("*.wav")):
        raw: dict[str, Any] = json.loads(audio.with_suffix(".json").read_text(encoding="utf-8"))
        if not raw.get("reference", {}).get("turns"):
            continue  # the silence and hold-music files are for transcription tests, not a demo
        metadata = {k: v for k, v in raw.items() if k not in _REFERENCE_KEYS}
        original = datetime.fromisoformat(metadata["started_at"])
        day = (now - timedelta(days=len(recordings) + 1)).astimezone(original.tzinfo)
        metadata["started_at"] = original.replace(
            year=day.year, month=day.month, day=day.day
        ).isoformat()
        recordings.append(LocalRecording(audio, metadata))
    return recordings


def load_sample_calls_once(storage: Storage, *, now: datetime) -> list[str]:
    """Ingest the samples into an embedded installation that has never had them.

    Only with the embedded S3 server: an installation pointed at a real S3 is production, where
    demo calls have no place. Returns the call ids ingested (empty when nothing was done).
    """
    if not storage.settings.embedded_s3:
        return []
    with storage.catalogue.session() as session:
        if session.get(Checkpoint, _MARKER) is not None:
            return []
    results = upload_and_ingest(
        storage, sample_recordings(now=now), now=now, options=IngestOptions.from_settings(storage)
    )
    with storage.catalogue.session() as session:
        session.add(Checkpoint(name=_MARKER, value=now.isoformat(), updated_at=now))
    return [r.call_id for r in results if r.outcome == Outcome.INGESTED and r.call_id]
