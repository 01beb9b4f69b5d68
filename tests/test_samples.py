"""The bundled sample calls are valid input and the demo loader ingests each dialogue."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from ingest.backfill import upload_and_ingest
from ingest.demo import SAMPLES_DIR, sample_recordings
from ingest.pipeline import IngestOptions, Outcome
from storage.connect import Storage
from storage.retention import days_left

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_every_sample_has_a_sidecar_with_a_reference_transcript():
    audio = sorted(SAMPLES_DIR.glob("*.wav"))
    assert len(audio) >= 8
    for path in audio:
        sidecar = json.loads(path.with_suffix(".json").read_text())
        assert sidecar["call_id"] and sidecar["started_at"]
        turns = sidecar["reference"]["turns"]
        starts = [turn["start_s"] for turn in turns]
        assert starts == sorted(starts), f"{path.name}: turns out of order"


def test_the_demo_ingests_every_dialogue_dated_within_the_retention_period(storage: Storage):
    recordings = sample_recordings(now=NOW)
    assert len(recordings) == 6  # the five dialogues and the up-mixed mono call
    results = upload_and_ingest(
        storage, recordings, now=NOW, options=IngestOptions.from_settings(storage)
    )
    assert [r.outcome for r in results] == [Outcome.INGESTED] * len(recordings), results
    for recording in recordings:
        started = datetime.fromisoformat(recording.metadata["started_at"])  # type: ignore[index]
        assert 0 < (NOW - started).days < 7
        assert days_left(started, storage.settings.retention_days, NOW) > 170
