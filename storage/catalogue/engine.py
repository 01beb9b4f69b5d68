"""Engines for the catalogue database, and the one error that says it cannot be used.

SQLite connections get the pragmas callrec relies on; PostgreSQL connections are pinged before
use and give up after a timeout. Every failure to connect becomes a one-line
:class:`CatalogueError` naming the URL (password hidden) and what to check.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import StaticPool

from errors import CallrecError

__all__ = ["CatalogueError", "connection_lost", "create_engine", "probe", "safe_url"]

_SQLITE_BUSY_TIMEOUT_MS = 30_000
# Pause between attempts to switch a database to WAL while another connection is switching it.
_SQLITE_WAL_RETRY_FIRST_S = 0.001
_SQLITE_WAL_RETRY_MAX_S = 0.1
_PG_CONNECT_TIMEOUT_S = 10
_URL_EXAMPLE = "sqlite:////path/catalogue.db or postgresql+psycopg://user:password@host:5432/db"


class CatalogueError(CallrecError):
    """The catalogue database cannot be used (unreachable, unknown revision, bad URL).

    ``url`` is the database URL with the password hidden, safe to print and log.
    """

    def __init__(self, message: str, *, url: str = "", hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.url = url


def create_engine(url: str) -> Engine:
    """An engine for ``url`` configured for callrec (no connection is made yet)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        # Not echoed: a malformed URL may still contain a password.
        raise CatalogueError(
            "the catalogue database URL is not a valid SQLAlchemy URL",
            hint=f"set CALLREC_DATABASE_URL to e.g. {_URL_EXAMPLE}",
        ) from None
    backend = parsed.get_backend_name()
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            # One shared connection, or every connection would see its own empty database.
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        else:
            folder = Path(parsed.database).expanduser().parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise CatalogueError(
                    f"cannot create the folder {folder} of the catalogue database: "
                    f"{exc.strerror or exc}",
                    url=safe_url(parsed),
                    hint="check CALLREC_DATA_DIR (or CALLREC_DATABASE_URL) and its permissions",
                ) from exc
    elif backend == "postgresql":
        kwargs = {"pool_pre_ping": True, "connect_args": {"connect_timeout": _PG_CONNECT_TIMEOUT_S}}
    else:
        raise CatalogueError(
            f"unsupported catalogue database {safe_url(parsed)}",
            url=safe_url(parsed),
            hint=f"use SQLite or PostgreSQL, e.g. {_URL_EXAMPLE}",
        )
    try:
        engine = sa.create_engine(parsed, **kwargs)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise CatalogueError(
            f"no database driver for {safe_url(parsed)}: {exc}",
            url=safe_url(parsed),
            hint="use postgresql+psycopg:// (psycopg 3 is callrec's PostgreSQL driver)",
        ) from exc
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets the UI read while a worker writes; foreign keys make the purge's cascade work
    (SQLite ignores them unless asked, per connection); busy_timeout waits out short locks."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {_SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``, waiting (up to the busy timeout) for a concurrent switch.

    The mode is stored in the database file, so only the first connection to a new (or
    rollback-journal) file changes it: it takes a read lock, then upgrades it to a write lock to
    rewrite the header. SQLite never runs the busy handler for a read-to-write upgrade (that
    could deadlock, see the sqlite3_busy_handler documentation), so when several connections
    open a fresh file at once the losers get SQLITE_BUSY at once, ``busy_timeout`` or not. The
    failed statement releases its read lock (no transaction is open here), letting the winner
    commit; a retry then finds the file in WAL mode and needs only a read lock, which does wait.
    So retry on SQLITE_BUSY only, with backoff, and give up after the busy timeout like any
    other lock wait would.
    """
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = _SQLITE_WAL_RETRY_FIRST_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            busy = code is not None and code & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, _SQLITE_WAL_RETRY_MAX_S)


def probe(engine: Engine) -> None:
    """Connect once so an unreachable database fails with a message that says what to check."""
    try:
        with engine.connect():
            pass
    except sa.exc.DBAPIError as exc:
        safe = safe_url(engine.url)
        if engine.dialect.name == "sqlite":
            hint = "check that the folder exists, is writable and is on a local disk"
        else:
            hint = (
                "check that the server is running and accepts TCP connections at that host and "
                "port, and the user, password and database name in CALLREC_DATABASE_URL"
            )
        raise CatalogueError(
            f"cannot open the catalogue database {safe}: {_reason(exc, engine.url)}",
            url=safe,
            hint=hint,
        ) from exc


def connection_lost(exc: sa.exc.DBAPIError, url: URL) -> CatalogueError | None:
    """The error as a :class:`CatalogueError` when the server went away (a restart, a crash, the
    network) rather than the statement failing; None otherwise, so a deadlock or a constraint
    stays what it is. Callers treat it as an outage: the work is left for the next run (which
    must cope with a commit that was cut off after the server made it).

    Server-side losses are SQLSTATE class 08 (connection exception) or 57P (shut down, not yet
    accepting); client-side ones (refused, reset) carry no SQLSTATE. SQLite has neither.
    """
    sqlstate = getattr(exc.orig, "sqlstate", "")
    gone = sqlstate is None or sqlstate.startswith(("08", "57P"))
    if not exc.connection_invalidated and not (
        isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError) and gone
    ):
        return None
    return CatalogueError(
        f"lost the catalogue database {safe_url(url)}: {_reason(exc, url)}",
        url=safe_url(url),
        hint="check that the server is running; unfinished work is taken up by the next run",
    )


def safe_url(url: URL) -> str:
    """The URL as text with the password hidden: safe for messages and logs."""
    return url.render_as_string(hide_password=True)


def _reason(exc: sa.exc.DBAPIError, url: URL) -> str:
    """The driver's own first line (e.g. "Connection refused"), never the password."""
    lines = str(exc.orig).strip().splitlines() or [type(exc.orig).__name__]
    reason = lines[0].strip()
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason
