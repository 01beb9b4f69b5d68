"""Make recordings in the formats PBXs write, with ffmpeg, for tests and benchmarks.

Each channel gets its own tone so a swapped or merged channel would show.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

# name: (file suffix, ffmpeg output options)
FORMATS: dict[str, tuple[str, list[str]]] = {
    "wav-pcm-8k": (".wav", ["-ar", "8000", "-c:a", "pcm_s16le"]),
    "wav-pcm-16k": (".wav", ["-ar", "16000", "-c:a", "pcm_s16le"]),
    "wav-ulaw": (".wav", ["-ar", "8000", "-c:a", "pcm_mulaw"]),
    "wav-alaw": (".wav", ["-ar", "8000", "-c:a", "pcm_alaw"]),
    "mp3": (".mp3", ["-ar", "8000", "-c:a", "libmp3lame", "-b:a", "32k"]),
    "ogg-opus": (".ogg", ["-ar", "16000", "-c:a", "libopus", "-b:a", "24k"]),
    "flac": (".flac", ["-ar", "8000", "-c:a", "flac"]),
    "gsm": (".gsm", ["-ar", "8000", "-ac", "1", "-c:a", "libgsm", "-f", "gsm"]),
}


def make_recording(
    path: Path, *, seconds: float = 3.0, channels: int = 2, fmt: str = "wav-pcm-8k"
) -> Path:
    """Render ``seconds`` of a two-tone signal (440 Hz left, 660 Hz right) in format ``fmt``."""
    suffix, options = FORMATS[fmt]
    path = path.with_suffix(suffix)
    sources = [
        f"sine=frequency={440 + 220 * i}:duration={seconds}:sample_rate=48000"
        for i in range(channels)
    ]
    inputs = [arg for source in sources for arg in ("-f", "lavfi", "-i", source)]
    merge = ["-filter_complex", f"amerge=inputs={channels}"] if channels > 1 else []
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", *inputs, *merge, "-ac", str(channels), *options, str(path)],
        check=True,
    )
    return path
