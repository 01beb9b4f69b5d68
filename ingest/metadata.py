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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from errors import CallrecError

_CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$")
_WITHHELD = {"", "anonymous", "unknown", "private", "withheld", "restricted", "unavailable"}
AgentChannel = Literal["left", "right"]
SIDECAR_SUFFIX = ".json"  # a sidecar is the recording's key plus this


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
    agent_id: str | None = None
    team: str | None = None
    queue: str | None = None
    direction: Literal["inbound", "outbound"] | None = None
    customer_number: str | None = Field(default=None, description="E.164, e.g. +31612345678")
    customer_id: str | None = None
    policy_number: str | None = None
    agent_channel: AgentChannel = "left"
    language: str | None = None
    extra: dict[str, str] = Field(default_factory=dict)

    @field_validator("call_id")
    @classmethod
    def _safe_call_id(cls, value: str) -> str:
        if not _CALL_ID.match(value):
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
                    f"{value!r} is not an ISO 8601 time such as 2026-03-01T14:05:00+01:00"
                ) from None
        if not isinstance(value, datetime):
            raise ValueError(f"expected an ISO 8601 time, got {value!r}")
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone, fold=0)
        return value.astimezone(UTC)

    @field_validator("direction", mode="before")
    @classmethod
    def _direction(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"in": "inbound", "out": "outbound"}.get(value.strip().lower(), value.lower())
            if value not in ("inbound", "outbound"):
                raise ValueError(f"expected one of inbound, outbound; got {value!r}")
        return value

    @field_validator("agent_channel", mode="before")
    @classmethod
    def _agent_channel(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = {"l": "left", "0": "left", "r": "right", "1": "right"}.get(
                value.strip().lower(), value.strip().lower()
            )
            if value not in ("left", "right"):
                raise ValueError(f"expected one of left, right; got {value!r}")
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
            raise ValueError(f"{value!r} is not a phone number")
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[a-z]{2}", value):
            raise ValueError(f"expected a two-letter ISO 639-1 code such as 'nl', got {value!r}")
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
    try:
        return CallMetadata.model_validate({**known, "extra": extra}, context={"options": options})
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else ""
        if error["type"] == "missing":
            raise MetadataError(f"metadata has no {field}", field=field) from None
        reason = str(error["msg"]).removeprefix("Value error, ")
        raise MetadataError(f"metadata {field}: {reason}", field=field) from None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
