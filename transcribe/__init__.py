"""Transcription: calls become speaker-labelled, timed Dutch text with redacted personal data
and coaching metrics, from leased worker jobs, offline."""

from __future__ import annotations

import threading

from settings import Settings
from storage.connect import Storage
from transcribe.engine import DecodeOptions, Transcriber, Transcript, TranscriptSegment
from transcribe.jobs import LeasePolicy
from transcribe.model import LoadedModel, ModelError, load_model
from transcribe.redact import PLACEHOLDER_KINDS, Finding, redact, redact_call, redact_turns
from transcribe.worker import Worker, WorkerReport

__all__ = [
    "PLACEHOLDER_KINDS",
    "DecodeOptions",
    "Finding",
    "LeasePolicy",
    "LoadedModel",
    "ModelError",
    "Transcriber",
    "Transcript",
    "TranscriptSegment",
    "Worker",
    "WorkerReport",
    "build_transcriber",
    "build_worker",
    "load_model",
    "redact",
    "redact_call",
    "redact_turns",
    "start_worker",
]


def build_transcriber(settings: Settings) -> Transcriber:
    """Load the configured model once, with the configured decoding options."""
    loaded = load_model(
        settings.model,
        data_dir=settings.data_dir,
        device=settings.device,
        workers=settings.worker_concurrency,
    )
    options = DecodeOptions(
        beam_size=settings.transcribe_beam_size,
        batched=settings.transcribe_batched,
        batch_size=settings.transcribe_batch_size,
    )
    return Transcriber(loaded, options)


def build_worker(storage: Storage) -> Worker:
    settings = storage.settings
    policy = LeasePolicy(lease_s=settings.worker_lease_s, max_attempts=settings.worker_max_attempts)
    return Worker(storage, build_transcriber(settings), policy=policy)


def start_worker(
    storage: Storage, *, stop: threading.Event, until_idle: bool = False
) -> WorkerReport:
    """Run a worker with the settings' concurrency until ``stop`` (or the queue is empty)."""
    worker = build_worker(storage)
    return worker.run(
        concurrency=storage.settings.worker_concurrency, until_idle=until_idle, stop=stop
    )
