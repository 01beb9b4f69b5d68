"""ingest.audio on real encoded files: each PBX format probes right and is rendered exactly when a
browser cannot play it, and each damaged or foreign file is refused with the right reason.

Every fixture is rendered at test time by the system ffmpeg from one 3-second stereo 8 kHz source
carrying 440 Hz on the left and 1000 Hz on the right, so a dropped, mixed or swapped channel
shows in the rendition.
"""

from __future__ import annotations

import random
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import ingest.audio as audio
from ingest.audio import AudioError, RenditionError, make_rendition, probe, probe_and_render

SOURCE_S = 3.0
LEFT_HZ, RIGHT_HZ = 440, 1000
# How far a decoded duration may stray from the source's 3 s, by codec, and why:
EXACT = 1e-6  # PCM, G.711, FLAC: a sample frame is a fixed number of bytes
GSM_FRAME_S = 0.02  # the encoder pads the last 160-sample frame (gsm_ms: 320) with silence
MP3_FRAME_S = 576 / 8000  # the LAME tag trims encoder delay and padding; allow one frame anyway
OPUS_FRAME_S = 0.02  # the granule position trims pre-skip and padding; allow one 20 ms frame


@dataclass(frozen=True)
class Format:
    file_name: str  # the container is the suffix
    encode: str  # ffmpeg output options
    channels: int
    sample_rate: int
    codec: str
    browser_playable: bool
    tolerance_s: float

    @property
    def name(self) -> str:
        return self.file_name.replace(".", "_")

    @property
    def container(self) -> str:
        return self.file_name.rsplit(".", 1)[1]


FORMATS = [
    Format("s16_8k_stereo.wav", "-c:a pcm_s16le", 2, 8000, "pcm_s16le", True, EXACT),
    Format("s16_8k_mono.wav", "-c:a pcm_s16le", 1, 8000, "pcm_s16le", True, EXACT),
    Format("s16_16k_stereo.wav", "-ar 16000 -c:a pcm_s16le", 2, 16000, "pcm_s16le", True, EXACT),
    Format("u8_8k_stereo.wav", "-c:a pcm_u8", 2, 8000, "pcm_u8", True, EXACT),
    Format("s24_extensible_stereo.wav", "-c:a pcm_s24le", 2, 8000, "pcm_s24le", True, EXACT),
    Format("mulaw_stereo.wav", "-c:a pcm_mulaw", 2, 8000, "pcm_mulaw", False, EXACT),
    Format("mulaw_mono.wav", "-c:a pcm_mulaw", 1, 8000, "pcm_mulaw", False, EXACT),
    Format("alaw_stereo.wav", "-c:a pcm_alaw", 2, 8000, "pcm_alaw", False, EXACT),
    Format("alaw_mono.wav", "-c:a pcm_alaw", 1, 8000, "pcm_alaw", False, EXACT),
    Format("gsm_ms_mono.wav", "-c:a libgsm_ms", 1, 8000, "gsm_ms", False, 2 * GSM_FRAME_S),
    Format("raw_mono.gsm", "-c:a libgsm -f gsm", 1, 8000, "gsm", False, GSM_FRAME_S),
    Format("stereo.mp3", "-c:a libmp3lame -b:a 32k", 2, 8000, "mp3", True, MP3_FRAME_S),
    Format("mono.mp3", "-c:a libmp3lame -b:a 16k", 1, 8000, "mp3", True, MP3_FRAME_S),
    Format("opus_stereo.ogg", "-c:a libopus -b:a 24k", 2, 48000, "opus", False, OPUS_FRAME_S),
    Format("opus_mono.ogg", "-c:a libopus -b:a 16k", 1, 48000, "opus", False, OPUS_FRAME_S),
    Format("stereo.flac", "-c:a flac", 2, 8000, "flac", True, EXACT),
    Format("mono.flac", "-c:a flac", 1, 8000, "flac", True, EXACT),
]
NEEDS_RENDITION = [f for f in FORMATS if not f.browser_playable]


def ffmpeg(*args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)],
        capture_output=True,
        check=True,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every format, rendered from the same two-tone source, plus a video without audio."""
    root = tmp_path_factory.mktemp("audio")
    source = root / "source.wav"
    tone = "sine=frequency={}:sample_rate=8000:duration=3"
    ffmpeg(
        *("-f", "lavfi", "-i", tone.format(LEFT_HZ), "-f", "lavfi", "-i", tone.format(RIGHT_HZ)),
        *("-filter_complex", "[0:a][1:a]join=inputs=2:channel_layout=stereo[a]", "-map", "[a]"),
        source,
    )
    files = {}
    for fmt in FORMATS:
        files[fmt.name] = root / fmt.file_name
        mono = ("-af", "pan=mono|c0=c0") if fmt.channels == 1 else ()
        ffmpeg("-i", source, *mono, *fmt.encode.split(), files[fmt.name])
    files["video_without_audio.ogv"] = root / "video_without_audio.ogv"
    files["video.mp4"] = root / "video.mp4"
    video = ("-f", "lavfi", "-i", "testsrc=duration=1:size=32x32:rate=5")
    ffmpeg(*video, "-c:v", "libtheora", "-f", "ogg", files["video_without_audio.ogv"])
    ffmpeg(*video, "-c:v", "mpeg4", files["video.mp4"])
    return files


@pytest.fixture(scope="module")
def rendered(
    corpus: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[audio.AudioInfo, audio.Rendition | None]]:
    out_dir = tmp_path_factory.mktemp("renditions")
    return {fmt.name: probe_and_render(corpus[fmt.name], out_dir) for fmt in FORMATS}


def decoded_duration_s(path: Path) -> float:
    """The audio a player gets: decode it all, count the samples, and fail on any decode error."""
    pcm = decode(path)
    return pcm.shape[0] / int(ffprobe(path, "sample_rate"))


def decode(path: Path) -> np.ndarray:
    channels = int(ffprobe(path, "channels"))
    done = ffmpeg("-i", path, "-f", "s16le", "-c:a", "pcm_s16le", "-")
    assert done.stderr == b"", done.stderr
    return np.frombuffer(done.stdout, dtype="<i2").reshape(-1, channels)


def ffprobe(path: Path, entry: str) -> str:
    """One field of the first audio stream, as ffprobe reads it."""
    args = f"-v error -select_streams a:0 -show_entries stream={entry} -of csv=p=0"
    done = subprocess.run(["ffprobe", *args.split(), path], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def dominant_hz(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_probe_reports_layout_codec_and_duration(fmt: Format, corpus: dict[str, Path]):
    info = probe(corpus[fmt.name])

    assert (info.channels, info.sample_rate) == (fmt.channels, fmt.sample_rate)
    assert (info.codec, info.container) == (fmt.codec, fmt.container)
    assert info.browser_playable is fmt.browser_playable
    assert info.duration_s == pytest.approx(SOURCE_S, abs=fmt.tolerance_s)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_rendition_exists_exactly_when_the_original_is_not_browser_playable(
    fmt: Format, corpus: dict[str, Path], rendered: dict
):
    info, rendition = rendered[fmt.name]

    assert info == probe(corpus[fmt.name])
    assert (rendition is None) is fmt.browser_playable


@pytest.mark.parametrize("fmt", NEEDS_RENDITION, ids=lambda f: f.name)
def test_rendition_is_mp3_with_the_same_channels_and_duration(fmt: Format, rendered: dict):
    info, rendition = rendered[fmt.name]

    assert rendition is not None
    assert rendition.content_type == "audio/mpeg"
    assert ffprobe(rendition.path, "codec_name") == "mp3"
    assert int(ffprobe(rendition.path, "channels")) == info.channels
    tolerance_s = max(fmt.tolerance_s, MP3_FRAME_S)
    assert decoded_duration_s(rendition.path) == pytest.approx(info.duration_s, abs=tolerance_s)
    assert not list(rendition.path.parent.glob("*.part"))


@pytest.mark.parametrize("fmt", NEEDS_RENDITION, ids=lambda f: f.name)
def test_rendition_keeps_each_party_on_its_own_channel(fmt: Format, rendered: dict):
    _, rendition = rendered[fmt.name]
    assert rendition is not None
    pcm = decode(rendition.path)
    rate = int(ffprobe(rendition.path, "sample_rate"))

    tones = [dominant_hz(pcm[:, channel], rate) for channel in range(pcm.shape[1])]

    expected = [LEFT_HZ, RIGHT_HZ][: fmt.channels]
    assert tones == pytest.approx(expected, abs=5)


def test_make_rendition_renders_only_what_a_browser_cannot_play(
    corpus: dict[str, Path], tmp_path: Path
):
    mulaw, pcm = corpus["mulaw_stereo_wav"], corpus["s16_8k_stereo_wav"]

    rendition = make_rendition(mulaw, probe(mulaw), tmp_path)

    assert rendition is not None
    assert rendition.path.parent == tmp_path
    assert int(ffprobe(rendition.path, "channels")) == 2
    assert make_rendition(pcm, probe(pcm), tmp_path) is None


@pytest.mark.parametrize(
    "name", [f.name for f in FORMATS if f.container == "wav" and f.browser_playable]
)
def test_pcm_wav_is_probed_in_process_without_ffmpeg(
    name: str, corpus: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    def no_subprocess(*args: object, **kwargs: object) -> None:
        raise AssertionError("the PCM WAV fast path started a process")

    monkeypatch.setattr(audio.subprocess, "run", no_subprocess)

    info, rendition = probe_and_render(corpus[name], tmp_path)

    assert rendition is None
    assert info.duration_s == pytest.approx(SOURCE_S, abs=EXACT)
    assert list(tmp_path.iterdir()) == []


# --- WAV headers written by hand: what PBX recorders really leave on disk ----------------------


def chunk(chunk_id: bytes, body: bytes, size: int | None = None) -> bytes:
    """A RIFF chunk, padded to an even length; ``size`` overrides the announced size."""
    header = chunk_id + struct.pack("<I", len(body) if size is None else size)
    return header + body + b"\0" * (len(body) & 1)


def fmt_pcm(channels: int = 2, rate: int = 8000, bits: int = 16, align: int | None = None) -> bytes:
    block_align = channels * bits // 8 if align is None else align
    body = struct.pack("<HHIIHH", 1, channels, rate, rate * block_align, block_align, bits)
    return chunk(b"fmt ", body)


def wav(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


ONE_SECOND = bytes(8000 * 4)  # stereo 16-bit 8 kHz


@pytest.mark.parametrize(
    ("data", "duration_s"),
    [
        pytest.param(
            wav(fmt_pcm(), chunk(b"JUNK", b"odd"), chunk(b"data", ONE_SECOND)),
            1.0,
            id="odd-sized chunk before data is padded",
        ),
        pytest.param(
            wav(fmt_pcm(), chunk(b"data", ONE_SECOND), chunk(b"LIST", b"INFOtrailing tag")),
            1.0,
            id="chunk after the audio is not audio",
        ),
        pytest.param(
            wav(fmt_pcm(), chunk(b"data", ONE_SECOND, size=0xFFFFFFFF)),
            1.0,
            id="streaming size 0xFFFFFFFF reads the bytes present",
        ),
        pytest.param(
            wav(fmt_pcm(), chunk(b"data", ONE_SECOND, size=0)),
            1.0,
            id="streaming size 0 reads the bytes present",
        ),
        pytest.param(
            wav(fmt_pcm(), chunk(b"data", ONE_SECOND + b"\1\2\3")),
            1.0,
            id="partial last sample frame is dropped",
        ),
    ],
)
def test_wav_duration_comes_from_the_audio_really_present(data: bytes, duration_s: float, tmp_path):
    path = tmp_path / "call.wav"
    path.write_bytes(data)

    info = probe(path)

    assert (info.duration_s, info.channels, info.codec) == (duration_s, 2, "pcm_s16le")


def test_wav_piped_from_a_streaming_recorder_is_read_to_its_end(corpus, tmp_path: Path):
    piped = ffmpeg("-i", corpus["s16_8k_stereo_wav"], "-f", "wav", "-").stdout
    data_size = piped[piped.index(b"data") + 4 :][:4]
    assert data_size == b"\xff\xff\xff\xff"  # ffmpeg could not seek back to write the size
    path = tmp_path / "piped.wav"
    path.write_bytes(piped)

    assert probe(path).duration_s == pytest.approx(SOURCE_S, abs=EXACT)


# --- refusals ----------------------------------------------------------------------------------


def cut(fraction: float, *, extra: int = 0):
    """Keep the first part of a file, as a crashed recorder or an interrupted upload does."""
    return lambda data: data[: int(len(data) * fraction) + extra]


def garble(at: float, length: int):
    """Overwrite bytes in the middle with seeded noise: damage on disk or in transit."""

    def apply(data: bytes) -> bytes:
        start = int(len(data) * at)
        return data[:start] + random.Random(7).randbytes(length) + data[start + length :]

    return apply


def keep(data: bytes) -> bytes:
    return data


def flip_gsm_frame(data: bytes) -> bytes:
    frame = 33 * 20
    return data[:frame] + bytes([data[frame] & 0x0F]) + data[frame + 1 :]


# id, source (a corpus name or the bytes), transform, suffix, reason, words in the message
REFUSALS = [
    ("empty file", b"", keep, ".wav", "empty", "0 bytes"),
    ("random bytes", random.Random(1).randbytes(20_000), keep, ".wav", "not_audio", "unrecognised"),
    (
        "text file",
        b"Call notes\nCustomer rang about claim 1234.\n" * 50,
        keep,
        ".wav",
        "not_audio",
        "text file",
    ),
    (
        "pdf",
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\n",
        keep,
        ".mp3",
        "not_audio",
        "PDF",
    ),
    (
        "video without audio",
        "video_without_audio.ogv",
        keep,
        ".ogg",
        "not_audio",
        "no audio stream",
    ),
    ("mp4 video", "video.mp4", keep, ".mp4", "unsupported", "MP4"),
    ("riff avi", wav()[:8] + b"AVI LIST", keep, ".wav", "unsupported", "RIFF AVI"),
    (
        "wav s16 cut",
        "s16_8k_stereo_wav",
        cut(0.5),
        ".wav",
        "truncated",
        "announces 96,000 bytes of audio but only",
    ),
    ("wav mulaw cut", "mulaw_stereo_wav", cut(0.5), ".wav", "truncated", "announces 48,000 bytes"),
    ("wav gsm cut", "gsm_ms_mono_wav", cut(0.5), ".wav", "truncated", "announces"),
    (
        "flac cut",
        "stereo_flac",
        cut(0.5),
        ".flac",
        "truncated",
        "announces 3.00 s of audio but only",
    ),
    ("mp3 with xing header cut", "stereo_mp3", cut(0.5), ".mp3", "truncated", "bytes of audio but"),
    ("opus cut", "opus_stereo_ogg", cut(0.5), ".ogg", "truncated", "end-of-stream"),
    (
        "opus cut on a page boundary",
        "opus_stereo_ogg",
        lambda d: d[: d.rfind(b"OggS")],
        ".ogg",
        "truncated",
        "end-of-stream",
    ),
    (
        "raw gsm cut mid-frame",
        "raw_mono_gsm",
        cut(0.5, extra=7),
        ".gsm",
        "truncated",
        "partial frame",
    ),
    ("raw gsm damaged frame", "raw_mono_gsm", flip_gsm_frame, ".gsm", "corrupt", "signature"),
    ("mp3 damaged", "stereo_mp3", garble(0.4, 600), ".mp3", "corrupt", "Header missing"),
    ("opus damaged", "opus_stereo_ogg", garble(0.4, 600), ".ogg", "corrupt", "CRC"),
    ("flac damaged", "stereo_flac", garble(0.4, 600), ".flac", "corrupt", "flac"),
    ("wav header only", wav(fmt_pcm()), keep, ".wav", "empty", "no data chunk"),
    (
        "wav data chunk empty",
        wav(fmt_pcm(), chunk(b"data", b"")),
        keep,
        ".wav",
        "empty",
        "no audio",
    ),
    ("wav without fmt", wav(chunk(b"data", ONE_SECOND)), keep, ".wav", "corrupt", "before any fmt"),
    (
        "wav zero channels",
        wav(fmt_pcm(channels=0, align=4), chunk(b"data", ONE_SECOND)),
        keep,
        ".wav",
        "corrupt",
        "0 channels",
    ),
    (
        "wav frame size lies",
        wav(fmt_pcm(align=3), chunk(b"data", ONE_SECOND)),
        keep,
        ".wav",
        "corrupt",
        "contradicts",
    ),
    ("wav fmt chunk cut", wav(fmt_pcm())[:30], keep, ".wav", "truncated", "inside the WAV 'fmt '"),
    (
        "wav 12-bit pcm",
        wav(fmt_pcm(bits=12, align=3), chunk(b"data", ONE_SECOND)),
        keep,
        ".wav",
        "unsupported",
        "12-bit",
    ),
    (
        "wav 4 channels",
        wav(fmt_pcm(channels=4), chunk(b"data", ONE_SECOND)),
        keep,
        ".wav",
        "unsupported",
        "4 channels",
    ),
]


@pytest.mark.parametrize(
    ("source", "transform", "suffix", "reason", "words"),
    [pytest.param(*case[1:], id=case[0]) for case in REFUSALS],
)
def test_damaged_or_foreign_file_is_refused_with_its_reason(
    source, transform, suffix, reason, words, corpus: dict[str, Path], tmp_path: Path
):
    data = corpus[source].read_bytes() if isinstance(source, str) else source
    path = tmp_path / f"call{suffix}"
    path.write_bytes(transform(data))
    out_dir = tmp_path / "renditions"

    with pytest.raises(AudioError) as refused:
        probe_and_render(path, out_dir)

    assert refused.value.reason == reason
    assert words in str(refused.value)
    assert str(refused.value).startswith(f"{reason}: ")
    assert "\n" not in str(refused.value)
    assert refused.value.path == path
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


@pytest.mark.parametrize(
    ("suffix", "encode", "keep_bytes"),
    [
        (".gsm", ["-ac", "1", "-c:a", "libgsm", "-f", "gsm"], lambda n: n // 2 // 33 * 33),
        (".mp3", ["-c:a", "libmp3lame", "-b:a", "32k", "-write_xing", "0"], lambda n: n // 2),
    ],
    ids=["raw gsm cut on a frame boundary", "cbr mp3 without xing header cut"],
)
def test_cut_without_a_length_header_is_undetectable_and_probes_shorter(
    suffix: str, encode: list[str], keep_bytes, corpus: dict[str, Path], tmp_path: Path
):
    """Documents a limit, not a wish: these carry no length, so a cut file looks complete."""
    whole = tmp_path / f"whole{suffix}"
    ffmpeg("-i", corpus["s16_8k_stereo_wav"], *encode, whole)
    data = whole.read_bytes()
    half = tmp_path / f"half{suffix}"
    half.write_bytes(data[: keep_bytes(len(data))])

    assert probe(half).duration_s == pytest.approx(SOURCE_S / 2, abs=0.1)


def test_unwritable_out_dir_is_a_rendition_error_not_a_refusal(corpus, tmp_path: Path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")

    with pytest.raises(RenditionError):
        probe_and_render(corpus["mulaw_stereo_wav"], not_a_dir)
