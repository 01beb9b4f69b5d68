"""The recovery guarantees, checked against the real stores after a fault and a re-run.

After a process was killed or a server restarted mid-batch, and the work was run again to
completion, every recording put in must be accounted for exactly once, nothing may be left
behind in any bucket, and no transcription job may be stuck. :func:`assert_recovered` asserts
all of it for the recordings a test put in, so the fault tests and the crash tests prove the
same thing. The buckets may be shared with other tests: only what belongs to the given
recordings (their call ids, their incoming keys) is judged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import col, select

from storage.access import Role, Viewer
from storage.calls import CallFilters, find_calls
from storage.catalogue import Call, CallState, Job, JobState, QuarantineItem, Segment, Tombstone
from storage.catalogue import Transcript as TranscriptRow
from storage.connect import Storage
from storage.objects import sha256_of
from storage.purge import call_prefix
from storage.scratch import scratch_root
from storage.verify import verify
from tests.test_purge import rows_of
from tests.test_purge_properties import Trace, trace


@dataclass(frozen=True)
class Source:
    """One recording put in: where it arrived, the call id its metadata names and its bytes."""

    key: str  # its key in the incoming bucket
    call_id: str | None  # None when its metadata names none (it can only be quarantined)
    sha256: str

    @classmethod
    def of(cls, key: str, path: Path, call_id: str | None) -> Source:
        return cls(key=key, call_id=call_id, sha256=sha256_of(path)[0])


def assert_recovered(
    storage: Storage, sources: Sequence[Source], *, now: datetime, erased: Collection[str] = ()
) -> None:
    """Assert the guarantees for ``sources``, with no process working on them any more.

    - Each source is exactly one of: the catalogued call of its call id *with its bytes* (same
      sha256), or one quarantine item (with a reason, its object in the quarantine bucket). A
      source whose call id is in ``erased`` was purged instead: no row of it in any table, no
      object version, and a tombstone.
    - Nothing twice: no two calls hold the same bytes; a call's objects are its original (whose
      stored sha256 is the call's) and its rendition, one version each, no delete marker.
    - Nothing left over: no source (or its sidecar) in the incoming bucket, no copy of a
      recording in a scratch folder, and ``verify`` finds no orphan object, missing original or
      overdue item of these sources.
    - Nothing stuck, judged at ``now``, which must be later than any dead worker's lease: each
      call has one transcription job, and that job is ``done`` (one transcript, call
      ``transcribed``), ``failed`` with its error (call ``failed``), ``queued``, or ``running``
      with a lease that has run out — claimable by the next worker. ``running`` under a live
      lease is stuck (no worker is alive to finish it), as is a call left ``erasing``.
    """
    kept = [s for s in sources if s.call_id not in erased]
    call_ids = {s.call_id for s in sources if s.call_id is not None}
    keys = {s.key for s in sources}
    with storage.catalogue.session() as session:
        calls = {c.id: c for c in session.exec(select(Call).where(col(Call.id).in_(call_ids)))}
        items = list(
            session.exec(select(QuarantineItem).where(col(QuarantineItem.source_key).in_(keys)))
        )
        jobs = list(session.exec(select(Job).where(col(Job.call_id).in_(call_ids))))
        transcripts = Counter(
            session.exec(
                select(TranscriptRow.call_id).where(col(TranscriptRow.call_id).in_(call_ids))
            )
        )
        with_segments = set(
            session.exec(select(Segment.call_id).where(col(Segment.call_id).in_(call_ids)))
        )
        tombstoned = set(
            session.exec(select(Tombstone.call_id).where(col(Tombstone.call_id).in_(list(erased))))
        )

    quarantined = Counter(item.source_key for item in items)
    for source in kept:
        call = calls.get(source.call_id) if source.call_id else None
        catalogued = call is not None and call.sha256 == source.sha256
        assert catalogued + quarantined[source.key] == 1, (
            f"{source.key} (call {source.call_id}) must be one call or one quarantine item: "
            f"catalogued {catalogued}, quarantined {quarantined[source.key]} times"
        )
    for item in items:
        assert item.reason.strip(), f"quarantined {item.source_key} without a reason"
        assert storage.objects.exists(storage.settings.bucket_quarantine, item.object_key), (
            f"quarantine item {item.object_key} has no object"
        )
    assert not [s for s, n in Counter(c.sha256 for c in calls.values()).items() if n > 1], (
        "the same recording catalogued as two calls"
    )

    for call_id in erased:
        assert set(rows_of(storage, call_id).values()) == {0}, f"erased call {call_id} left rows"
        assert call_id in tombstoned, f"erased call {call_id} has no tombstone"
        assert not list(
            storage.objects.list_versions(
                storage.settings.bucket_recordings, prefix=call_prefix(call_id)
            )
        ), f"erased call {call_id} left objects"
    for call in calls.values():
        _assert_objects_of(storage, call)
        _assert_not_stuck(call, [j for j in jobs if j.call_id == call.id], transcripts, now)
        if call.id in with_segments:
            assert transcripts[call.id] == 1, f"call {call.id} has segments of no transcript"

    for key in sorted(keys):
        left = [o.key for o in storage.objects.list(storage.settings.bucket_incoming, prefix=key)]
        assert key not in left and key + ".json" not in left, f"{key} left in incoming: {left}"

    copies = list(scratch_root(storage.settings).iterdir())
    assert not copies, f"copies of recordings outlived their process: {copies}"
    _assert_verified(storage, call_ids, keys, now=now)


def _assert_objects_of(storage: Storage, call: Call) -> None:
    """The call's own objects, once each, and the original holding the catalogued bytes."""
    versions = list(
        storage.objects.list_versions(
            storage.settings.bucket_recordings, prefix=call_prefix(call.id)
        )
    )
    expected = sorted(k for k in (call.original_key, call.rendition_key) if k is not None)
    found = sorted(v.key for v in versions if not v.is_delete_marker)
    assert found == expected and len(found) == len(versions), (
        f"call {call.id}: objects {sorted((v.key, v.is_delete_marker) for v in versions)}, "
        f"expected one version of each of {expected}"
    )
    stored = storage.objects.stat(storage.settings.bucket_recordings, call.original_key).sha256
    assert stored == call.sha256, f"call {call.id}: the stored original is not its recording"


def _assert_not_stuck(
    call: Call, jobs: list[Job], transcripts: Counter[str], now: datetime
) -> None:
    assert call.state != CallState.ERASING, f"call {call.id} left half-erased"
    assert len(jobs) == 1, f"call {call.id} has {len(jobs)} transcription jobs"
    [job] = jobs
    where = f"job {job.id} of call {call.id} ({job.state}, attempt {job.attempts})"
    assert transcripts[call.id] <= 1, f"{where}: {transcripts[call.id]} transcripts"
    if job.state == JobState.DONE:
        assert transcripts[call.id] == 1 and call.state == CallState.TRANSCRIBED, where
        assert job.lease_owner is None, f"{where}: done but still leased"
    elif job.state == JobState.FAILED:
        assert job.last_error and call.state == CallState.FAILED, f"{where}: failed without error"
    elif job.state == JobState.RUNNING:
        assert job.lease_expires_at is not None and job.lease_expires_at < now, (
            f"{where}: stuck under a lease until {job.lease_expires_at} that no worker renews"
        )
    else:
        assert job.state == JobState.QUEUED, where


def _assert_verified(
    storage: Storage, call_ids: set[str], keys: set[str], *, now: datetime
) -> None:
    """``verify``'s findings that concern these sources: none."""
    report = verify(storage, now=now)
    settings = storage.settings

    def ours(finding: str) -> bool:
        bucket, _, key = finding.partition("/")
        if bucket == settings.bucket_recordings:
            return key.startswith("calls/") and key.split("/")[1] in call_ids
        if bucket == settings.bucket_quarantine:  # ETAG/SOURCE_KEY[.json]
            return key.split("/", 1)[-1].removesuffix(".json") in keys
        if bucket == settings.bucket_incoming:
            return key.removesuffix(".json") in keys
        return finding in call_ids

    findings = {
        "orphan objects": [f for f in report.orphan_objects if ours(f)],
        "calls without their original": [c for c in report.missing_objects if c in call_ids],
        "past their deadline": [f for f in report.past_deadline if ours(f)],
    }
    assert not any(findings.values()), f"verify: {findings}"


def assert_interrupted_purge_is_safe(
    storage: Storage, before: Mapping[str, Trace], *, due: Collection[str], now: datetime
) -> set[str]:
    """What a purge killed midway may leave: a listed call has every object and row it had
    (``before`` the purge, by call id), a tombstone only for a due call whose objects are all
    gone, and every call that was not due still listed. Returns the tombstoned call ids."""
    operator = Viewer("privacy-officer", Role.ADMIN)  # sees every call that is listed at all
    listed = find_calls(storage, operator, CallFilters(), now=now, limit=10_000)
    visible = {row.call_id for row in listed}
    assert set(before) - set(due) <= visible, "a call that was not due is gone"
    for call_id in visible & set(before):
        assert trace(storage, call_id) == before[call_id], f"{call_id} is listed but not intact"
    with storage.catalogue.session() as session:
        tombstoned = set(
            session.exec(select(Tombstone.call_id).where(col(Tombstone.call_id).in_(before)))
        )
    assert tombstoned <= set(due), "a call that was not due has a tombstone"
    for call_id in tombstoned:
        assert trace(storage, call_id).objects == [], f"{call_id} has a tombstone and objects"
    return tombstoned
