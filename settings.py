"""Every setting of callrec, in one typed place.

Values come from environment variables prefixed ``CALLREC_`` (or a ``.env`` file in the working
directory); every field has a default so an empty environment gives a working embedded
installation under ``data_dir``. A mistyped value or an unknown ``CALLREC_`` variable stops the
program at start with the key, what was expected and a hint, instead of being ignored.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from errors import SettingsError

ENV_PREFIX = "CALLREC_"


@dataclass(frozen=True)
class BucketNames:
    """The four buckets callrec uses; names are configurable so one S3 account can host several
    installations."""

    incoming: str
    recordings: str
    quarantine: str
    exports: str

    def all(self) -> tuple[str, ...]:
        return (self.incoming, self.recordings, self.quarantine, self.exports)


class Settings(BaseSettings):
    """The effective configuration. Build it with :func:`load_settings`, not directly."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="forbid", validate_default=True
    )

    data_dir: Path = Field(
        default=Path.home() / ".local" / "share" / "callrec",
        description="Everything the embedded default keeps (catalogue, S3 data, keys, model) lives "
        "here; an empty folder is a fresh installation.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the catalogue, e.g. postgresql+psycopg://user:pw@host/db. "
        "Empty: a SQLite file in the data directory.",
    )
    s3_endpoint: str | None = Field(
        default=None,
        description="host:port of the S3 server (MinIO or any S3). Empty: callrec starts and "
        "supervises a local SeaweedFS server under the data directory.",
    )
    s3_access_key: str | None = Field(
        default=None,
        description="S3 access key (ignored by the embedded server, which generates its own).",
    )
    s3_secret_key: SecretStr | None = Field(
        default=None, description="S3 secret key (ignored by the embedded server)."
    )
    s3_secure: bool = Field(default=False, description="Use TLS (https) to reach the S3 server.")
    s3_region: str = Field(default="us-east-1", description="S3 region used for request signing.")
    bucket_incoming: str = Field(
        default="incoming", description="Where the telephony system drops new recordings."
    )
    bucket_recordings: str = Field(
        default="recordings", description="Originals and playback renditions (versioned)."
    )
    bucket_quarantine: str = Field(
        default="quarantine", description="Rejected input, kept with its reason until its deadline."
    )
    bucket_exports: str = Field(
        default="exports", description="Short-lived exports (disputes, access requests)."
    )
    retention_days: int = Field(
        default=180,
        ge=1,
        description="Days after a call's start at which every trace of it is erased (the privacy "
        "statement's promise).",
    )
    model: Path | None = Field(
        default=None,
        description="Folder of a CTranslate2 Whisper model. Empty: the bundled Whisper base.",
    )
    language: str = Field(default="nl", description="Language of the calls (ISO 639-1 code).")
    timezone: str = Field(
        default="Europe/Amsterdam",
        description="Time zone for reading offset-less timestamps and for display.",
    )
    ui_host: str = Field(default="127.0.0.1", description="Address the review app listens on.")
    ui_port: int = Field(default=8501, ge=1, le=65535, description="Port of the review app.")
    phone_region: str = Field(
        default="NL",
        description="Region for reading national phone numbers (ISO 3166 code) before E.164.",
    )
    agent_channel: Literal["left", "right"] = Field(
        default="left", description="Which channel of a stereo recording is the agent."
    )
    filename_pattern: str | None = Field(
        default=None,
        description="Metadata from file names, e.g. "
        "{direction}-{customer_number}-{agent_id}-{started:%Y%m%d-%H%M%S}-{call_id}.wav",
    )
    ingest_metadata_grace_s: float = Field(
        default=120.0,
        ge=0,
        description="How long a recording without metadata waits for its sidecar before it is "
        "quarantined.",
    )
    ingest_workers: int = Field(
        default=4, ge=1, le=64, description="Recordings ingested at once by one process."
    )
    ingest_max_recording_mb: int = Field(
        default=2000,
        ge=1,
        description="Largest recording accepted, in MB (2000: 17 hours of 8 kHz stereo WAV); a "
        "larger one is quarantined before it is downloaded.",
    )
    ingest_max_call_hours: float = Field(
        default=12.0,
        gt=0,
        description="Longest recording accepted, in hours (a line left open records for days); "
        "a longer one is quarantined, and ffmpeg stops decoding it at this length.",
    )
    poll_interval_s: float = Field(
        default=10.0, gt=0, description="Seconds between polls of the incoming bucket."
    )
    sweep_interval_s: float = Field(
        default=900.0,
        gt=0,
        description="Seconds between full sweeps of the incoming bucket (stragglers behind the "
        "checkpoint).",
    )
    purge_interval_s: float = Field(
        default=3600.0,
        gt=0,
        le=3600.0,
        description="Seconds between purges (at most hourly); each erases what would pass its "
        "deadline before the next.",
    )
    lifecycle_backstop_days: int = Field(
        default=3,
        ge=1,
        description="Days after the retention period at which the recordings bucket's own "
        "lifecycle rule expires a call's objects that are not held, should the purge stop.",
    )
    verify_interval_s: float = Field(
        default=86400.0,
        gt=0,
        description="Seconds between verifications of every bucket against the catalogue and the "
        "deadline (daily); the last result shows in `callrec status`.",
    )
    export_ttl_s: int = Field(
        default=604800,
        gt=0,
        le=604800,
        description="Seconds an export (an access request's zip) and its download link live "
        "before both are deleted; at most 7 days, the longest an S3 link can be valid.",
    )
    device: Literal["cpu", "cuda"] = Field(
        default="cpu", description="Where the worker runs the model: cpu (int8) or cuda (float16)."
    )
    worker_concurrency: int = Field(
        default=1, ge=1, le=32, description="Calls one worker process transcribes at once."
    )
    worker_lease_s: float = Field(
        default=300.0,
        gt=0,
        description="A claimed job's lease; renewed while it runs, taken over when it runs out.",
    )
    worker_max_attempts: int = Field(
        default=3, ge=1, description="Attempts before a transcription job is marked failed."
    )
    transcribe_batched: bool = Field(
        default=True,
        description="Decode with faster-whisper's BatchedInferencePipeline (faster on long calls).",
    )
    transcribe_batch_size: int = Field(
        default=8, ge=1, le=64, description="Speech chunks decoded together when batched."
    )
    transcribe_beam_size: int = Field(default=5, ge=1, le=10, description="Beam search width.")
    s3_start_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="How long to wait for the embedded S3 server to accept a PUT.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; expected an IANA name such as Europe/Amsterdam"
            ) from None
        return value

    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str) -> str:
        if not (len(value) == 2 and value.isalpha() and value.islower()):
            raise ValueError(
                f"expected a two-letter lowercase ISO 639-1 code such as 'nl', got {value!r}"
            )
        return value

    @field_validator("filename_pattern")
    @classmethod
    def _compilable_pattern(cls, value: str | None) -> str | None:
        if value:
            from ingest.filename_pattern import FilenamePattern

            FilenamePattern.compile(value)
        return value

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        import phonenumbers

        if value.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"expected a two-letter region such as NL or BE, got {value!r}")
        return value.upper()

    @property
    def catalogue_url(self) -> str:
        """The database URL in effect (the SQLite default is derived from ``data_dir``)."""
        return self.database_url or f"sqlite:///{self.data_dir / 'catalogue.db'}"

    @property
    def embedded_s3(self) -> bool:
        """True when callrec runs its own S3 server instead of using ``s3_endpoint``."""
        return not self.s3_endpoint

    @property
    def buckets(self) -> BucketNames:
        return BucketNames(
            incoming=self.bucket_incoming,
            recordings=self.bucket_recordings,
            quarantine=self.bucket_quarantine,
            exports=self.bucket_exports,
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def env_name(field: str) -> str:
    return f"{ENV_PREFIX}{field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment (and ``.env``), failing clearly on any mistake.

    Args:
        overrides: Field values that win over the environment (used by tests and the CLI).

    Raises:
        SettingsError: An unknown ``CALLREC_`` variable or a value of the wrong type; the message
            names the variable, what was expected, and the closest known name where it looks
            like a typo.
    """
    _reject_unknown_variables(os.environ)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        if first["type"] == "extra_forbidden":
            raise _unknown_variable(env_name(field)) from None
        raise SettingsError(
            f"{env_name(field)}={first.get('input')!r} is not valid: {first['msg']}",
            hint=f"fix it in the environment or .env ({Settings.model_fields[field].description})",
        ) from None


def _reject_unknown_variables(environ: os._Environ[str] | dict[str, str]) -> None:
    for key in environ:
        if (
            key.startswith(ENV_PREFIX)
            and key[len(ENV_PREFIX) :].lower() not in Settings.model_fields
        ):
            raise _unknown_variable(key)


def _unknown_variable(key: str) -> SettingsError:
    known = [env_name(name) for name in Settings.model_fields]
    close = difflib.get_close_matches(key.upper(), known, n=1)
    hint = f"did you mean {close[0]}?" if close else "run `callrec config` to list the settings"
    return SettingsError(f"unknown setting {key}", hint=hint)


def effective_settings(settings: Settings) -> dict[str, str]:
    """Every setting as its environment variable and printable value, secrets masked."""
    from sqlalchemy.engine import make_url

    shown: dict[str, str] = {}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            text = "********" if value.get_secret_value() else ""
        elif value is None:
            text = ""
        else:
            text = str(value)
        shown[env_name(name)] = text
    shown[env_name("database_url")] = make_url(settings.catalogue_url).render_as_string(
        hide_password=True
    )
    if settings.embedded_s3:
        shown[env_name("s3_endpoint")] = f"(embedded SeaweedFS under {settings.data_dir / 's3'})"
    return shown
