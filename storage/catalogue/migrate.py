"""The schema upgrade: packaged Alembic revisions applied under a lock.

The schema is made and changed only by the revisions in ``migrations/versions``; every process
upgrades to head when it opens the catalogue, under a lock, so several workers starting at once
on a fresh database neither race nor fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

from .engine import CatalogueError, create_engine, probe, safe_url

__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
    "upgrade_engine",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Key of the PostgreSQL advisory lock that serialises schema upgrades ("callrec" in ASCII).
_MIGRATION_LOCK_KEY = 0x63616C6C726563


def alembic_config(*, url: str | None = None, connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations; no ``alembic.ini`` needed.

    The URL travels in ``attributes`` rather than a config option so ``%`` in an encoded
    password needs no escaping.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.attributes["url"] = url
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "no migrations found"
    return head


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the schema at ``url`` to ``revision`` under the migration lock."""
    engine = create_engine(url)
    try:
        probe(engine)
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str) -> None:
    """Take the schema back to ``revision`` (``"base"``: empty). Drops data of newer tables."""
    engine = create_engine(url)
    try:
        probe(engine)
        with _migration_connection(engine) as connection:
            command.downgrade(alembic_config(connection=connection), revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at; ``None`` for an empty database."""
    engine = create_engine(url)
    try:
        probe(engine)
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Upgrade through an existing engine (the in-memory database has no other way in)."""
    with _migration_connection(engine) as connection:
        try:
            command.upgrade(alembic_config(connection=connection), revision)
        except CommandError as exc:
            raise CatalogueError(
                f"cannot upgrade the catalogue database {safe_url(engine.url)}: {exc}",
                url=safe_url(engine.url),
                hint="it was probably made by a newer callrec; run that version (or newer)",
            ) from exc


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction that holds the schema lock until it commits.

    PostgreSQL: a transaction-scoped advisory lock (DDL is transactional there). SQLite:
    ``BEGIN IMMEDIATE`` takes the write lock before Alembic reads the current revision, with
    foreign keys off, because batch migrations rebuild tables by dropping them and a drop with
    foreign keys on would cascade-delete the child rows; the keys are checked before commit.
    """
    with engine.connect() as connection:
        if engine.dialect.name != "sqlite":
            with connection.begin():
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
                yield connection
            return
        # Autocommit at the driver, so the BEGIN/COMMIT below are the only transaction control.
        connection.execution_options(isolation_level="AUTOCOMMIT")
        foreign_keys = connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one()
        connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield connection
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise CatalogueError(
                    f"migration of {safe_url(engine.url)} left rows pointing at missing rows: "
                    f"{broken[:5]}",
                    url=safe_url(engine.url),
                    hint="this is a bug in a migration; the database was left unchanged",
                )
            connection.exec_driver_sql("COMMIT")
        except BaseException:
            if connection.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
                connection.exec_driver_sql("ROLLBACK")
            raise
        finally:
            connection.exec_driver_sql(f"PRAGMA foreign_keys = {int(foreign_keys)}")
