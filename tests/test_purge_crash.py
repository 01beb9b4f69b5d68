"""A ``callrec purge`` killed with SIGKILL midway leaves nothing unsafe, and the next run
converges: every expired call gone (objects, rows, tombstone), the young and held ones untouched.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.connect import Storage
from storage.purge import REASON, purge
from tests.invariants import assert_interrupted_purge_is_safe
from tests.stores import callrec_env
from tests.test_purge_properties import DrawnCall, add_calls, trace

CALLREC = Path(sys.executable).parent / "callrec"
KILL_TIMEOUT_S = 90


def with_objects(storage: Storage, tag: str) -> set[str]:
    """Ids of the calls (of this test) that still have an object: one listing."""
    listing = storage.objects.list(storage.settings.bucket_recordings, prefix=f"calls/{tag}-")
    return {o.key.split("/")[1] for o in listing}


def kill_midway(storage: Storage, tag: str, due: set[str], cwd: Path) -> bool:
    """Run ``callrec purge`` and SIGKILL it as soon as the objects of one of ``due`` are gone.
    Returns False if it got through all of them first (then there was nothing midway)."""
    child = subprocess.Popen(
        [str(CALLREC), "purge", "--json"],
        env=callrec_env(storage),
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        give_up = time.monotonic() + KILL_TIMEOUT_S
        while time.monotonic() < give_up and child.poll() is None:
            if due - with_objects(storage, tag):
                child.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
    finally:
        child.kill()
        _, stderr = child.communicate(timeout=30)
    assert child.returncode in (-signal.SIGKILL, 0), stderr.decode()
    return bool(due & with_objects(storage, tag))


def test_a_purge_killed_midway_never_shows_a_call_without_its_objects_and_the_next_run_converges(
    storage: Storage, tmp_path: Path
):
    now = datetime.now(UTC)  # `callrec purge` judges by the real clock
    tag = f"kill-{uuid.uuid4().hex[:8]}"

    def calls(count: int, age_days: int, holds: tuple[bool, ...] = ()) -> tuple[DrawnCall, ...]:
        return tuple(
            DrawnCall(now - timedelta(days=age_days + i), holds=holds, versions=2)
            for i in range(count)
        )

    kept = add_calls(storage, calls(3, 10) + calls(2, 200, holds=(True,)), prefix=tag)
    due: dict[str, DrawnCall] = {}
    # A run that got through every call before the kill proves nothing midway: then again with
    # four times as many (more than one batch of 200, so a kill can also fall between batches).
    for count in (60, 240):
        added = add_calls(storage, calls(count, 181) + calls(1, 300, holds=(False,)), prefix=tag)
        due |= added
        before = {call_id: trace(storage, call_id) for call_id in kept | due}
        if kill_midway(storage, tag, set(added), tmp_path):
            break
    else:
        pytest.fail("callrec purge erased every call before it could be killed, twice")

    # The state the kill left: a call that is listed has all its objects, and no call whose
    # objects are still there has a tombstone.
    tombstoned = assert_interrupted_purge_is_safe(storage, before, due=due, now=now)
    partly = [call_id for call_id in due if trace(storage, call_id).objects == []]
    assert 0 < len(partly) < len(due), "the kill fell before or after the erasure"

    report = purge(storage, now=datetime.now(UTC))
    assert set(report.calls_purged) == set(due) - tombstoned
    after = {call_id: trace(storage, call_id) for call_id in kept | due}
    for call_id, call in due.items():
        assert after[call_id].objects == [] and after[call_id].call is None, call_id
        assert set(after[call_id].rows.values()) == {0}, call_id
        tombstone = after[call_id].tombstone
        assert tombstone is not None and (tombstone[0], tombstone[2]) == (
            call.started_at.date(),
            REASON,
        )
    assert {call_id: after[call_id] for call_id in kept} == {
        call_id: before[call_id] for call_id in kept
    }

    again = purge(storage, now=datetime.now(UTC))
    assert (again.calls_purged, again.objects_deleted) == ([], 0)
    assert {call_id: trace(storage, call_id) for call_id in kept | due} == after
