"""Read the container bytes ``ingest.audio`` can judge without ffmpeg: the sniff, RIFF/WAVE
headers, the end of an Ogg stream and raw GSM frames.

Why by hand: one ffmpeg/ffprobe process costs ~85 ms of CPU before it reads a byte. PCM WAV,
what most PBXs write, needs nothing else: its layout, duration and completeness follow from the
header and the file size in microseconds. The standard library's ``wave`` is no substitute: it
refuses WAVE_FORMAT_EXTENSIBLE (before Python 3.12) and trusts the data chunk's size, so it
cannot tell a recording cut short by a crashed recorder from a complete one. For Ogg and raw
GSM, these checks see truncation that ffmpeg does not report.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

AudioReason = Literal["empty", "truncated", "corrupt", "not_audio", "unsupported", "too_long"]

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
# A recorder that streams writes the data size it does not know yet as 0 or 0xFFFFFFFF and fixes
# it on close; a crash leaves the placeholder, so these mean "size unknown".
_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
_PCM_CODECS = {8: "pcm_u8", 16: "pcm_s16le", 24: "pcm_s24le", 32: "pcm_s32le"}
_OGG_MAX_PAGE = 27 + 255 + 255 * 255
_GSM_FRAME = 33
_FOREIGN: dict[bytes, tuple[AudioReason, str]] = {  # for a refusal that says what it is instead
    b"%PDF": ("not_audio", "a PDF document"),
    b"PK\x03\x04": ("not_audio", "a ZIP archive or Office document"),
    b"\x89PNG": ("not_audio", "a PNG image"),
    b"\xff\xd8\xff": ("not_audio", "a JPEG image"),
    b"\x1a\x45\xdf\xa3": ("unsupported", "a Matroska/WebM file"),
    b"RF64": ("unsupported", "an RF64 (large WAV) file"),
    b"FORM": ("unsupported", "an AIFF file"),
    b"#!AMR": ("unsupported", "an AMR file"),
}


class FormatError(ValueError):
    """The bytes refuse the recording; ``reason`` is one of ``ingest.audio``'s reason codes."""

    def __init__(self, reason: AudioReason, message: str) -> None:
        super().__init__(message)
        self.reason: AudioReason = reason


@dataclass(frozen=True)
class WavHeader:
    """What a WAV header says, checked against the file's real size."""

    format_tag: int  # WAVE_FORMAT_EXTENSIBLE already resolved to its sub-format
    channels: int
    sample_rate: int
    bits_per_sample: int
    block_align: int
    data_bytes: int  # the audio to play: as announced, or as present when the size is unknown
    size_unknown: bool  # the recorder never wrote the final size: completeness is unprovable

    @property
    def pcm_codec(self) -> str | None:
        """ffmpeg's name for this integer PCM layout; None for any other codec."""
        if self.format_tag != WAVE_FORMAT_PCM:
            return None
        return _PCM_CODECS[self.bits_per_sample]

    @property
    def duration_s(self) -> float:
        """Whole sample frames only: a partial last frame is not audio."""
        return self.data_bytes // self.block_align / self.sample_rate


def sniff(head: bytes, path: Path) -> str:
    """Name the container (wav, mp3, flac, ogg, gsm) from the file's first bytes.

    ffmpeg then gets this as a forced demuxer (``-f``) and never guesses: guessing reads a text
    file as "tty" video, random bytes as MP3 at a "low score", and a playlist as an instruction
    to open other files.

    Raises:
        FormatError: ``not_audio`` or ``unsupported``, saying what the file looks like.
    """
    if tag_end := _id3v2_end(head):  # an ID3v2 tag may precede MP3 or FLAC
        with path.open("rb") as f:
            f.seek(tag_end)
            return "flac" if f.read(4) == b"fLaC" else "mp3"
    if head[:4] == b"RIFF":
        if head[8:12] == b"WAVE":
            return "wav"
        kind = head[8:12].decode("latin-1").strip()
        raise FormatError("unsupported", f"a RIFF {kind} file, not WAV")
    if head[:4] in (b"fLaC", b"OggS"):
        return "flac" if head[:4] == b"fLaC" else "ogg"
    if _is_mp3_frame(head):
        return "mp3"
    if len(head) >= _GSM_FRAME and all(b >> 4 == 0xD for b in head[: _GSM_FRAME * 8 : _GSM_FRAME]):
        return "gsm"  # raw GSM has no header, but every 33-byte frame starts with nibble 0xD
    raise FormatError(*_describe_foreign(head))


def _id3v2_end(head: bytes) -> int:
    if head[:3] != b"ID3" or len(head) < 10:
        return 0
    return 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10]))  # syncsafe


def _is_mp3_frame(head: bytes) -> bool:
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer = head[1] >> 3 & 3, head[1] >> 1 & 3
    bitrate, rate = head[2] >> 4, head[2] >> 2 & 3
    return version != 1 and layer == 1 and bitrate not in (0, 15) and rate != 3


def _describe_foreign(head: bytes) -> tuple[AudioReason, str]:
    for magic, (reason, what) in _FOREIGN.items():
        if head.startswith(magic):
            return reason, what
    if head[4:8] == b"ftyp":
        return "unsupported", "an MP4/QuickTime file"
    text = head.decode("utf-8", errors="replace").rstrip("\ufffd")  # a cut multibyte character
    if "\ufffd" not in text and all(c.isprintable() or c.isspace() for c in text):
        return "not_audio", f"a text file, starting {text[:30].strip()!r}"
    return "not_audio", f"unrecognised content, starting {head[:8].hex(' ')}"


def read_wav_header(path: Path) -> WavHeader:
    """Walk the chunks up to ``data`` and check that the announced audio is really there.

    ``fmt `` is required; ``LIST``, ``fact``, ``JUNK`` and the rest are skipped (odd sizes padded
    to even, as RIFF requires); whatever follows the audio is ignored, and so is the RIFF size
    field, which streaming recorders leave wrong. RF64 is not read.

    Raises:
        FormatError: ``truncated`` when a chunk claims more bytes than the file holds (the
            recorder crashed mid-write), ``empty`` when there is no audio, ``corrupt`` when the
            fmt chunk is missing or contradicts itself, ``unsupported`` for PCM other than
            8/16/24/32-bit.
    """
    size = path.stat().st_size
    fmt: tuple[int, int, int, int, int] | None = None
    with path.open("rb") as f:
        if f.read(12)[8:12] != b"WAVE":
            raise FormatError("not_audio", "not a RIFF/WAVE file")
        pos = 12
        while True:
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                if fmt is None:
                    raise FormatError("corrupt", "the WAV file has neither a fmt nor a data chunk")
                raise FormatError("empty", "the WAV file has a format header but no data chunk")
            chunk_id, chunk_size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if chunk_id == b"data":
                break
            if pos + 8 + chunk_size > size:
                name = chunk_id.decode("latin-1")
                raise FormatError("truncated", f"the file ends inside the WAV {name!r} chunk")
            if chunk_id == b"fmt ":
                fmt = _parse_fmt(f.read(min(chunk_size, 64)))
            pos += 8 + chunk_size + (chunk_size & 1)
    if fmt is None:
        raise FormatError("corrupt", "the WAV data chunk comes before any fmt chunk")
    present = size - pos - 8
    if chunk_size in _UNKNOWN_SIZES and present > 0:
        data_bytes, size_unknown = present, True
    elif chunk_size > present:
        message = f"the WAV header announces {chunk_size:,} bytes of audio"
        raise FormatError("truncated", f"{message} but only {present:,} are present")
    else:
        data_bytes, size_unknown = chunk_size, False
    tag, channels, rate, block_align, bits = fmt
    if data_bytes < block_align:
        raise FormatError("empty", "the WAV data chunk holds no audio")
    return WavHeader(tag, channels, rate, bits, block_align, data_bytes, size_unknown)


def _parse_fmt(body: bytes) -> tuple[int, int, int, int, int]:
    if len(body) < 16:
        raise FormatError("corrupt", f"the WAV fmt chunk is {len(body)} bytes, 16 at least")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == WAVE_FORMAT_EXTENSIBLE:
        if len(body) < 26:
            raise FormatError("corrupt", "the WAV fmt chunk is extensible but has no sub-format")
        tag = int.from_bytes(body[24:26], "little")  # the sub-format GUID starts with the tag
    if not (channels and rate and block_align):
        message = f"the WAV fmt chunk declares {channels} channels, {rate} Hz"
        raise FormatError("corrupt", f"{message}, {block_align}-byte frames")
    if tag == WAVE_FORMAT_PCM:
        if bits not in _PCM_CODECS:
            raise FormatError("unsupported", f"{bits}-bit PCM (8, 16, 24 or 32 expected)")
        if block_align != channels * bits // 8:
            raise FormatError(
                "corrupt",
                f"the WAV fmt chunk contradicts itself: {channels} channels of {bits}-bit PCM "
                f"make {channels * bits // 8}-byte frames, not {block_align}",
            )
    return tag, channels, rate, block_align, bits


def check_ogg(path: Path, head: bytes) -> tuple[int, int]:
    """Refuse an Ogg stream without its end; return (channels, rate) from its first header.

    A finished stream's last page carries the end-of-stream flag; a crashed writer never
    writes that page, and a cut file ends inside a page. Defaults to (2, 48000) for a codec
    other than Opus or Vorbis.

    Raises:
        FormatError: ``truncated``.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(0, size - _OGG_MAX_PAGE))
        tail = f.read()
    finished, start = False, len(tail)
    while (start := tail.rfind(b"OggS", 0, start)) >= 0 and len(tail) - start >= 27:
        segments = tail[start + 27 : start + 27 + tail[start + 26]]
        if start + 27 + len(segments) + sum(segments) == len(tail):  # the page ending the file
            finished = bool(tail[start + 5] & 0x04)
            break
    if not finished:
        raise FormatError("truncated", "the Ogg stream has no end-of-stream page: it was cut short")
    packet = head[27 + head[26] :]
    if packet.startswith(b"OpusHead") and len(packet) >= 16:
        return packet[9], int.from_bytes(packet[12:16], "little")
    if packet.startswith(b"\x01vorbis") and len(packet) >= 16:
        return packet[11], int.from_bytes(packet[12:16], "little")
    return 2, 48_000


def check_mp3(path: Path, head: bytes) -> bool:
    """Refuse an MP3 smaller than the byte count in its Xing/Info or VBRI header.

    LAME and ffmpeg write that header into a silent first frame. Returns True when the count
    proved every byte present (decoding short then means damage inside, not a cut), False when
    there is no count: then a cut on a frame boundary cannot be seen.

    Raises:
        FormatError: ``truncated``.
    """
    start, size = _id3v2_end(head), path.stat().st_size
    with path.open("rb") as f:
        f.seek(start)
        frame = f.read(64)
    announced = None
    for at in (13, 21, 36):  # after the side information, whose size depends on version/channels
        if frame[at : at + 4] in (b"Xing", b"Info"):
            flags = int.from_bytes(frame[at + 4 : at + 8], "big")
            field = at + 8 + 4 * (flags & 1)  # the frame count, when present, comes first
            announced = int.from_bytes(frame[field : field + 4], "big") if flags & 2 else None
        elif frame[at : at + 4] == b"VBRI":
            announced = int.from_bytes(frame[at + 10 : at + 14], "big")
    if announced is None:
        return False
    if size < announced:  # the whole file: encoders disagree on whether the ID3v2 tag counts
        message = f"the MP3 header announces {announced:,} bytes of audio"
        raise FormatError("truncated", f"{message} but only {size - start:,} are present")
    return True


def check_gsm(path: Path) -> None:
    """Refuse raw GSM that ends mid-frame or holds frames without the 0xD signature.

    Raises:
        FormatError: ``truncated`` or ``corrupt``.
    """
    data = path.read_bytes()
    if len(data) % _GSM_FRAME:
        message = f"raw GSM ends with a partial frame ({len(data) % _GSM_FRAME} of 33 bytes)"
        raise FormatError("truncated", message)
    bad = [i for i, b in enumerate(data[::_GSM_FRAME]) if b >> 4 != 0xD]
    if bad:
        message = f"{len(bad)} GSM frame(s) lack the 0xD signature, first at byte {bad[0] * 33:,}"
        raise FormatError("corrupt", message)
