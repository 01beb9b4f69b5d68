"""Job leases and the audit trail, on SQLite and a real PostgreSQL server."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import col

from storage import locks
from storage.audit import Action, events, record
from storage.catalogue import AuditEvent, Catalogue

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def catalogue(catalogue_url: str):
    with Catalogue.open(catalogue_url) as opened:
        yield opened


def test_a_lease_is_held_by_one_owner_at_a_time(catalogue: Catalogue) -> None:
    assert locks.try_acquire(catalogue, "purge", owner="a", lease_s=60)
    assert not locks.try_acquire(catalogue, "purge", owner="b", lease_s=60)
    assert locks.try_acquire(catalogue, "purge", owner="a", lease_s=60)  # re-entrant for a
    locks.release(catalogue, "purge", owner="b")  # not b's to release
    assert locks.holder(catalogue, "purge").owner == "a"  # type: ignore[union-attr]
    locks.release(catalogue, "purge", owner="a")
    assert locks.holder(catalogue, "purge") is None
    assert locks.try_acquire(catalogue, "purge", owner="b", lease_s=60)


def test_an_expired_lease_of_a_dead_holder_is_taken_over(catalogue: Catalogue) -> None:
    assert locks.try_acquire(catalogue, "verify", owner="dead", lease_s=0.2)
    assert not locks.try_acquire(catalogue, "verify", owner="next", lease_s=60)
    time.sleep(0.3)
    assert locks.try_acquire(catalogue, "verify", owner="next", lease_s=60)
    assert not locks.renew(catalogue, "verify", owner="dead", lease_s=60)  # it lost the lease


def test_racing_holders_never_both_win(catalogue: Catalogue) -> None:
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def contend(name: str) -> None:
        barrier.wait()
        try:
            if locks.try_acquire(catalogue, "race", owner=name, lease_s=60):
                winners.append(name)
        except sa.exc.OperationalError:
            pass  # SQLite busy under contention counts as losing, never as winning twice

    threads = [threading.Thread(target=contend, args=(f"o{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1


def test_leased_renews_while_working_and_releases_after(catalogue: Catalogue) -> None:
    with locks.leased(catalogue, "long", lease_s=0.3, owner="worker") as held:
        assert held
        time.sleep(0.7)  # longer than the lease: only renewal keeps it
        assert not locks.try_acquire(catalogue, "long", owner="other", lease_s=60)
        with locks.leased(catalogue, "long", owner="other") as second:
            assert not second
    assert locks.holder(catalogue, "long") is None


def test_the_audit_trail_is_append_only_in_the_database(catalogue: Catalogue) -> None:
    with catalogue.session() as session:
        record(session, actor="cli:test", action=Action.HOLD, at=NOW, call_id="c1", why="dispute")
    for statement in (
        sa.update(AuditEvent).values(actor="someone else"),
        sa.delete(AuditEvent).where(col(AuditEvent.call_id) == "c1"),
    ):
        with (
            pytest.raises(sa.exc.DatabaseError, match="append-only"),
            catalogue.session() as session,
        ):
            session.execute(statement)
    with catalogue.session() as session:
        [event] = events(session, call_id="c1")
        assert (event.actor, event.action, event.details) == (
            "cli:test",
            "hold",
            {"why": "dispute"},
        )
