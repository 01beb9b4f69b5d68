"""The lifecycle backstop: should the purge ever stop running, S3 itself still expires calls.

The purge is how callrec keeps its retention promise; this is the net under it. The recordings
bucket carries one lifecycle rule, ``callrec-backstop``: a version under ``calls/`` tagged
``callrec-retention=standard`` expires ``retention_days + lifecycle_backstop_days`` after it was
written, and a version that is no longer current goes a day later. A call's objects are written
after the call started, so the rule never fires before the call's deadline; it only catches what
the purge missed. Ingest tags every object it writes ``standard``; a hold retags a call's
versions ``held`` (``storage.holds``), which takes them out of the rule until the release.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from settings import Settings
from storage.connect import Storage

RETENTION_TAG = "callrec-retention"
STANDARD = "standard"  # expires by the backstop rule
HELD = "held"  # kept: out of the rule while a hold lasts
# What every object of a call is written with (ingest), so the rule covers it from the start.
STANDARD_TAGS: Mapping[str, str] = MappingProxyType({RETENTION_TAG: STANDARD})
RULE_ID = "callrec-backstop"
PREFIX = "calls/"  # where every call's objects live (storage.purge.call_prefix)
# An overwritten or expired version of a call that is not held goes the day after, so no older
# copy outlives the current one by more than a day.
NONCURRENT_DAYS = 1


@dataclass(frozen=True)
class BackstopStatus:
    """Whether the recordings bucket's rule is in place with the days the settings ask for."""

    days: int | None  # the rule's expiration days; None when the rule is missing
    expected_days: int

    @property
    def present(self) -> bool:
        return self.days is not None

    @property
    def ok(self) -> bool:
        return self.days == self.expected_days

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "present": self.present,
            "days": self.days,
            "expected_days": self.expected_days,
        }


def expected_days(settings: Settings) -> int:
    """Days after an object is written at which the backstop expires it."""
    return settings.retention_days + settings.lifecycle_backstop_days


def ensure_backstop(storage: Storage) -> None:
    """Put the backstop rule on the recordings bucket unless it is there with the right days
    (so every start applies a changed retention setting, and costs one read otherwise).

    Raises:
        ObjectStoreError: The server refused the rule (e.g. it does not support lifecycle).
    """
    status = backstop_status(storage)
    if status.ok:
        return
    storage.objects.set_expiry_rule(
        storage.settings.bucket_recordings,
        rule_id=RULE_ID,
        prefix=PREFIX,
        days=status.expected_days,
        tag=(RETENTION_TAG, STANDARD),
        noncurrent_days=NONCURRENT_DAYS,
    )


def backstop_status(storage: Storage) -> BackstopStatus:
    """The rule as the server has it, against the days the settings ask for."""
    return BackstopStatus(
        days=storage.objects.expiry_rule(storage.settings.bucket_recordings, RULE_ID),
        expected_days=expected_days(storage.settings),
    )
