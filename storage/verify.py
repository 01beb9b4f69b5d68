"""Verification: does what is stored match the catalogue and the retention promise?

Purging deletes what the catalogue knows about; verification looks from the other side, at
every object version in the buckets, so bytes the catalogue lost track of (a crash between an
upload and its row, a manual copy) cannot hide. It reports, without changing anything:
objects of no catalogued call (orphans), calls whose stored original is gone, anything past
its deadline without an active hold, and whether the lifecycle backstop under the purge
(``storage.backstop``) is in place with the days the settings ask for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel import col, select

from storage.backstop import BackstopStatus, backstop_status
from storage.catalogue import Call, Export, Hold, QuarantineItem
from storage.connect import Storage
from storage.retention import is_expired


@dataclass(frozen=True)
class VerifyReport:
    """Every finding names the bucket and key or the call, so it can be acted on."""

    orphan_objects: list[str] = field(default_factory=list)  # bucket/key without a catalogue row
    missing_objects: list[str] = field(default_factory=list)  # call id whose original is gone
    past_deadline: list[str] = field(default_factory=list)  # call ids or bucket/keys, not held
    backstop: BackstopStatus | None = (
        None  # the recordings bucket's lifecycle rule; None: unchecked
    )

    @property
    def ok(self) -> bool:
        findings = self.orphan_objects or self.missing_objects or self.past_deadline
        return not findings and (self.backstop is None or self.backstop.ok)

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "orphan_objects": self.orphan_objects,
            "missing_objects": self.missing_objects,
            "past_deadline": self.past_deadline,
            "backstop": self.backstop.to_dict() if self.backstop else None,
        }


def verify(storage: Storage, *, now: datetime) -> VerifyReport:
    """Scan every bucket that can hold call data (every version) and the catalogue."""
    settings = storage.settings
    retention = settings.retention_days
    with storage.catalogue.session() as session:
        calls = {call.id: call for call in session.exec(select(Call))}
        held = set(session.exec(select(Hold.call_id).where(col(Hold.released_at).is_(None))))
        quarantined = {item.object_key: item for item in session.exec(select(QuarantineItem))}
        exports = {export.id: export for export in session.exec(select(Export))}

    orphans: list[str] = []
    present: set[str] = set()
    for version in storage.objects.list_versions(settings.bucket_recordings):
        present.add(version.key)
        call_id = version.key.split("/")[1] if version.key.startswith("calls/") else None
        if call_id not in calls:
            orphans.append(f"{settings.bucket_recordings}/{version.key}")
    late = [
        c.id
        for c in calls.values()
        if c.id not in held and is_expired(c.started_at, retention, now)
    ]
    missing = [c.id for c in calls.values() if c.original_key not in present]

    for version in storage.objects.list_versions(settings.bucket_quarantine):
        item = quarantined.get(version.key.removesuffix(".json"))
        where = f"{settings.bucket_quarantine}/{version.key}"
        if item is None:
            orphans.append(where)
        elif is_expired(item.started_at or item.received_at, retention, now):
            late.append(where)
    # An export lives until its expiry; the expire-exports job runs as often as the purge.
    overdue = now - timedelta(seconds=settings.purge_interval_s)
    for version in storage.objects.list_versions(settings.bucket_exports):
        export = exports.get(version.key.split("/", 1)[0])
        where = f"{settings.bucket_exports}/{version.key}"
        if export is None:
            orphans.append(where)
        elif export.expires_at <= overdue:
            late.append(where)
    # Incoming should be empty within minutes; anything there as long as the retention period
    # was never ingested and has outlived the promise.
    for version in storage.objects.list_versions(settings.bucket_incoming):
        if version.last_modified and version.last_modified <= now - timedelta(days=retention):
            late.append(f"{settings.bucket_incoming}/{version.key}")
    return VerifyReport(
        orphan_objects=sorted(orphans),
        missing_objects=sorted(missing),
        past_deadline=sorted(late),
        backstop=backstop_status(storage),
    )
