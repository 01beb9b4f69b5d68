"""Store a transcript: segments with redacted text, words, the metrics and how it was made.

The previous transcript of the call (if any), its segments and their search index entries are
replaced in the same transaction that marks the job done, so a reader sees the old transcript or
the new one, never half of each, and a worker that lost its lease stores nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import col

from storage.catalogue import Call, CallState, Catalogue, Segment, Speaker
from storage.catalogue import Transcript as TranscriptRow
from storage.search.index import index_call
from transcribe.engine import Transcript
from transcribe.jobs import ClaimedJob, complete
from transcribe.redact import redact_call


def redacted_texts(transcript: Transcript) -> list[str]:
    """One redacted text per segment. The whole call is read at once: a number read out in
    pieces continues across one speaker's segments (the agent's "ja" falls in between), and the
    agent's question ("Mag ik uw polisnummer?") types the number in the customer's answer."""
    return redact_call([(segment.speaker, segment.text) for segment in transcript.segments])


def save_transcript(
    catalogue: Catalogue,
    job: ClaimedJob,
    transcript: Transcript,
    metrics: dict[str, Any],
    *,
    owner: str,
    now: datetime,
) -> None:
    """Replace the call's transcript and mark the job done, atomically.

    Raises:
        LeaseLostError: The job was taken over; nothing was stored.
    """
    redacted = redacted_texts(transcript)
    with catalogue.session() as session:
        complete(session, job, owner=owner, now=now)
        session.execute(sa.delete(Segment).where(col(Segment.call_id) == job.call_id))
        session.execute(sa.delete(TranscriptRow).where(col(TranscriptRow.call_id) == job.call_id))
        session.add(
            TranscriptRow(
                call_id=job.call_id,
                model=transcript.model,
                options=transcript.options,
                layout=transcript.layout,
                language=transcript.language,
                expected_language=transcript.expected_language,
                language_mismatch=transcript.language_mismatch,
                language_probability=transcript.language_probability,
                metrics=metrics,
                created_at=now,
            )
        )
        for segment, redacted_text in zip(transcript.segments, redacted, strict=True):
            session.add(
                Segment(
                    call_id=job.call_id,
                    speaker=Speaker(segment.speaker),
                    start_s=segment.start_s,
                    end_s=segment.end_s,
                    text=segment.text,
                    redacted_text=redacted_text,
                    confidence=segment.confidence,
                    words=[asdict(word) for word in segment.words],
                    model=transcript.model,
                )
            )
        session.flush()  # the segments' ids, which the index entries are keyed on
        index_call(session.connection(), job.call_id)
        session.execute(
            sa.update(Call).where(col(Call.id) == job.call_id).values(state=CallState.TRANSCRIBED)
        )
