"""Hostile input (issue 8): whatever arrives in the incoming bucket (from a PBX, a buggy script
or an attacker with write access) is stored whole under its call's own prefix or refused with
one clear line, and never left half-done.

* The metadata parser and the sidecar reader, fuzzed with hypothesis: the only exception is
  MetadataError, in one line; what passes holds the model's invariants, and real PostgreSQL (the
  strict catalogue) stores it.
* The file-name pattern: names raise only MetadataError, patterns only ValueError; answers equal
  the lazy regular expression the pattern used to compile to, in linear time.
* Object keys through the real poller and S3 server: ``..`` spellings, unicode, 1,024-byte keys,
  hostile call ids.
* Huge, truncated and foreign audio through the real pipeline, with the size and length limits.

The search query parser is fuzzed in tests/test_search_query.py (every rendering run on real FTS5
and PostgreSQL), not here. tests/fuzz/fuzz_parsers.py drives the ``check_*`` properties below
with atheris for longer, coverage-guided runs.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import phonenumbers
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from errors import SettingsError
from ingest.filename_pattern import FilenamePattern
from ingest.metadata import (
    MAX_SIDECAR_BYTES,
    CallMetadata,
    MetadataError,
    normalise_keys,
    parse_metadata,
    parse_sidecar,
)
from ingest.pipeline import IngestOptions, IngestResult, Outcome, ingest_object, ingest_or_retry
from ingest.poller import poll_incoming
from settings import load_settings
from storage.catalogue import Call, Job, QuarantineItem, Tombstone
from storage.connect import Storage
from storage.objects import ObjectStoreError
from storage.purge import call_prefix
from storage.scratch import scratch_root
from tests.audio_files import FORMATS, make_recording
from tests.test_ingest import NOW, STARTED, calls, drop, incoming_keys, options, quarantined

README_PATTERN = "{direction}-{customer_number}-{agent_id}-{started:%Y%m%d-%H%M%S}-{call_id}.wav"
CALL_ID_RULE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")  # the README's input contract
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
TEXT_FIELDS = ("agent_id", "team", "queue", "customer_id", "policy_number", "language")


# --- the properties (also run by tests/fuzz/fuzz_parsers.py under atheris) --------------------


def assert_one_line(refusal: object) -> None:
    """A refusal a person can read in a status table: one line, not the megabytes it refused."""
    text = str(refusal)
    assert len(text.splitlines()) == 1, text
    assert len(text) < 600, text[:200]


def assert_call_invariants(meta: CallMetadata) -> None:
    """What the rest of callrec relies on once metadata is accepted."""
    assert meta.started_at.tzinfo is UTC
    assert CALL_ID_RULE.fullmatch(meta.call_id), meta.call_id
    assert PurePosixPath(call_prefix(meta.call_id)).parts == ("calls", meta.call_id)
    if meta.customer_number is not None:
        assert E164.fullmatch(meta.customer_number), meta.customer_number
        assert phonenumbers.is_possible_number(phonenumbers.parse(meta.customer_number))
    assert meta.direction in (None, "inbound", "outbound")
    assert meta.agent_channel in ("left", "right")
    assert meta.language is None or re.fullmatch("[a-z]{2}", meta.language)
    texts = [getattr(meta, name) or "" for name in TEXT_FIELDS]
    for text in [*texts, *meta.extra, *meta.extra.values()]:
        assert isinstance(text, str)
        text.encode("utf-8")  # no lone surrogate: neither database could store it
        assert not any(unicodedata.category(c) == "Cc" for c in text), repr(text)


def check_metadata(*sources: dict[str, Any]) -> CallMetadata | None:
    """Valid metadata that keeps the invariants, or one MetadataError line; nothing else."""
    try:
        meta = parse_metadata(*sources)
    except MetadataError as refused:
        assert_one_line(refused)
        return None
    assert_call_invariants(meta)
    return meta


def check_sidecar(raw: bytes) -> None:
    """Any bytes as a sidecar: a mapping that :func:`check_metadata` holds for, or one line."""
    try:
        fields = parse_sidecar(raw, name="t/rec.wav.json")
    except MetadataError as refused:
        assert_one_line(refused)
        return
    assert isinstance(fields, dict)
    check_metadata(fields)


def check_filename(pattern: FilenamePattern, name: str) -> None:
    """Any name against a compiled pattern: its fields (always a call id, no field holding a
    "/") and metadata that :func:`check_metadata` holds for, or one MetadataError line."""
    try:
        fields = pattern.parse(name)
    except MetadataError as refused:
        assert_one_line(refused)
        return
    assert "call_id" in fields
    assert all("/" not in value for value in fields.values() if isinstance(value, str))
    check_metadata(fields)


def check_pattern(text: str, names: list[str]) -> None:
    """Any pattern: compiled (then any name is checked against it) or one ValueError line."""
    try:
        pattern = FilenamePattern.compile(text)
    except ValueError as refused:  # re.error is no ValueError: one leaking would fail here
        assert_one_line(refused)
        return
    for name in names:
        check_filename(pattern, name)


# --- 1. the metadata parser and the sidecar reader --------------------------------------------

FIELD_NAMES = [
    *(name for name in CallMetadata.model_fields if name != "extra"),
    "started",
    "start_time",
    "agent",
]
ODD_CHARACTERS = st.sampled_from(
    ["\x00", "\n", "\r", "\t", "\x7f", "\x85", "\u2028", "\u202e", "\ufeff", "\ud800", "\udfff"]
)
hostile_text = st.lists(st.one_of(st.text(max_size=6), ODD_CHARACTERS), max_size=6).map("".join)
huge_text = st.builds(
    lambda c, n: c * n, st.sampled_from(["x", "9", "é", "+3"]), st.integers(60, 20_000)
)
offsets = st.integers(-1439, 1439).map(lambda m: timezone(timedelta(minutes=m)))
iso_times = st.builds(
    lambda moment, zone, z: moment.replace(tzinfo=zone).isoformat().replace("+00:00", z),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.none() | offsets,
    st.sampled_from(["+00:00", "Z", "z"]),
)
phone_like = st.from_regex(r"\A[+0-9 ()-]{0,25}\Z")
words = st.sampled_from(
    ["in", "OUT", "Inbound", "left", "R", "1", "anonymous", "Withheld", "nl", "NL", "", " "]
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=6,
)
field_values = st.one_of(json_values, hostile_text, huge_text, iso_times, phone_like, words)
spelled_names = st.builds(
    lambda name, spelling: spelling(name),
    st.sampled_from(FIELD_NAMES),
    st.sampled_from(
        [str, str.upper, lambda n: n.replace("_", "-").title(), lambda n: f" {n.upper()} "]
    ),
)
metadata_keys = st.one_of(spelled_names, st.text(max_size=12), hostile_text)
metadata_maps = st.dictionaries(metadata_keys, field_values, max_size=12)


@settings(max_examples=200)
@given(st.lists(metadata_maps, min_size=1, max_size=3))
def test_any_metadata_is_valid_or_refused_in_one_line(sources: list[dict[str, Any]]):
    event("accepted" if check_metadata(*sources) else "refused")


@settings(max_examples=200)
@given(metadata_maps, iso_times | field_values)
def test_metadata_with_a_call_id_and_hostile_fields_keeps_the_invariants(
    fields: dict[str, Any], started: Any
):
    """Mostly-valid metadata, so the invariants are checked on accepted values, not only on
    refusals."""
    base = {"call_id": "c-1", "started_at": started}
    hostile = {k: v for k, v in fields.items() if "call_id" not in normalise_keys({k: v})}
    event("accepted" if check_metadata(base, hostile) else "refused")


sidecar_bytes = st.one_of(
    st.binary(max_size=300),
    metadata_maps.map(lambda m: json.dumps(m).encode()),
    metadata_maps.map(lambda m: json.dumps(m).encode("utf-16")),
    metadata_maps.map(lambda m: b"\xef\xbb\xbf" + json.dumps(m).encode()),
    st.integers(1, 10**5).map(lambda n: b"[" * n),
    st.integers(4000, 6000).map(lambda n: b'{"call_id": "c", "agent_id": ' + b"7" * n + b"}"),
)


@settings(max_examples=300)
@given(sidecar_bytes)
def test_any_bytes_as_a_sidecar_are_metadata_or_refused_in_one_line(raw: bytes):
    check_sidecar(raw)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"[" * 50_000, "nested too deeply"),
        (b'{"call_id": ' + b"7" * 5000 + b"}", "Exceeds the limit (4300 digits)"),
        (b"\xff\xfe\x00", "is not valid JSON"),
        (b" " * MAX_SIDECAR_BYTES + b"{}", "is larger than 65,536 bytes"),
        (b'{"call_id": "a\\u0000b"}', "holds U+0000"),
        (b'{"agent_id": "\\ud800"}', "holds U+D800"),
        (b'{"call_id": "abc\\n"}', "holds U+000A"),
    ],
    ids=["deep nesting", "huge integer", "not utf-8", "too large", "nul", "surrogate", "newline"],
)
def test_sidecars_that_broke_the_parser_are_refused_with_their_reason(raw: bytes, words: str):
    """The examples the fuzzers found (each used to escape as another exception or pass)."""
    with pytest.raises(MetadataError, match=re.escape(words)) as refused:
        parse_metadata({"call_id": "c-1", "started_at": STARTED}, parse_sidecar(raw, name="x"))
    assert_one_line(refused.value)


@pytest.mark.parametrize(
    "started_at",
    ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00"],
    ids=["west of utc in 9999", "east of utc in year 1", "naive year 1 in amsterdam"],
)
def test_a_start_outside_the_utc_calendar_is_a_metadata_error(started_at: str):
    with pytest.raises(MetadataError, match="outside the years 1-9999 in UTC"):
        parse_metadata({"call_id": "c-1", "started_at": started_at})


# --- 2. the file-name pattern ------------------------------------------------------------------

PATTERNS = [
    README_PATTERN,
    "{direction}-{customer_number}-{agent_id}-{queue}-{call_id}.wav",
    "{agent_id}{call_id}.wav",
    "rec_{started_at:%Y%m%d%H%M%S%f}_{call_id}",
    "{call_id}",
]
# The old compiled form, as an oracle: a lazy group per field (no "/"), the time's digits.
_ORACLE_DIRECTIVES = {"%Y": r"\d{4}", "%f": r"\d{1,6}", "%%": "%"}


def lazy_regex(pattern: str) -> re.Pattern[str]:
    parts, position = [], 0
    for field in re.finditer(r"\{([a-z_]+)(?::([^}]+))?\}", pattern):
        parts.append(re.escape(pattern[position : field.start()]))
        time_format = field[2] or ""
        digits = re.sub(
            r"%[a-zA-Z%]", lambda d: _ORACLE_DIRECTIVES.get(d[0], r"\d{2}"), time_format
        )
        parts.append(f"(?P<{field[1]}>{digits})" if field[2] else f"(?P<{field[1]}>[^/]+?)")
        position = field.end()
    return re.compile("".join([*parts, re.escape(pattern[position:])]))


@settings(max_examples=400)
@given(st.sampled_from(PATTERNS), st.data())
def test_a_name_gets_the_fields_the_lazy_regular_expression_gave(pattern: str, data: st.DataObject):
    pieces = re.split(r"(\{[^}]*\})", pattern)
    fill = st.text("ab1-_./0", max_size=6)
    digits = st.text("0123456789-", min_size=6, max_size=22)
    name = "".join(
        data.draw(digits if ":" in piece else fill) if piece.startswith("{") else piece
        for piece in pieces
    )
    name = data.draw(st.sampled_from([name, name[1:], name + "x", name.replace("-", "--")]))
    expected = lazy_regex(pattern).fullmatch(name)
    compiled = FilenamePattern.compile(pattern)
    try:
        fields = compiled.parse(name)
    except MetadataError as refused:
        assert_one_line(refused)
        assert expected is None or "is not a time of the form" in str(refused), name
        return
    assert expected is not None, name
    for field, value in fields.items():
        time_format = compiled.time_formats.get(field)
        text = expected[field]
        assert value == (datetime.strptime(text, time_format) if time_format else text)


@settings(max_examples=200)
@given(st.sampled_from(PATTERNS), st.one_of(st.text(), hostile_text, st.text(min_size=300)))
def test_any_name_against_a_documented_pattern_is_fields_or_one_metadata_error(
    pattern: str, name: str
):
    check_filename(FilenamePattern.compile(pattern), name)


pattern_texts = st.lists(
    st.one_of(
        st.text(max_size=4),
        st.sampled_from(
            ["{call_id}", "{started:%Y%m%d}", "{started_at:%H%%%f}", "{agent_id}", "{call_id:%Y}",
             "{started:%b}", "{started:%", "{x}", "{", "}", "%", "(?P<", "\\", "[", "$", "{{"]
        ),
    ),
    max_size=8,
).map("".join)  # fmt: skip


@settings(max_examples=300)
@given(pattern_texts, st.lists(st.text(max_size=40), max_size=3))
def test_any_pattern_compiles_or_is_refused_in_one_line(pattern: str, names: list[str]):
    check_pattern(pattern, names)


def test_a_refused_pattern_stops_callrec_at_start_with_a_settings_error(tmp_path: Path):
    with pytest.raises(SettingsError, match="CALLREC_FILENAME_PATTERN") as refused:
        load_settings(data_dir=tmp_path, filename_pattern="{agent_id}-(?P<x>[.wav")
    assert_one_line(refused.value)


def test_a_hostile_name_is_matched_in_linear_time():
    """Against a lazy regular expression these took minutes (five fields, 255 dashes) and
    hours (six); the budget is generous for a shared machine, the matcher needs milliseconds."""
    patterns = [*PATTERNS, "{direction}_{customer_number}_{agent_id}_{queue}_{team}_{call_id}"]
    names = ["-" * 1000, "_" * 1000, "-_" * 500, "-20261120-143000" * 60, "a-" * 500 + ".wa"]
    started = time.perf_counter()
    for pattern in patterns:
        compiled = FilenamePattern.compile(pattern)
        for name in names:
            check_filename(compiled, name)
    assert time.perf_counter() - started < 5.0


# --- 3. object keys through the real poller ------------------------------------------------------


@pytest.fixture(scope="module")
def audio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-audio")


@pytest.fixture(scope="module")
def short_wav(audio_dir: Path) -> Path:
    return make_recording(audio_dir / "short", seconds=0.5)


def uid() -> str:
    return uuid.uuid4().hex[:12]


def settle(storage: Storage, prefix: str, opts: IngestOptions | None = None) -> list[IngestResult]:
    """One full sweep of the prefix, as the scheduler runs it."""
    opts = opts or options(storage)
    return poll_incoming(storage, now=NOW, options=opts, prefix=prefix, full_sweep=True).results


def assert_nothing_half_done(storage: Storage, prefix: str, call_ids: list[str]) -> None:
    """Incoming handled, every call whole (row, job, original with its checksum, and nothing
    else under its prefix), every refused call id without objects, no scratch copy, and a
    re-run that finds nothing to do."""
    recordings = storage.settings.bucket_recordings
    assert incoming_keys(storage, prefix) == []
    catalogued = {call.id: call for call in calls(storage)}
    with storage.catalogue.session() as session:
        jobs = sorted(job.call_id for job in session.exec(select(Job)))
    assert jobs == sorted(catalogued)
    for call_id in call_ids:
        stored = {
            v.key for v in storage.objects.list_versions(recordings, prefix=call_prefix(call_id))
        }
        call = catalogued.get(call_id)
        if call is None:
            assert stored == set(), f"objects of refused call {call_id!r}: {stored}"
            continue
        assert stored == {call.original_key, call.rendition_key} - {None}
        assert storage.objects.stat(recordings, call.original_key).sha256 == call.sha256
    for item in quarantined(storage):
        assert storage.objects.exists(storage.settings.bucket_quarantine, item.object_key)
    assert list(scratch_root(storage.settings).iterdir()) == []
    assert settle(storage, prefix) == [], "a re-run must be a no-op"


def _near_limit(prefix: str) -> str:
    """A key of (nearly always exactly) 1,024 UTF-8 bytes, S3's limit, in 200-byte folders."""
    room = 1024 - len(prefix.encode()) - len("/x.wav")
    folders = ("k" * 199 + "/") * (room // 200) + "k" * (room % 200)
    return prefix + folders.rstrip("/") + "/x.wav"


KEYS: dict[str, Callable[[str], str]] = {
    "percent-encoded dots": lambda p: p + "%2e%2e/%2e%2e/rec.wav",
    "encoded slashes": lambda p: p + "..%2f..%2frec.wav",
    "dots inside names": lambda p: p + "a..b/...wav",
    "dot file": lambda p: p + ".hidden",
    "leading slash": lambda p: "/" + p + "lead.wav",
    "double slash": lambda p: p + "a//b.wav",
    "nfc": lambda p: p + "caf\u00e9.wav",
    "nfd": lambda p: p + "cafe\u0301.wav",
    "right-to-left override": lambda p: p + "\u202evaw.exe.wav",
    "emoji and spaces": lambda p: p + " 📞 call 😀 .wav",
    "percent sign": lambda p: p + "100% sure%.wav",
    "newline": lambda p: p + "line\nbreak.wav",
    "hostile suffix": lambda p: p + "rec.w@v\\x",
    "long suffix": lambda p: p + "rec." + "x" * 240,
    "upper-case suffix": lambda p: p + "REC.WAV",
    "no suffix": lambda p: p + "rec",
    "longest name": lambda p: p + "é" * 125 + ".wav",
    "longest key": _near_limit,
}


@pytest.mark.parametrize("make_key", list(KEYS.values()), ids=list(KEYS))
def test_an_odd_key_is_ingested_under_its_calls_own_prefix(
    storage: Storage, key_prefix: str, short_wav: Path, make_key: Callable[[str], str]
):
    call_id = f"key-{uid()}"
    drop(
        storage,
        make_key(key_prefix),
        short_wav,
        metadata={"call_id": call_id, "started_at": STARTED},
    )

    [result] = settle(storage, key_prefix)

    assert result.outcome == Outcome.INGESTED, result.reason
    [call] = calls(storage)
    assert call.id == call_id
    folder, name = call.original_key.rsplit("/", 1)
    assert folder.rsplit("/", 1)[0] + "/" == call_prefix(call_id), "one delivery folder deep"
    assert re.fullmatch(r"original\.[a-z0-9]{1,8}", name), name
    original = storage.objects.read(storage.settings.bucket_recordings, call.original_key)
    assert original == short_wav.read_bytes()
    assert_nothing_half_done(storage, key_prefix, [call_id])


@pytest.mark.parametrize(
    "make_key",
    [KEYS["longest key"], KEYS["longest name"], KEYS["newline"]],
    ids=["key", "name", "nl"],
)
def test_an_odd_key_is_quarantined_whole_when_refused(
    storage: Storage,
    key_prefix: str,
    make_key: Callable[[str], str],
    caplog: pytest.LogCaptureFixture,
):
    """A 1,024-byte key cannot take the quarantine's ``ETAG/`` in front: it used to fail on
    every retry and stay in incoming for ever. A newline in a key stays out of the log: one
    event is one line, and a key cannot forge another."""
    key = drop(
        storage,
        make_key(key_prefix),
        b"not audio at all",
        metadata={"call_id": f"q-{uid()}", "started_at": STARTED},
    )

    [result] = settle(storage, key_prefix)

    assert result.outcome == Outcome.QUARANTINED and result.reason.startswith("not_audio: ")
    [item] = quarantined(storage)
    assert item.source_key == key and item.reason == result.reason
    assert len(item.object_key.encode()) <= 1024
    kept = storage.objects.read(storage.settings.bucket_quarantine, item.object_key)
    assert kept == b"not audio at all"
    assert_nothing_half_done(storage, key_prefix, [])
    logged = [r.getMessage() for r in caplog.records if r.name.startswith(("ingest", "storage"))]
    assert any("quarantined" in line for line in logged), logged
    assert all("\n" not in line for line in logged), logged


@pytest.mark.parametrize(
    ("hostile", "words"),
    [
        ("../{id}", "metadata call_id: must be 1-128 characters"),
        ("{id}/../../other", "metadata call_id: must be 1-128 characters"),
        ("{id}/b", "metadata call_id: must be 1-128 characters"),
        ("{id}\\..\\x", "metadata call_id: must be 1-128 characters"),
        ("..", "metadata call_id: must be 1-128 characters"),
        ("{id}%2f..", "metadata call_id: must be 1-128 characters"),
        ("{id}" + "x" * 117, "metadata call_id: must be 1-128 characters"),
        ("{id}" + "x" * 10_000, "metadata call_id: must be 1-128 characters"),
        ("{id}\n", "metadata call_id: holds U+000A"),
        ("{id}\u0000", "metadata call_id: holds U+0000"),
        ("{id}é", "metadata call_id: must be 1-128 characters"),
    ],
    ids=["parent", "climb", "slash", "backslash", "dot-dot", "encoded", "129 chars", "10k chars",
         "newline", "nul", "non-ascii"],
)  # fmt: skip
def test_a_call_id_that_would_leave_its_prefix_is_quarantined(
    storage: Storage, key_prefix: str, short_wav: Path, hostile: str, words: str
):
    call_id = hostile.format(id=f"id-{uid()}")
    sidecar = {"call_id": call_id, "started_at": STARTED}
    drop(storage, key_prefix + "rec.wav", short_wav, sidecar=sidecar)

    [result] = settle(storage, key_prefix)

    assert result.outcome == Outcome.QUARANTINED
    assert words in result.reason
    assert_one_line(result.reason)
    assert calls(storage) == []
    assert_nothing_half_done(storage, key_prefix, [call_id])


def test_a_call_id_with_dots_inside_stays_in_its_own_prefix(
    storage: Storage, key_prefix: str, short_wav: Path
):
    call_id = f"a..b.{uid()}..:@_-"
    drop(
        storage,
        key_prefix + "rec.wav",
        short_wav,
        metadata={"call_id": call_id, "started_at": STARTED},
    )
    [result] = settle(storage, key_prefix)
    assert result.outcome == Outcome.INGESTED, result.reason
    stored = calls(storage)[0].original_key
    assert stored.startswith(f"calls/{call_id}/") and stored.endswith("/original.wav"), stored
    assert_nothing_half_done(storage, key_prefix, [call_id])


@pytest.mark.parametrize(
    ("segment", "reason"),
    [
        ("a/../b.wav", "has a '.' or '..' segment, which callrec cannot address"),
        ("./b.wav", "has a '.' or '..' segment, which callrec cannot address"),
        ("a/./b.wav", "has a '.' or '..' segment, which callrec cannot address"),
        ("a\\..\\b.wav", "S3 error BadRequest"),
    ],
)
def test_a_key_that_climbs_out_of_its_folder_never_arrives_and_is_not_followed(
    storage: Storage, key_prefix: str, short_wav: Path, segment: str, reason: str
):
    """The S3 client (minio-py) or the server (SeaweedFS) refuses to store such a key; AWS S3
    would store it, and then ingest must leave it for a person rather than fail the batch."""
    key = key_prefix + segment
    with pytest.raises((ValueError, ObjectStoreError)):
        drop(storage, key, short_wav, metadata={"call_id": f"c-{uid()}", "started_at": STARTED})
    assert incoming_keys(storage, key_prefix) == []

    result = ingest_or_retry(storage, key, now=NOW, options=options(storage))

    assert result.outcome == Outcome.RETRY and reason in result.reason
    assert_one_line(result.reason)
    assert calls(storage) == [] and quarantined(storage) == []


# --- 4. huge, truncated and foreign audio ------------------------------------------------------


def _claims_gigabytes(wav: bytes) -> bytes:
    at = wav.index(b"data") + 4
    return wav[:at] + (4_000_000_000).to_bytes(4, "little") + wav[at + 4 :]


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_recording_cut_mid_frame_is_quarantined_as_truncated(
    storage: Storage, key_prefix: str, audio_dir: Path, fmt: str
):
    whole = make_recording(audio_dir / f"whole-{fmt}", seconds=3.0, channels=1, fmt=fmt)
    data = whole.read_bytes()
    call_id = f"cut-{uid()}"
    key = drop(
        storage,
        key_prefix + whole.name,
        data[: int(len(data) * 0.6) + 7],
        metadata={"call_id": call_id, "started_at": STARTED},
    )

    result = ingest_object(storage, key, now=NOW, options=options(storage))

    assert result.outcome == Outcome.QUARANTINED
    assert result.reason.startswith("truncated: "), result.reason
    assert_nothing_half_done(storage, key_prefix, [call_id])


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (_claims_gigabytes, "truncated: the WAV header announces 4,000,000,000 bytes of audio"),
        (lambda wav: b"", "empty: "),
        (lambda wav: bytes(reversed(wav)), "not_audio: "),
        (lambda wav: wav[: wav.index(b"data") + 8], "truncated: the WAV header announces"),
    ],
    ids=["header claims 4 GB", "empty", "random-looking bytes", "header only"],
)
def test_damaged_audio_is_quarantined_and_leaves_no_copy(
    storage: Storage, key_prefix: str, short_wav: Path, make: Callable[[bytes], bytes], reason: str
):
    call_id = f"bad-{uid()}"
    payload = make(short_wav.read_bytes())
    key = drop(
        storage,
        key_prefix + "rec.wav",
        payload,
        metadata={"call_id": call_id, "started_at": STARTED},
    )

    result = ingest_object(storage, key, now=NOW, options=options(storage))

    assert result.outcome == Outcome.QUARANTINED and result.reason.startswith(reason), result.reason
    [item] = quarantined(storage)
    assert storage.objects.read(storage.settings.bucket_quarantine, item.object_key) == payload
    assert_nothing_half_done(storage, key_prefix, [call_id])


def _limited(storage: Storage, **settings_update: object) -> IngestOptions:
    """The ingest options as callrec builds them from these settings."""
    changed = storage.settings.model_copy(update=settings_update)
    return IngestOptions.from_settings(dataclasses.replace(storage, settings=changed))


def test_a_recording_larger_than_the_limit_is_refused_before_it_is_downloaded(
    storage: Storage, key_prefix: str, audio_dir: Path
):
    big = make_recording(audio_dir / "forty-seconds", seconds=40.0)  # 1.28 MB of 8 kHz stereo
    call_id = f"big-{uid()}"
    key = drop(
        storage, key_prefix + "big.wav", big, metadata={"call_id": call_id, "started_at": STARTED}
    )

    result = ingest_object(
        storage, key, now=NOW, options=_limited(storage, ingest_max_recording_mb=1)
    )

    assert result.outcome == Outcome.QUARANTINED
    assert result.reason == (
        f"too_large: {big.stat().st_size:,} bytes, more than the 1,000,000 a recording may be "
        "(CALLREC_INGEST_MAX_RECORDING_MB)"
    )
    [item] = quarantined(storage)
    assert item.sha256 is None, "its bytes were never read"
    assert item.started_at == datetime.fromisoformat(STARTED)
    assert_nothing_half_done(storage, key_prefix, [call_id])


@pytest.mark.parametrize("fmt", ["wav-pcm-8k", "mp3", "ogg-opus"])
def test_a_recording_longer_than_the_limit_is_refused_and_one_within_it_ingested(
    storage: Storage, key_prefix: str, audio_dir: Path, fmt: str
):
    """PCM WAV is judged by its header; the others by ffmpeg, which stops decoding a second
    past the limit (so a recording of days does not hold a worker for hours)."""
    recording = make_recording(audio_dir / f"three-s-{fmt}", seconds=3.0, fmt=fmt)
    too_long, fits = f"long-{uid()}", f"fits-{uid()}"
    for call_id in (too_long, fits):
        meta = {"call_id": call_id, "started_at": STARTED}
        drop(storage, f"{key_prefix}{call_id}{recording.suffix}", recording, metadata=meta)

    refused = ingest_object(
        storage,
        f"{key_prefix}{too_long}{recording.suffix}",
        now=NOW,
        options=_limited(storage, ingest_max_call_hours=2 / 3600),
    )
    accepted = ingest_object(
        storage,
        f"{key_prefix}{fits}{recording.suffix}",
        now=NOW,
        options=_limited(storage, ingest_max_call_hours=3.5 / 3600),
    )

    assert refused.outcome == Outcome.QUARANTINED
    assert refused.reason.startswith("too_long: at least 3 s of audio, longer than the 2 s")
    assert accepted.outcome == Outcome.INGESTED, accepted.reason
    assert [call.id for call in calls(storage)] == [fits]
    assert_nothing_half_done(storage, key_prefix, [too_long, fits])


def test_a_quarantined_recording_dated_in_the_future_is_erased_counted_from_its_arrival(
    storage: Storage, key_prefix: str, short_wav: Path
):
    """A start in the year 2999 must not keep a refused recording for centuries."""
    key = drop(
        storage,
        key_prefix + "rec.wav",
        short_wav,
        metadata={"call_id": f"f-{uid()}", "started_at": "2999-01-01T00:00:00Z"},
    )
    result = ingest_object(storage, key, now=NOW, options=options(storage))
    assert result.outcome == Outcome.QUARANTINED and "is in the future" in result.reason
    [item] = quarantined(storage)
    assert item.started_at is None and item.received_at == NOW


# --- 5. any sidecar, end to end on PostgreSQL --------------------------------------------------


@pytest.mark.postgres
@settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    fields=st.dictionaries(spelled_names | st.text(max_size=12), field_values, max_size=3),
    started=st.integers(0, 3).flatmap(
        lambda n: (
            st.sampled_from([STARTED, "2026-11-20 10:00", "2026-11-27T23:59z"])
            if n
            else field_values
        )
    ),
)
def test_any_sidecar_is_ingested_whole_or_refused_on_postgresql(
    pg_storage: Storage, short_wav: Path, fields: dict[str, Any], started: Any
):
    """What the parser accepts, real PostgreSQL stores (its text columns, JSONB and encoding
    are stricter than SQLite's): no exception, no half-done ingest. Call ids start with a token
    of the example's own, to keep apart in the shared bucket and to be found without a query
    carrying the hostile rest (a NUL, say)."""
    token = f"hostile-sidecar-{uid()}"
    prefix = f"t/{token}/"
    hostile = fields.pop("call_id", "")
    call_id = token + hostile if isinstance(hostile, str) else hostile
    fields = {k: v for k, v in fields.items() if "call_id" not in normalise_keys({k: v})}
    sidecar = {"started_at": started, **fields, "call_id": call_id}
    key = drop(pg_storage, prefix + "rec.wav", short_wav, sidecar=sidecar)

    result = ingest_or_retry(pg_storage, key, now=NOW, options=options(pg_storage))

    assert result.outcome in (Outcome.INGESTED, Outcome.QUARANTINED, Outcome.EXPIRED), result
    event(str(result.outcome))
    if result.outcome != Outcome.INGESTED:
        assert_one_line(result.reason)
    assert incoming_keys(pg_storage, prefix) == []
    with pg_storage.catalogue.session() as session:
        [*rows] = session.exec(select(Call).where(col(Call.id).startswith(token)))
        [*items] = session.exec(select(QuarantineItem).where(QuarantineItem.source_key == key))
        [*tombstones] = session.exec(
            select(Tombstone).where(col(Tombstone.call_id).startswith(token))
        )
    assert (len(rows), len(items), len(tombstones)) == (
        result.outcome == Outcome.INGESTED,
        result.outcome == Outcome.QUARANTINED,
        result.outcome == Outcome.EXPIRED,
    )
    call = rows[0] if rows else None
    if call is not None:
        meta = check_metadata(json.loads(json.dumps(sidecar)))
        assert meta is not None, "ingested, so the parser accepted it"
        for name in (*TEXT_FIELDS, "customer_number", "direction", "started_at", "extra"):
            assert getattr(call, name) == getattr(meta, name), f"{name} changed on its way in"
        stored = pg_storage.objects.stat(pg_storage.settings.bucket_recordings, call.original_key)
        assert stored.sha256 == call.sha256


@pytest.mark.postgres
@pytest.mark.parametrize("field", ["agent_id", "team", "queue", "customer_id", "policy_number"])
def test_text_as_wide_as_its_column_is_stored_and_wider_is_refused_on_postgresql(
    pg_storage: Storage, key_prefix: str, short_wav: Path, field: str
):
    """PostgreSQL refuses text wider than a column only after the original is stored: the
    parser must refuse it first."""
    fits, wide = f"w64-{uid()}", f"w65-{uid()}"
    for call_id, width in ((fits, 64), (wide, 65)):
        sidecar = {"call_id": call_id, "started_at": STARTED, field: "é" * width}
        drop(pg_storage, f"{key_prefix}{call_id}.wav", short_wav, sidecar=sidecar)

    results = {r.key: r for r in settle(pg_storage, key_prefix)}

    assert results[f"{key_prefix}{fits}.wav"].outcome == Outcome.INGESTED
    refused = results[f"{key_prefix}{wide}.wav"]
    assert refused.outcome == Outcome.QUARANTINED
    assert refused.reason == f"metadata {field}: String should have at most 64 characters"
    assert_nothing_half_done(pg_storage, key_prefix, [fits, wide])
