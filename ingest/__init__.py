"""Ingest: recordings that land in the incoming bucket become catalogued calls — validated,
idempotent, and never lost (bad input goes to quarantine with its reason)."""

from ingest.audio import AudioError, AudioInfo, Rendition, probe_and_render
from ingest.backfill import BackfillError, LocalRecording, find_recordings, upload_and_ingest
from ingest.filename_pattern import FilenamePattern
from ingest.metadata import CallMetadata, MetadataError, MetadataOptions, parse_metadata
from ingest.pipeline import IngestOptions, IngestResult, Outcome, ingest_object, ingest_or_retry
from ingest.poller import PollReport, poll_incoming

__all__ = [
    "AudioError",
    "AudioInfo",
    "BackfillError",
    "CallMetadata",
    "FilenamePattern",
    "IngestOptions",
    "IngestResult",
    "LocalRecording",
    "MetadataError",
    "MetadataOptions",
    "Outcome",
    "PollReport",
    "Rendition",
    "find_recordings",
    "ingest_object",
    "ingest_or_retry",
    "parse_metadata",
    "poll_incoming",
    "probe_and_render",
    "upload_and_ingest",
]
