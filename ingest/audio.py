"""Probe a PBX recording, refuse a damaged one, and make a browser-playable rendition.

Two paths, because an ffmpeg or ffprobe process costs ~85 ms of CPU before it reads a byte and
ingest must take >= 20 one-minute stereo calls a second on two cores:

* PCM WAV (what most PBXs write): in process. The RIFF header and the file size give layout,
  duration and completeness (``ingest.audio_formats``); browsers play it, so no rendition.
  Nobody can see damage *inside* PCM (or G.711): every byte pattern is a valid sample.
* Everything else: ONE ffmpeg run that decodes the whole stream (a decode error means corrupt),
  whose log gives the stream layout and the exact number of decoded samples, and which writes the
  MP3 rendition in the same pass when the original is not browser-playable. MP3 and FLAC play in
  every current browser; G.711, GSM and float WAV do not, nor Ogg/Opus in Safari.

Why not pydub: ``pydub.utils.mediainfo_json`` is one more ffprobe process per file and does not
decode, so it cannot see corrupt data; ``AudioSegment`` decodes into memory and re-encodes in a
second process. ffmpeg's log (``-loglevel level+verbose``) carries the same facts in the one
process we need anyway.

How truncation is seen, per container (a cut recording is refused as ``truncated``):

* WAV, any codec: the data chunk announces more bytes than the file holds. A header whose size
  was never written (0 or 0xFFFFFFFF, a streaming recorder) is read as "size unknown": the bytes
  present are the recording, and a cut is undetectable.
* FLAC: STREAMINFO's total samples against the samples decoded (undetectable when the encoder
  streamed and wrote 0 there). Frames lost in the *middle* keep the stream's end time: corrupt.
* MP3 with a Xing/Info/VBRI header (LAME and ffmpeg write one): its byte count against the file
  size, and its frame count against the samples decoded (short while every byte is there:
  corrupt). CBR MP3 without such a header: undetectable, ffmpeg estimates the length from the
  size.
* Ogg (Opus, Vorbis): the last page must be complete and carry the end-of-stream flag. The
  granule position cannot help: a reader takes the duration from the last page present.
* Raw GSM: only a partial trailing 33-byte frame shows a cut; a cut on a frame boundary is
  undetectable. Each frame starts with the signature nibble 0xD, so garbage is seen (GSM in WAV,
  gsm_ms, has no signature: damage there is invisible).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from errors import CallrecError
from ingest.audio_formats import (
    AudioReason,
    FormatError,
    check_gsm,
    check_mp3,
    check_ogg,
    read_wav_header,
    sniff,
)

__all__ = [
    "AudioError",
    "AudioInfo",
    "AudioReason",
    "Rendition",
    "RenditionError",
    "make_rendition",
    "probe",
    "probe_and_render",
]

_HINTS: dict[AudioReason, str] = {
    "empty": "nothing was recorded; check the PBX recorder",
    "truncated": "fetch the recording again once the PBX has finished writing it",
    "corrupt": "export the recording from the PBX again",
    "not_audio": "this is not a call recording; check what was uploaded",
    "unsupported": "export it as WAV, MP3, Ogg, FLAC or GSM, mono or stereo",
    "too_long": "check the PBX for a line left open, or raise CALLREC_INGEST_MAX_CALL_HOURS",
}
_PLAYABLE_CONTAINERS = ("mp3", "flac")  # plus PCM WAV: every current browser plays these
_FFMPEG_TIMEOUT_S = 600.0
_TRUNCATION_SLACK_S = 0.5  # > MP3 encoder delay + padding (~0.2 s at 8 kHz): a real cut is longer


class AudioError(CallrecError):
    """A recording callrec refuses; ``reason`` is a short code for the quarantine and the logs."""

    def __init__(self, reason: AudioReason, message: str, *, path: Path) -> None:
        super().__init__(f"{reason}: {message}", hint=_HINTS[reason])
        self.reason = reason
        self.path = path


class RenditionError(CallrecError):
    """Writing the rendition failed (disk full, say): the recording itself is not at fault."""

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message, hint=f"check free space and permissions of {path.parent}")
        self.path = path


@dataclass(frozen=True)
class AudioInfo:
    """What a recording holds; ``codec`` uses ffmpeg's names (pcm_s16le, pcm_mulaw, gsm_ms...)."""

    duration_s: float
    channels: int
    sample_rate: int
    codec: str
    container: str  # wav, mp3, ogg, flac or gsm
    browser_playable: bool


@dataclass(frozen=True)
class Rendition:
    """A browser-playable copy: MP3, CBR so that seeking to a time is exact in every browser."""

    path: Path
    content_type: str = "audio/mpeg"


def probe_and_render(
    path: Path, out_dir: Path, *, max_duration_s: float | None = None
) -> tuple[AudioInfo, Rendition | None]:
    """Probe, validate and render in one pass: THE ingest call (at most one ffmpeg run).

    Args:
        max_duration_s: Refuse a longer recording as ``too_long``; ffmpeg stops decoding just
            past it, so a recording of days does not hold an ingest worker for hours.

    Returns:
        The info, and the rendition written into ``out_dir`` as ``<stem>.rendition.mp3``, or
        None when the original plays in a browser as is (PCM WAV, MP3, FLAC).

    Raises:
        AudioError: the recording is empty, truncated, corrupt, not audio, unsupported or too
            long.
        RenditionError: the rendition could not be written.
    """
    return _inspect(path, out_dir, max_duration_s)


def probe(path: Path) -> AudioInfo:
    """Probe and validate only. Outside PCM WAV this decodes the whole stream (one ffmpeg run):
    there is no cheaper proof that it decodes. Prefer :func:`probe_and_render` during ingest."""
    return _inspect(path, None, None)[0]


def make_rendition(path: Path, info: AudioInfo, out_dir: Path) -> Rendition | None:
    """Render a probed recording, or None when ``info.browser_playable``. One ffmpeg run."""
    if info.browser_playable:
        return None
    return _run_ffmpeg(path, info.container, (info.channels, info.sample_rate), out_dir)[1]


def _inspect(
    path: Path, out_dir: Path | None, max_duration_s: float | None
) -> tuple[AudioInfo, Rendition | None]:
    with path.open("rb") as f:
        head = f.read(4096)
    if not head:
        raise AudioError("empty", "the file is 0 bytes", path=path)
    layout = (0, 0)  # (channels, rate) to choose the rendition's bitrate; unused for mp3/flac
    complete = False  # the container's byte count proved every byte present
    try:
        container = sniff(head, path)
        if container == "wav":
            wav = read_wav_header(path)
            _check_channels(wav.channels, path)
            if wav.pcm_codec:  # the fast path: nothing to decode, nothing to render
                _check_duration(wav.duration_s, max_duration_s, path)
                fields = (wav.duration_s, wav.channels, wav.sample_rate, wav.pcm_codec, "wav")
                return AudioInfo(*fields, browser_playable=True), None
            layout = (wav.channels, wav.sample_rate)
        elif container == "ogg":
            layout = check_ogg(path, head)
        elif container == "gsm":
            check_gsm(path)
            layout = (1, 8000)
        elif container == "mp3":
            complete = check_mp3(path, head)
    except FormatError as exc:
        raise AudioError(exc.reason, str(exc), path=path) from None
    return _run_ffmpeg(
        path, container, layout, out_dir, complete=complete, max_duration_s=max_duration_s
    )


def _check_duration(duration_s: float, max_duration_s: float | None, path: Path) -> None:
    if max_duration_s is not None and duration_s > max_duration_s:
        message = f"at least {duration_s:,.0f} s of audio, longer than the {max_duration_s:,.0f} s"
        raise AudioError("too_long", f"{message} a recording may last", path=path)


def _check_channels(channels: int, path: Path) -> None:
    if channels > 2:
        message = f"{channels} channels; callrec takes mono or stereo (one party per channel)"
        raise AudioError("unsupported", message, path=path)


_LOG_LINE = re.compile(r"^(?:\[[^\]]* @ 0x[0-9a-f]+\] )?\[([a-z]+)\] (.*)$")
_STREAM = re.compile(r"^ {2}Stream #0:\d+\S*: (\w+): (\w+)(.*)$")
_AUDIO = re.compile(r", (\d+) Hz, ([^,]+)")
_DURATION = re.compile(r"^ {2}Duration: (\d+):(\d\d):(\d\d\.\d+)")
_DECODED = re.compile(r"^\s*Input stream #0:\d+ \(audio\):.*\((\d+) samples\)")
_END = re.compile(r"^size=.* time=(\d+):(\d\d):(\d\d\.\d+)")
_CHANNELS = re.compile(r"^(mono|stereo|downmix|(\d+) channels)\b")


@dataclass
class _Log:
    """The facts in one ffmpeg run's level-tagged log."""

    streams: list[tuple[str, str, str]]  # kind, codec, the rest of the line (Input #0 only)
    errors: list[str]
    declared_s: float | None = None  # None when absent or merely estimated from the bitrate
    decoded_samples: int | None = None
    end_s: float | None = None  # the last timestamp: runs on over frames that were lost


def _run_ffmpeg(
    path: Path,
    container: str,
    layout: tuple[int, int],
    out_dir: Path | None,
    *,
    complete: bool = False,
    max_duration_s: float | None = None,
) -> tuple[AudioInfo, Rendition | None]:
    """Decode the whole stream once (up to just past ``max_duration_s``), writing the MP3
    rendition when one is needed.

    The rendition is written as ``.part`` and renamed when the run proved the recording sound,
    so a reader never sees half a file, nor a rendition of a refused recording.
    """
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-loglevel", "level+verbose"]
    cmd += ["-f", container, "-i", f"file:{path}", "-map", "0:a:0"]
    if max_duration_s is not None:  # a second more, so that decoding past the limit shows
        cmd += ["-t", f"{max_duration_s + 1:.3f}"]
    if out_dir is None or container in _PLAYABLE_CONTAINERS:
        final = part = None
        cmd += ["-f", "null", "-"]
    else:
        final = out_dir / f"{path.stem}.rendition.mp3"
        part = final.with_name(final.name + ".part")
        cmd += [*_mp3_args(*layout), "-y", f"file:{part}"]
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            part.touch()
        except OSError as exc:
            raise RenditionError(f"cannot write {part}: {exc}", path=part) from exc
    try:
        try:
            done = subprocess.run(
                cmd,
                capture_output=True,
                encoding="utf-8",
                errors="replace",
                timeout=_FFMPEG_TIMEOUT_S,
            )
        except FileNotFoundError:
            raise CallrecError("ffmpeg is not installed", hint="run bash .ci/setup.sh") from None
        except subprocess.TimeoutExpired:
            message = f"ffmpeg did not finish decoding within {_FFMPEG_TIMEOUT_S:.0f} s"
            raise AudioError("corrupt", message, path=path) from None
        log = _read_log(done.stderr)
        if part and any(part.name in e or "No space left" in e for e in log.errors):
            raise RenditionError(f"ffmpeg could not write {part}: {log.errors[0]}", path=part)
        info = _judge(
            path, container, done.returncode, log, complete=complete, limit_s=max_duration_s
        )
        if part is None or final is None:
            return info, None
        part.replace(final)
        return info, Rendition(final)
    except BaseException:
        if part is not None:
            part.unlink(missing_ok=True)
        raise


def _mp3_args(channels: int, rate: int) -> list[str]:
    """CBR (exact seeking in every browser), narrow- or wideband as the source, 16/24 kbit/s a
    channel: what the speech needs; LAME quality 7 saves ~20% CPU over its default, inaudibly."""
    out_rate = 8000 if rate <= 8000 else 16000
    kbps = (16 if out_rate == 8000 else 24) * max(channels, 1)
    codec = ["-c:a", "libmp3lame", "-ar", str(out_rate), "-b:a", f"{kbps}k"]
    return ["-map_metadata", "-1", *codec, "-compression_level", "7", "-f", "mp3"]


def _read_log(stderr: str) -> _Log:
    log = _Log(streams=[], errors=[])
    in_input = estimated = False
    for line in stderr.splitlines():
        if not (tagged := _LOG_LINE.match(line)):
            continue
        level, msg = tagged.groups()
        if level in ("error", "fatal", "panic"):
            log.errors.append(msg)
        elif msg.startswith("Input #0"):
            in_input = True
        elif msg.startswith(("Stream mapping", "Output #")):
            in_input = False
        elif in_input and (stream := _STREAM.match(msg)):
            log.streams.append((stream[1], stream[2], stream[3]))
        elif in_input and (duration := _DURATION.match(msg)):
            log.declared_s = _seconds(duration.groups())
        elif "Estimating duration from bitrate" in msg:
            estimated = True
        elif decoded := _DECODED.match(msg):
            log.decoded_samples = int(decoded[1])
        elif end := _END.match(msg):
            log.end_s = _seconds(end.groups())
    if estimated:
        log.declared_s = None
    return log


def _seconds(hms: tuple[str, ...]) -> float:
    return int(hms[0]) * 3600 + int(hms[1]) * 60 + float(hms[2])


def _judge(
    path: Path, container: str, returncode: int, log: _Log, *, complete: bool, limit_s: float | None
) -> AudioInfo:
    """Turn one ffmpeg run into an AudioInfo, or the reason the recording is refused.

    Decoding short of the declared length is a cut, unless the timestamps ran on past frames
    that never decoded (FLAC numbers its frames) or the byte count proved the file whole (MP3):
    then the loss is inside. Checked before decode errors: a cut ends in half a frame, which
    fails to decode. The length limit comes first: decoding stopped there on purpose.
    """
    first_error = log.errors[0] if log.errors else f"ffmpeg exited with status {returncode}"
    if not log.streams:
        message = f"ffmpeg cannot read this {container}: {first_error}"
        raise AudioError("corrupt", message, path=path)
    audio = [(codec, rest) for kind, codec, rest in log.streams if kind == "Audio"]
    if not audio:
        found = ", ".join(f"{kind.lower()} {codec}" for kind, codec, _ in log.streams)
        message = f"the {container} file holds no audio stream, only {found}"
        raise AudioError("not_audio", message, path=path)
    codec, rest = audio[0]
    described = _AUDIO.search(rest)
    layout = _CHANNELS.match(described[2]) if described else None
    if described is None or layout is None or codec == "none":
        raise AudioError("unsupported", f"an audio stream of {codec}{rest}", path=path)
    channels = {"mono": 1, "stereo": 2, "downmix": 2}.get(layout[1]) or int(layout[2])
    _check_channels(channels, path)
    rate = int(described[1])
    duration = (log.decoded_samples or 0) / rate
    declared = log.declared_s
    _check_duration(max(duration, declared or 0), limit_s, path)
    if log.decoded_samples is not None and declared and declared - duration > _TRUNCATION_SLACK_S:
        lost_inside = declared - duration if complete else (log.end_s or duration) - duration
        if lost_inside > _TRUNCATION_SLACK_S:
            cause = f" ({first_error})" if log.errors else ""
            message = f"{lost_inside:.2f} s of audio are lost inside the {container} stream{cause}"
            raise AudioError("corrupt", message, path=path)
        message = f"the {container} header announces {declared:.2f} s of audio"
        raise AudioError("truncated", f"{message} but only {duration:.2f} s decode", path=path)
    if log.errors or returncode or log.decoded_samples is None:
        count = f"{len(log.errors)} ffmpeg error(s)"
        message = f"{count} decoding the {container}, first: {first_error}"
        raise AudioError("corrupt", message, path=path)
    if duration == 0:
        raise AudioError("empty", f"no audio samples decode from the {container}", path=path)
    playable = container in _PLAYABLE_CONTAINERS
    return AudioInfo(round(duration, 6), channels, rate, codec, container, playable)
