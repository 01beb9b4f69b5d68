"""The metadata contract: three sources, one validated result, one-line errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest.filename_pattern import FilenamePattern
from ingest.metadata import MetadataError, MetadataOptions, parse_metadata, started_at_of

BASE = {"call_id": "c-1", "started_at": "2026-03-02T10:00:00+01:00"}


def test_minimal_metadata_is_enough_and_started_at_is_utc():
    meta = parse_metadata(BASE)
    assert meta.call_id == "c-1"
    assert meta.started_at == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert meta.agent_channel == "left"


@pytest.mark.parametrize(
    ("local", "utc", "rule"),
    [
        ("2026-03-29T01:30:00", "2026-03-29T00:30:00+00:00", "before the spring change: CET"),
        ("2026-03-29T02:30:00", "2026-03-29T01:30:00+00:00", "in the spring gap: offset before"),
        ("2026-03-29T03:30:00", "2026-03-29T01:30:00+00:00", "after the spring change: CEST"),
        ("2026-10-25T02:30:00", "2026-10-25T00:30:00+00:00", "twice in autumn: first occurrence"),
        ("2026-10-25T03:30:00", "2026-10-25T02:30:00+00:00", "after the autumn change: CET"),
        ("2026-07-01T12:00:00Z", "2026-07-01T12:00:00+00:00", "an explicit offset wins"),
    ],
)
def test_offset_less_times_follow_the_documented_dst_rule(local: str, utc: str, rule: str):
    meta = parse_metadata({"call_id": "c", "started_at": local})
    assert meta.started_at == datetime.fromisoformat(utc), rule


def test_offset_less_times_use_the_configured_time_zone():
    options = MetadataOptions(timezone="America/New_York")
    meta = parse_metadata({"call_id": "c", "started_at": "2026-07-01T12:00:00"}, options=options)
    assert meta.started_at == datetime(2026, 7, 1, 16, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("0612345678", "+31612345678"),
        ("+31 20 123 4567", "+31201234567"),
        ("0031201234567", "+31201234567"),
        ("+32 2 555 12 12", "+3225551212"),
        ("anonymous", None),
        ("", None),
    ],
)
def test_customer_numbers_are_normalised_to_e164(raw: str, e164: str | None):
    assert parse_metadata({**BASE, "customer_number": raw}).customer_number == e164


def test_keys_match_whatever_the_case_or_separator_and_unknown_keys_are_kept():
    meta = parse_metadata(
        {"Call-Id": "c-9", "STARTED_AT": "2026-03-02T10:00:00Z", "Agent-ID": "a7",
         "x-pbx-node": "n3", "tags": ["vip", "nl"]}
    )  # fmt: skip
    assert (meta.call_id, meta.agent_id) == ("c-9", "a7")
    assert meta.extra == {"x_pbx_node": "n3", "tags": '["vip", "nl"]'}


def test_a_later_source_wins_a_key():
    meta = parse_metadata({**BASE, "agent_id": "from-filename"}, {"agent_id": "from-sidecar"})
    assert meta.agent_id == "from-sidecar"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"call_id": None}, "metadata has no call_id"),
        ({"started_at": None}, "metadata has no started_at"),
        ({"started_at": "yesterday"}, "metadata started_at: 'yesterday' is not an ISO 8601 time"),
        ({"started_at": "2026-02-30T10:00:00"}, "is not an ISO 8601 time"),
        ({"call_id": "../../etc/passwd"}, "metadata call_id: must be 1-128 characters"),
        ({"direction": "sideways"}, "metadata direction: expected one of inbound, outbound"),
        ({"customer_number": "12"}, "metadata customer_number: '12' is not a phone number"),
        ({"agent_channel": "middle"}, "metadata agent_channel: expected one of left, right"),
        ({"language": "dutch"}, "metadata language: expected a two-letter"),
    ],
)
def test_bad_metadata_is_one_line_naming_the_field(change: dict[str, object], message: str):
    raw = {k: v for k, v in {**BASE, **change}.items() if v is not None}
    with pytest.raises(MetadataError) as error:
        parse_metadata(raw)
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_started_at_is_recovered_when_other_fields_are_bad():
    assert started_at_of({"started_at": "2026-03-02T10:00:00Z", "direction": "x"}) == datetime(
        2026, 3, 2, 10, 0, tzinfo=UTC
    )
    assert started_at_of({"started_at": "garbage"}) is None


PATTERN = "{direction}-{customer_number}-{agent_id}-{started:%Y%m%d-%H%M%S}-{call_id}.wav"


def test_filename_pattern_yields_metadata():
    fields = FilenamePattern.compile(PATTERN).parse(
        "inbound-0612345678-a17-20260302-100501-abc123.wav"
    )
    meta = parse_metadata(fields)
    assert meta.direction == "inbound" and meta.customer_number == "+31612345678"
    assert meta.agent_id == "a17" and meta.call_id == "abc123"
    assert meta.started_at == datetime(2026, 3, 2, 9, 5, 1, tzinfo=UTC)  # read in Europe/Amsterdam


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("inbound-0612345678-a17-20260302-abc123.wav", "does not match the pattern"),
        ("inbound-0612345678-a17-20261302-100501-abc123.wav", "is not a time of the form"),
        ("inbound-0612345678-a17-20260302-100501-abc123.mp3", "does not match the pattern"),
    ],
)
def test_a_file_name_that_does_not_fit_the_pattern_is_a_metadata_error(name: str, message: str):
    with pytest.raises(MetadataError, match=message):
        FilenamePattern.compile(PATTERN).parse(name)


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{agent_id}-{started:%Y}.wav", "has no {call_id}"),
        ("{call_id}-{call_id}.wav", "twice"),
        ("{call_id}-{started:%b}.wav", "%b is not supported"),
        ("{call_id}-{agent_id:%Y}.wav", "only {started:FORMAT} takes a format"),
    ],
)
def test_a_bad_pattern_is_refused_when_compiled(pattern: str, message: str):
    with pytest.raises(ValueError, match=message):
        FilenamePattern.compile(pattern)
