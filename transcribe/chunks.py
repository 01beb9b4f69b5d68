"""Speech-only chunks of several channels, decoded as one batch, and the way back to call time.

Each party's speech (found once by VAD, the same stretches that give the call metrics) is cut
out, padded, and packed into chunks of at most 25 s (inside Whisper's 30 s window), dropping the
silence in between. The chunks of every party are then laid end to end in one array and decoded
together by faster-whisper's batched pipeline (``clip_timestamps``), so the two channels of a
call share batches instead of taking turns. A decoded word's time is mapped back: from the
joined array to its chunk, from the chunk to the party's speech-only timeline, then to the call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from faster_whisper.vad import SpeechTimestampsMap, collect_chunks

SAMPLE_RATE = 16_000
# Chunks stay well under Whisper's 30 s window: a chunk that fills it ends decoding early (the
# model emits end-of-text with speech left), measured on the sample calls.
WINDOW_S = 25.0


@dataclass(frozen=True)
class Piece:
    """One chunk of one party's speech, and where it sits in the joined array."""

    speaker: str
    audio: np.ndarray
    speech_offset_s: float  # start of this chunk on the party's speech-only timeline
    joined_start_s: float  # start of this chunk in the joined array
    timeline: SpeechTimestampsMap  # the party's speech-only time -> call time

    @property
    def joined_end_s(self) -> float:
        return self.joined_start_s + len(self.audio) / SAMPLE_RATE

    def call_time(self, joined_time_s: float, *, anchor_s: float) -> float:
        """Call time of a time in the joined array; ``anchor_s`` (also joined time, e.g. the
        middle of the word) picks the speech stretch, so a word never straddles a cut."""
        local = self.speech_offset_s - self.joined_start_s
        stretch = self.timeline.get_chunk_index(anchor_s + local)
        return float(self.timeline.get_original_time(joined_time_s + local, stretch))


def padded_stretches(
    speech: list[tuple[float, float]], duration_s: float, pad_s: float
) -> list[dict[str, int]]:
    """VAD stretches widened by ``pad_s`` (Whisper needs the word edges VAD clips), merged where
    they then touch, split at the chunk length, as sample offsets."""
    merged: list[list[float]] = []
    for start, end in speech:
        start, end = max(0.0, start - pad_s), min(duration_s, end + pad_s)
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    stretches = []
    for start, end in merged:
        while end - start > WINDOW_S:
            stretches.append(
                {
                    "start": round(start * SAMPLE_RATE),
                    "end": round((start + WINDOW_S) * SAMPLE_RATE),
                }
            )
            start += WINDOW_S
        stretches.append({"start": round(start * SAMPLE_RATE), "end": round(end * SAMPLE_RATE)})
    return [s for s in stretches if s["end"] > s["start"]]


def pieces_of(parties: list[tuple[str, np.ndarray, list[dict[str, int]]]]) -> list[Piece]:
    """Pack each party's stretches into window-sized chunks and lay them end to end."""
    pieces: list[Piece] = []
    joined_s = 0.0
    for speaker, audio, stretches in parties:
        if not stretches:
            continue
        timeline = SpeechTimestampsMap(stretches, SAMPLE_RATE)
        chunk_audio, metadata = collect_chunks(audio, stretches, SAMPLE_RATE, max_duration=WINDOW_S)
        for samples, meta in zip(chunk_audio, metadata, strict=True):
            if len(samples) == 0:
                continue
            pieces.append(Piece(speaker, samples, float(meta["offset"]), joined_s, timeline))
            joined_s += len(samples) / SAMPLE_RATE
    return pieces


def piece_at(pieces: list[Piece], joined_time_s: float) -> Piece:
    """The piece holding a joined-array time (the last one for a time at its very end)."""
    for piece in pieces:
        if joined_time_s < piece.joined_end_s:
            return piece
    return pieces[-1]
