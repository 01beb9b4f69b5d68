"""The metadata contract between the telephony system and callrec.

A PBX describes a recording with S3 user metadata on the object, a JSON sidecar (same key plus
``.json``) or only its file name; all three arrive here as a flat mapping and leave as one
validated :class:`CallMetadata`. Keys are matched case-insensitively with ``-`` and ``_`` treated
alike (HTTP headers often turn one into the other); keys callrec does not know are kept in
``extra`` rather than dropped, because a dispute may need them.

Offset-less times are read in the configured time zone. Around a DST change the rule is
Python's ``fold=0``: a wall time that occurs twice (autumn) is the *first* occurrence, and a wall
time that does not exist (spring) is read with the offset in force *before* the change (02:30
on the spring-forward day is 01:30 UTC, shown as 03:30). Never an error.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from errors import CallrecError

_CALL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")  # fullmatch: "$" passes a "\n"
# The width of the catalogue's text columns (storage.catalogue.Call): longer text would be
# refused by PostgreSQL only after the original was stored.
_TEXT_MAX = 64
# Control characters (NUL above all) and lone surrogates (JSON's "\ud800") cannot be stored:
# PostgreSQL refuses NUL in text and JSONB, and neither database encodes a surrogate.
_UNSTORABLE = {"Cc", "Cs"}
_SHOWN = 60  # characters of a refused value's repr quoted in its error
_WITHHELD = {"", "anonymous", "unknown", "private", "withheld", "restricted", "unavailable"}
AgentChannel = Literal["left", "right"]
SIDECAR_SUFFIX = ".json"  # a sidecar is the recording's key plus this
MAX_SIDECAR_BYTES = 64 * 1024  # one call's metadata is a few hundred bytes: more is not a sidecar


class MetadataError(CallrecError):
    """Metadata is missing or invalid; the message names the field and the rule it broke."""

    def __init__(self, message: str, *, field: str = "") -> None:
        super().__init__(message, hint="fix the metadata and upload the recording again")
        self.field = field


@dataclass(frozen=True)
class MetadataOptions:
    """How offset-less times, national numbers and channel layouts are read."""

    timezone: str = "Europe/Amsterdam"
    default_region: str = "NL"
    agent_channel: AgentChannel = "left"


class CallMetadata(BaseModel):
    """One call's validated metadata. ``started_at`` is always aware UTC."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    call_id: str
    started_at: datetime
    agent_id: str | None = Field(default=None, max_length=_TEXT_MAX)
    team: str | None = Field(default=None, max_length=_TEXT_MAX)
    queue: str | None = Field(default=None, max_length=_TEXT_MAX)
    direction: Literal["inbound", "outbound"] | None = None
    customer_number: str | None = Field(default=None, description="E.164, e.g. +31612345678")
    customer_id: str | None = Field(default=None, max_length=_TEXT_MAX)
    policy_number: str | None = Field(default=None, max_length=_TEXT_MAX)
    agent_channel: AgentChannel = "left"
    language: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("call_id")
    @classmethod
    def _safe_call_id(cls, value: str) -> str:
        if not _CALL_ID.fullmatch(value):
            raise ValueError(
                "must be 1-128 characters of letters, digits and . _ : @ - (starting with a "
                "letter or digit), because it names the stored objects"
            )
        return value

    @field_validator("started_at", mode="before")
    @classmethod
    def _instant(cls, value: Any, info: ValidationInfo) -> datetime:
        zone = ZoneInfo(_context(info).timezone)
        if isinstance(value, str):
            text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
            try:
                value = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(
                    f"{quoted(value)} is not an ISO 8601 time such as 2026-03-01T14:05:00+01:00"
                ) from None
        if not isinstance(value, datetime):
            raise ValueError(f"expected an ISO 8601 time, got {quoted(value)}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone, fold=0)
        try:
            return value.astimezone(UTC)
        except OverflowError:  # 0001-01-01 east of UTC, 9999-12-31 west of it
            raise ValueError(f"{value.isoformat()} falls outside the years 1-9999 in UTC") from None

    @field_validator("direction", mode="before")
    @classmethod
    def _direction(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"in": "inbound", "out": "outbound"}.get(value.strip().lower(), value.lower())
            if value not in ("inbound", "outbound"):
                raise ValueError(f"expected one of inbound, outbound; got {quoted(value)}")
        return value

    @field_validator("agent_channel", mode="before")
    @classmethod
    def _agent_channel(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"l": "left", "0": "left", "r": "right", "1": "right"}.get(
                value.strip().lower(), value.strip().lower()
            )
            if value not in ("left", "right"):
                raise ValueError(f"expected one of left, right; got {quoted(value)}")
        return value

    @field_validator("customer_number", mode="before")
    @classmethod
    def _e164(cls, value: Any, info: ValidationInfo) -> str | None:
        if value is None or str(value).strip().lower() in _WITHHELD:
            return None  # a withheld caller id is normal, not an error
        try:
            number = phonenumbers.parse(str(value), _context(info).default_region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_possible_number(number):
            raise ValueError(f"{quoted(value)} is not a phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z]{2}", value):
            raise ValueError(
                f"expected a two-letter ISO 639-1 code such as 'nl', got {quoted(value)}"
            )
        return value


_KNOWN = set(CallMetadata.model_fields) - {"extra"}
_ALIASES = {"started": "started_at", "start_time": "started_at", "agent": "agent_id"}


def _context(info: ValidationInfo) -> MetadataOptions:
    context = info.context
    return context["options"] if context else MetadataOptions()


def normalise_keys(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Lower-case keys with ``-`` read as ``_`` (``Call-Id`` and ``call_id`` are one key)."""
    normal: dict[str, Any] = {}
    for key, value in raw.items():
        name = key.strip().lower().replace("-", "_")
        normal[_ALIASES.get(name, name)] = value
    return normal


def _merge(sources: tuple[Mapping[str, Any], ...]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for source in sources:
        merged.update({k: v for k, v in normalise_keys(source).items() if v is not None})
    return merged


def started_at_of(
    *sources: Mapping[str, Any], options: MetadataOptions | None = None
) -> datetime | None:
    """The start time alone, when the rest of the metadata is unusable: a quarantined recording
    must still be erased at its own deadline, not at one counted from its arrival."""
    value = _merge(sources).get("started_at")
    try:
        call = CallMetadata.model_validate(
            {"call_id": "probe", "started_at": value},
            context={"options": options or MetadataOptions()},
        )
    except ValidationError:
        return None
    return call.started_at


def parse_metadata(
    *sources: Mapping[str, Any], options: MetadataOptions | None = None
) -> CallMetadata:
    """Validate metadata merged from several sources; a later source wins a key.

    Args:
        sources: Flat mappings, lowest priority first (file name, S3 user metadata, sidecar).
        options: Time zone, phone region and default channel layout.

    Raises:
        MetadataError: A required key is missing or a value is invalid (one line, naming it).
    """
    options = options or MetadataOptions()
    merged = _merge(sources)
    known = {k: v for k, v in merged.items() if k in _KNOWN and v != ""}
    known.setdefault("agent_channel", options.agent_channel)
    extra = {k: _as_text(v) for k, v in merged.items() if k not in _KNOWN}
    _refuse_unstorable({**known, **extra})
    try:
        return CallMetadata.model_validate({**known, "extra": extra}, context={"options": options})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "missing":
            raise MetadataError(f"metadata has no {field}", field=field) from None
        reason = str(error["msg"]).removeprefix("Value error, ")
        raise MetadataError(f"metadata {field}: {reason}", field=field) from None


def parse_sidecar(raw: bytes, *, name: str) -> dict[str, Any]:
    """The mapping in a JSON sidecar's bytes, for :func:`parse_metadata`.

    Args:
        raw: The bytes as read (callers read at most ``MAX_SIDECAR_BYTES + 1``).
        name: The sidecar's key, for the error.

    Raises:
        MetadataError: Too large, not UTF-8 JSON, nested too deeply, or not a JSON object.
    """
    if len(raw) > MAX_SIDECAR_BYTES:
        message = f"sidecar {quoted(name)} is larger than {MAX_SIDECAR_BYTES:,} bytes"
        raise MetadataError(f"{message}; it should hold one call's metadata")
    try:
        data = json.loads(raw)
    except ValueError as exc:  # bad JSON or UTF-8, or an integer of more than 4,300 digits
        reason = str(exc).split("; use ")[0]
        raise MetadataError(f"sidecar {quoted(name)} is not valid JSON ({reason})") from None
    except RecursionError:
        raise MetadataError(f"sidecar {quoted(name)} is nested too deeply to be metadata") from None
    if not isinstance(data, dict):
        raise MetadataError(f"sidecar {quoted(name)} must hold a JSON object")
    return data


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _refuse_unstorable(fields: Mapping[str, Any]) -> None:
    """Refuse a key or text value the catalogue could not store, before anything is stored."""
    for key, value in fields.items():
        for text in (key, value) if isinstance(value, str) else (key,):
            bad = next((c for c in text if unicodedata.category(c) in _UNSTORABLE), None)
            if bad is not None:
                name = key if key.isprintable() and len(key) <= _SHOWN else quoted(key)
                message = f"metadata {name}: holds U+{ord(bad):04X}, a character that is not text"
                raise MetadataError(message, field=key)


def quoted(value: Any) -> str:
    """A value quoted in an error: escaped to one line (``repr``), and cut short, since it may
    be megabytes or a thousand astral characters of ten escaped characters each."""
    text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
