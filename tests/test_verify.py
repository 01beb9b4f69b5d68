"""`verify` finds what purging alone cannot: orphans, missing originals, anything too old."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.backstop import ensure_backstop
from storage.catalogue import Catalogue, Hold
from storage.connect import Storage
from storage.embedded_s3 import S3Endpoint
from storage.objects import ObjectStore
from storage.verify import verify
from tests.stores import callrec_env, settings_for
from tests.test_purge import ingest_at

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


@pytest.fixture
def own_buckets(
    tmp_path: Path, s3_endpoint: S3Endpoint, object_store: ObjectStore
) -> Iterator[Storage]:
    """Verify scans whole buckets, so this test gets buckets of its own on the shared server."""
    tag = uuid.uuid4().hex[:8]
    settings = settings_for(
        tmp_path / "data", s3_endpoint, bucket_incoming=f"in-{tag}", bucket_recordings=f"rec-{tag}",
        bucket_quarantine=f"q-{tag}", bucket_exports=f"ex-{tag}",
    )  # fmt: skip
    object_store.ensure_buckets(settings.buckets)
    catalogue = Catalogue.open(settings.catalogue_url)
    storage = Storage(settings=settings, objects=object_store, catalogue=catalogue)
    ensure_backstop(storage)  # as open_storage does: part of a consistent installation
    try:
        yield storage
    finally:
        catalogue.close()


def test_a_consistent_installation_verifies_ok(own_buckets: Storage, tmp_path: Path):
    ingest_at(own_buckets, tmp_path, "fine", NOW - 10 * DAY)
    assert verify(own_buckets, now=NOW).ok


def test_verify_catches_a_planted_orphan_object(own_buckets: Storage, tmp_path: Path):
    ingest_at(own_buckets, tmp_path, "fine", NOW - 10 * DAY)
    bucket = own_buckets.settings.bucket_recordings
    own_buckets.objects.put(bucket, "calls/ghost/original.wav", b"bytes nobody knows about")
    own_buckets.objects.put(own_buckets.settings.bucket_quarantine, "x/stray.wav", b"no row")
    report = verify(own_buckets, now=NOW)
    assert set(report.orphan_objects) == {
        f"{bucket}/calls/ghost/original.wav",
        f"{own_buckets.settings.bucket_quarantine}/x/stray.wav",
    }
    assert not report.missing_objects and not report.past_deadline


def test_verify_catches_a_row_whose_object_is_gone(own_buckets: Storage, tmp_path: Path):
    call = ingest_at(own_buckets, tmp_path, "lost", NOW - 10 * DAY)
    own_buckets.objects.delete(own_buckets.settings.bucket_recordings, call.original_key)
    assert verify(own_buckets, now=NOW).missing_objects == [call.id]


def test_verify_catches_what_is_too_old_unless_it_is_held(own_buckets: Storage, tmp_path: Path):
    old = ingest_at(own_buckets, tmp_path, "old", NOW - 181 * DAY)
    held = ingest_at(own_buckets, tmp_path, "held", NOW - 181 * DAY)
    with own_buckets.catalogue.session() as session:
        session.add(Hold(call_id=held.id, reason="dispute", review_at=NOW + DAY, created_by="h"))
    own_buckets.objects.put(
        own_buckets.settings.bucket_incoming, "pbx/forgotten.wav", b"never ingested"
    )
    report = verify(own_buckets, now=NOW)
    assert report.past_deadline == [old.id]
    later = verify(own_buckets, now=NOW + 181 * DAY)
    assert f"{own_buckets.settings.bucket_incoming}/pbx/forgotten.wav" in later.past_deadline


def test_callrec_verify_exits_1_on_a_problem(own_buckets: Storage, tmp_path: Path):
    callrec = str(Path(sys.executable).parent / "callrec")
    env = callrec_env(own_buckets) | {
        f"CALLREC_BUCKET_{name.upper()}": getattr(own_buckets.settings, f"bucket_{name}")
        for name in ("incoming", "recordings", "quarantine", "exports")
    }
    clean = subprocess.run(
        [callrec, "verify"], env=env, capture_output=True, text=True, timeout=120
    )
    assert clean.returncode == 0 and clean.stdout.strip() == "verify: ok", clean.stderr
    own_buckets.objects.put(own_buckets.settings.bucket_recordings, "calls/ghost/x.wav", b"?")
    found = subprocess.run(
        [callrec, "verify"], env=env, capture_output=True, text=True, timeout=120
    )
    assert found.returncode == 1
    assert (
        "object without a catalogued call" in found.stdout and "calls/ghost/x.wav" in found.stdout
    )


def test_verify_catches_an_export_without_its_row_and_one_kept_past_its_expiry(
    own_buckets: Storage, tmp_path: Path
):
    from storage.catalogue import Export

    exports = own_buckets.settings.bucket_exports
    own_buckets.objects.put(exports, "exp-left/customer-export.zip", b"zip of a crashed export")
    own_buckets.objects.put(exports, "exp-old/customer-export.zip", b"zip nobody expired")
    own_buckets.objects.put(exports, "exp-new/customer-export.zip", b"zip in its download period")
    with own_buckets.catalogue.session() as session:
        for export_id, expires in (("exp-old", NOW - 2 * DAY), ("exp-new", NOW + DAY)):
            session.add(
                Export(
                    id=export_id, kind="customer", object_key=f"{export_id}/customer-export.zip",
                    reason="access request", created_by="t", expires_at=expires,
                )
            )  # fmt: skip
    report = verify(own_buckets, now=NOW)
    assert report.orphan_objects == [f"{exports}/exp-left/customer-export.zip"]
    assert report.past_deadline == [f"{exports}/exp-old/customer-export.zip"]
