"""One call's audio in, a speaker-labelled, timed transcript out.

Speakers come from channels, not guesswork: a stereo call carries one party per channel, so each
channel is transcribed on its own (the configured layout says which is the agent) and the turns
are merged by time. A stereo file whose channels are (nearly) identical is a mono call that the
PBX up-mixed: it is transcribed once, speaker unknown. Each channel's silence is skipped by
Silero VAD before decoding, which is both the main speed-up (a party is silent about half of a
call) and the main guard against invented text.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from faster_whisper import BatchedInferencePipeline

from transcribe.chunks import Piece, padded_stretches, piece_at, pieces_of
from transcribe.guards import GuardOptions, collapse_loops, keep_segment
from transcribe.metrics import MetricOptions, channels_identical, speech_intervals
from transcribe.model import LoadedModel

SAMPLE_RATE = 16_000
TURN_GAP_S = 1.0  # a pause this long on one channel ends a turn

Heard = list[tuple[str, float]]  # one piece's languages and their probabilities, likeliest first


@dataclass(frozen=True)
class DecodeOptions:
    """How the model is run; recorded with every transcript so it can be reproduced."""

    beam_size: int = 5
    temperature: tuple[float, ...] = (0.0, 0.2, 0.4, 0.6)  # fallbacks only when a guard trips
    condition_on_previous_text: bool = False  # one bad segment must not poison the next
    no_speech_threshold: float = 0.6
    log_prob_threshold: float = -1.0
    compression_ratio_threshold: float = 2.4  # highly repetitive output is re-decoded
    vad: MetricOptions = field(default_factory=MetricOptions)  # one VAD pass: metrics and chunks
    speech_pad_s: float = (
        0.3  # Whisper hears word edges VAD clips (0.4 s: WER 0.31/0.27, 0.3 s: 0.29/0.22)
    )
    batched: bool = True
    batch_size: int = 8
    language_check_below: float = 0.55  # mean confidence under which the language is checked
    language_flag_probability: float = 0.8  # a confident detection of another language flags
    guards: GuardOptions = field(default_factory=GuardOptions)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Word:
    start_s: float
    end_s: float
    text: str
    probability: float


@dataclass(frozen=True)
class TranscriptSegment:
    speaker: str  # agent, customer or unknown
    start_s: float
    end_s: float
    text: str
    confidence: float  # exp(average token log-probability), 0..1
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Transcript:
    """A call's transcript and what it was made with."""

    segments: tuple[TranscriptSegment, ...]
    layout: str  # stereo, mono or upmixed (a mono call copied to both channels)
    language: str  # the language the text is in
    expected_language: str
    language_mismatch: bool  # the model was confident the call is in another language
    language_probability: float
    model: str
    options: dict[str, Any]
    duration_s: float
    speech: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # VAD, per speaker


class Transcriber:
    """Transcribes calls with one loaded model; safe to share between threads."""

    def __init__(self, loaded: LoadedModel, options: DecodeOptions | None = None) -> None:
        self.loaded = loaded
        self.options = options or DecodeOptions()
        self._batched: _HearingPipeline | None = None
        if self.options.batched:
            self._batched = _HearingPipeline(model=loaded.model)

    def transcribe_file(
        self, path: Path, *, channels: int, agent_channel: str, language: str
    ) -> Transcript:
        """Decode ``path`` to 16 kHz and transcribe each party.

        Args:
            channels: 1 or 2, from the catalogue (decoding a mono file as stereo fails).
            agent_channel: ``left`` or ``right``: the agent's channel of a stereo call.
            language: The expected language (from the call's metadata or the setting).
        """
        from faster_whisper.audio import decode_audio

        if channels == 2:
            left, right = decode_audio(str(path), sampling_rate=SAMPLE_RATE, split_stereo=True)
            if channels_identical(left, right):
                parties = [("unknown", left)]
                layout = "upmixed"
            else:
                agent, customer = (left, right) if agent_channel == "left" else (right, left)
                parties = [("agent", agent), ("customer", customer)]
                layout = "stereo"
        else:
            parties = [("unknown", decode_audio(str(path), sampling_rate=SAMPLE_RATE))]
            layout = "mono"
        duration_s = len(parties[0][1]) / SAMPLE_RATE
        speech = {
            speaker: speech_intervals(audio, SAMPLE_RATE, self.options.vad)
            for speaker, audio in parties
        }
        stretches = [
            (
                speaker,
                audio,
                padded_stretches(speech[speaker], duration_s, self.options.speech_pad_s),
            )
            for speaker, audio in parties
        ]
        pieces = pieces_of(stretches)
        segments, heard = self._decode(pieces, language)
        spoken, probability = language, 1.0
        if _doubtful(segments, self.options):
            spoken, probability = self._language(pieces, heard, language)
            if spoken != language:
                segments, _ = self._decode(pieces, spoken)
        return Transcript(
            segments=tuple(segments),
            layout=layout,
            language=spoken,
            expected_language=language,
            language_mismatch=spoken != language,
            language_probability=probability,
            model=self.loaded.name,
            options={
                **self.options.to_dict(),
                "device": self.loaded.device,
                "compute_type": self.loaded.compute_type,
            },
            duration_s=duration_s,
            speech=speech,
        )

    def _decode(
        self, pieces: list[Piece], language: str
    ) -> tuple[list[TranscriptSegment], list[Heard] | None]:
        """Decode every party's speech chunks: together in batches, or one after another.

        Batched, it also returns the languages the model heard in each piece (from the encoder
        pass the decoding made anyway); plain decoding has no such pass to share: None."""
        if not pieces:
            return [], []
        options = self.options
        common = {
            "language": language,
            "beam_size": options.beam_size,
            "temperature": list(options.temperature),
            "condition_on_previous_text": options.condition_on_previous_text,
            "no_speech_threshold": options.no_speech_threshold,
            "log_prob_threshold": options.log_prob_threshold,
            "compression_ratio_threshold": options.compression_ratio_threshold,
            "word_timestamps": True,
            "vad_filter": False,  # the chunks are speech already
        }
        found: list[TranscriptSegment] = []
        heard: list[Heard] | None = None
        if self._batched is not None:
            joined = np.concatenate([piece.audio for piece in pieces])
            clips = [{"start": p.joined_start_s, "end": p.joined_end_s} for p in pieces]
            with self._batched.hearing() as heard:
                decoded, _ = self._batched.transcribe(
                    joined, clip_timestamps=clips, batch_size=options.batch_size,
                    without_timestamps=False, **common,
                )  # fmt: skip
                found.extend(_kept(decoded, pieces, 0.0, options.guards))
        else:
            for piece in pieces:
                decoded, _ = self.loaded.model.transcribe(piece.audio, **common)
                found.extend(_kept(decoded, [piece], piece.joined_start_s, options.guards))
        found.sort(key=lambda s: (s.start_s, s.end_s))
        return found, heard

    def _language(
        self, pieces: list[Piece], heard: list[Heard] | None, expected: str
    ) -> tuple[str, float]:
        """The expected language, unless the model is confident a party speaks another one —
        then that language, so the call is flagged rather than silently mis-transcribed.

        A party's language is what the model heard in its pieces, weighted by their length.
        Plain decoding shared no encoder pass, so there each piece is encoded once more here.
        An English-only model (``CALLREC_MODEL`` may be any Whisper) cannot tell languages."""
        if not self.loaded.model.model.is_multilingual:
            return expected, 1.0
        if heard is None:
            heard = [self.loaded.model.detect_language(piece.audio)[2] for piece in pieces]
        for speaker in dict.fromkeys(piece.speaker for piece in pieces):
            weights: dict[str, float] = {}
            for piece, languages in zip(pieces, heard, strict=True):
                if piece.speaker == speaker:
                    for code, probability in languages:
                        weights[code] = weights.get(code, 0.0) + probability * len(piece.audio)
            detected = max(weights, key=weights.__getitem__)
            probability = weights[detected] / sum(weights.values())
            if detected != expected and probability >= self.options.language_flag_probability:
                return detected, round(probability, 4)
        return expected, 1.0


class _HearingPipeline(BatchedInferencePipeline):
    """faster-whisper's batched pipeline that also asks, of every batch it encodes, which
    language each piece is in: one decoder step on the encoder output the decoding needs
    anyway, where a separate ``detect_language`` is a second encoder pass (a third of a short
    call's time).

    One Transcriber serves several worker threads, so what a decoding leaves behind is kept per
    thread: what was heard, and the pipeline's own ``last_speech_timestamp`` (the end of the
    previous batch's speech, which places the next batch's first word), which faster-whisper
    keeps on the instance, where two threads' calls would move each other's words."""

    def __init__(self, model: Any) -> None:
        self._listener = threading.local()
        super().__init__(model=model)

    @property
    def last_speech_timestamp(self) -> float:
        return float(getattr(self._listener, "last_speech_timestamp", 0.0))

    @last_speech_timestamp.setter
    def last_speech_timestamp(self, value: float) -> None:
        self._listener.last_speech_timestamp = value

    @contextmanager
    def hearing(self) -> Iterator[list[Heard]]:
        """Collect, in piece order, the languages heard while decoding inside the block.

        Also starts the thread's decoding afresh: faster-whisper resets its speech timestamp
        only when a decoding runs to its end, not when one raised part-way."""
        heard: list[Heard] = []
        self._listener.heard = heard
        self.last_speech_timestamp = 0.0
        try:
            yield heard
        finally:
            self._listener.heard = None

    def generate_segment_batched(self, features: Any, tokenizer: Any, options: Any) -> Any:
        encoder_output, outputs = super().generate_segment_batched(features, tokenizer, options)
        heard: list[Heard] | None = getattr(self._listener, "heard", None)
        if heard is not None and self.model.model.is_multilingual:
            for languages in self.model.model.detect_language(encoder_output):
                heard.append([(token[2:-2], probability) for token, probability in languages])
        return encoder_output, outputs


def _doubtful(segments: list[TranscriptSegment], options: DecodeOptions) -> bool:
    """Low confidence is what decoding in the wrong language looks like; only then is what the
    model heard trusted over the expected language (base often hears Dutch as Afrikaans)."""
    if not segments:
        return False
    mean = sum(s.confidence * (s.end_s - s.start_s) for s in segments) / max(
        1e-6, sum(s.end_s - s.start_s for s in segments)
    )
    return mean < options.language_check_below


def _kept(
    decoded: Iterable[Any], pieces: list[Piece], shift_s: float, guards: GuardOptions
) -> Iterable[TranscriptSegment]:
    """Decoded segments, split into turns at pauses, mapped to call time, minus what the
    guards reject. ``shift_s`` moves a piece decoded on its own into joined-array time."""
    for segment in decoded:
        confidence = round(math.exp(segment.avg_logprob), 4)
        words = segment.words or []
        if not words:
            continue
        piece = piece_at(pieces, shift_s + (words[0].start + words[0].end) / 2)
        mapped = []
        for word in words:
            middle = shift_s + (word.start + word.end) / 2
            start = piece.call_time(shift_s + word.start, anchor_s=middle)
            end = piece.call_time(shift_s + word.end, anchor_s=middle)
            mapped.append(
                Word(
                    start_s=round(start, 3),
                    end_s=round(end, 3),
                    text=word.word,
                    probability=round(word.probability, 4),
                )
            )
        for turn in _turns(mapped):
            text = collapse_loops(
                "".join(w.text for w in turn).strip(), max_ngram=guards.max_loop_ngram
            )
            if not keep_segment(
                text,
                no_speech_prob=segment.no_speech_prob,
                avg_logprob=segment.avg_logprob,
                options=guards,
            ):
                continue
            yield TranscriptSegment(
                speaker=piece.speaker,
                start_s=turn[0].start_s,
                end_s=turn[-1].end_s,
                text=text,
                confidence=confidence,
                words=tuple(Word(w.start_s, w.end_s, w.text.strip(), w.probability) for w in turn),
            )


def _turns(words: list[Word], max_gap_s: float = TURN_GAP_S) -> list[list[Word]]:
    """Split one decoded stretch at pauses: a chunk of up to 30 s of one party's speech can
    hold several turns, with the other party talking in between."""
    turns: list[list[Word]] = []
    for word in words:
        if turns and word.start_s - turns[-1][-1].end_s <= max_gap_s:
            turns[-1].append(word)
        else:
            turns.append([word])
    return turns
