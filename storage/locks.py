"""A named lease in the catalogue, so a recurring job never runs twice at once, even when two
schedulers run on two machines for availability.

A lease row (``job_locks``) rather than a database session lock: it works the same on SQLite and
PostgreSQL, needs no connection held open for an hour-long purge, and a holder that is killed
simply stops renewing: its lease runs out and the next run takes over. The holder renews from a
background thread while it works.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col

from storage.catalogue import Catalogue, JobLock


def owner_id() -> str:
    """Who holds a lease: host, process and a random part (two holders in one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def try_acquire(catalogue: Catalogue, name: str, *, owner: str, lease_s: float) -> bool:
    """Take the lease ``name`` if it is free, expired or already ours; True if we hold it."""
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=lease_s)
    with catalogue.session() as session:
        taken = session.execute(
            sa.update(JobLock)
            .where(
                col(JobLock.name) == name,
                sa.or_(col(JobLock.expires_at) <= now, col(JobLock.owner) == owner),
            )
            .values(owner=owner, acquired_at=now, expires_at=expires)
        )
        if taken.rowcount:  # type: ignore[attr-defined]
            return True
    try:
        with catalogue.session() as session:
            session.add(JobLock(name=name, owner=owner, acquired_at=now, expires_at=expires))
    except sa.exc.IntegrityError:
        return False  # someone else holds it
    return True


def renew(catalogue: Catalogue, name: str, *, owner: str, lease_s: float) -> bool:
    """Extend our lease; False if it was lost (expired and taken by another holder)."""
    expires = datetime.now(UTC) + timedelta(seconds=lease_s)
    with catalogue.session() as session:
        result = session.execute(
            sa.update(JobLock)
            .where(col(JobLock.name) == name, col(JobLock.owner) == owner)
            .values(expires_at=expires)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


def release(catalogue: Catalogue, name: str, *, owner: str) -> None:
    with catalogue.session() as session:
        session.execute(
            sa.delete(JobLock).where(col(JobLock.name) == name, col(JobLock.owner) == owner)
        )


def holder(catalogue: Catalogue, name: str) -> JobLock | None:
    """The current, unexpired lease on ``name``, if any."""
    with catalogue.session() as session:
        lock = session.get(JobLock, name)
        return lock if lock is not None and lock.expires_at > datetime.now(UTC) else None


@contextmanager
def leased(
    catalogue: Catalogue, name: str, *, lease_s: float = 120.0, owner: str | None = None
) -> Iterator[bool]:
    """Hold the lease ``name`` for the block, renewing it every third of ``lease_s``; yields
    False (and runs nothing of ours) when another holder has it."""
    owner = owner or owner_id()
    if not try_acquire(catalogue, name, owner=owner, lease_s=lease_s):
        yield False
        return
    stop = threading.Event()

    def keep_renewing() -> None:
        while not stop.wait(lease_s / 3):
            renew(catalogue, name, owner=owner, lease_s=lease_s)

    renewer = threading.Thread(target=keep_renewing, name=f"lease-{name}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join()
        release(catalogue, name, owner=owner)
