"""Keep Whisper from putting words in a silent mouth.

Whisper was trained on subtitled video, so on silence, hold music and beeps it "hears" the lines
that ended those videos ("Ondertiteling door de Amara.org gemeenschap", "Bedankt voor het
kijken", "[MUZIEK]") and it can loop, repeating one phrase until the window ends. VAD removes
most non-speech before decoding and the decoder thresholds catch more; these filters catch what
is left, segment by segment.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# Whole-segment texts (normalised) that are Whisper's stock output on non-speech.
_STOCK_SEGMENTS = frozenset(
    {
        "muziek", "applaus", "gelach", "stilte", "music", "silence", "applause",
        "bedankt voor het kijken", "bedankt voor het luisteren", "dank je wel voor het kijken",
        "dank u wel voor het kijken", "bedankt voor het kijken en tot de volgende keer",
        "tot de volgende keer", "thanks for watching", "thank you for watching",
        "abonneer je op het kanaal", "vergeet niet te abonneren",
    }
)  # fmt: skip
# Fragments that mark a subtitle credit line wherever they appear in a segment.
_CREDIT_FRAGMENTS = (
    "amara org", "ondertiteling door", "ondertiteld door", "ondertitels door",
    "ondertiteling ingevoegd", "subtitles by", "tv gelderland", "omroep brabant",
)  # fmt: skip
_LOOP_MIN_REPEATS = 3  # an n-gram said this many times in a row is a decoding loop


@dataclass(frozen=True)
class GuardOptions:
    """Per-segment thresholds, applied after decoding (faster-whisper applies its own first)."""

    max_no_speech_prob: float = 0.6  # with a low log-probability: probably not speech
    min_avg_logprob: float = -1.0
    max_loop_ngram: int = 6


def normalise(text: str) -> str:
    """Lower case, accents and punctuation removed, single spaces: for comparing, not showing."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    letters = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", letters).split())


def is_stock_phrase(text: str) -> bool:
    """True for Whisper's known lines on silence (subtitle credits, "[MUZIEK]"...)."""
    plain = normalise(text)
    return not plain or plain in _STOCK_SEGMENTS or any(f in plain for f in _CREDIT_FRAGMENTS)


def collapse_loops(text: str, *, max_ngram: int = GuardOptions.max_loop_ngram) -> str:
    """Reduce a phrase repeated ``_LOOP_MIN_REPEATS`` or more times in a row to one occurrence.

    A person may say "ja ja" or "nee nee nee"; a run of three or more of the same multi-word
    phrase, or five or more of one word, is the decoder looping.
    """
    words = text.split()
    keys = [normalise(w) for w in words]
    index, kept = 0, []
    while index < len(words):
        collapsed = False
        for size in range(max_ngram, 0, -1):
            gram = keys[index : index + size]
            if len(gram) < size:
                continue
            repeats = 1
            while keys[index + repeats * size : index + (repeats + 1) * size] == gram:
                repeats += 1
            needed = _LOOP_MIN_REPEATS if size > 1 else _LOOP_MIN_REPEATS + 2
            if repeats >= needed:
                kept.extend(words[index : index + size])
                index += repeats * size
                collapsed = True
                break
        if not collapsed:
            kept.append(words[index])
            index += 1
    return " ".join(kept)


def keep_segment(
    text: str, *, no_speech_prob: float, avg_logprob: float, options: GuardOptions
) -> bool:
    """Whether a decoded segment is speech worth storing."""
    if is_stock_phrase(text):
        return False
    return not (
        no_speech_prob > options.max_no_speech_prob and avg_logprob < options.min_avg_logprob
    )
