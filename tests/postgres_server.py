"""A real PostgreSQL server for the test session, from Debian's ``postgresql`` package.

Loaded as a pytest plugin by ``tests/conftest.py``. The server starts on first use (so a run
that selects no PostgreSQL test never starts it), in a throw-away cluster on a free loopback
port, with durability switched off for speed; it is stopped and deleted when the session ends.

Fixtures:
- ``postgres_server``: the running server; ``create_database()`` gives a fresh, empty database.
- ``postgres_url``: URL of one database shared by the session.
- ``catalogue_url``: a fresh catalogue database per test, parametrized over ``sqlite`` and
  ``postgres`` (the latter marked ``postgres``, so ``-m "not postgres"`` runs SQLite only).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

APT_PACKAGE = "postgresql"
BIN_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT_S = 60
# Durability off: a test cluster never needs to survive a crash.
# Not UTC on purpose: code that only works when the server's zone is UTC fails here, not in prod.
SERVER_TIMEZONE = "Europe/Amsterdam"
SERVER_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


@dataclass(frozen=True)
class PostgresServer:
    """A running throw-away server; connects as the superuser ``postgres`` without password."""

    host: str
    port: int
    user: str = "postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, prefix: str = "callrec") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(sql.encode())


def _find_bin_dir() -> Path:
    candidates = [Path(p) for p in glob.glob(BIN_GLOB) if (Path(p) / "initdb").exists()]
    if not candidates:
        pytest.fail(
            f"PostgreSQL server binaries not found ({BIN_GLOB}/initdb): the PostgreSQL tests need "
            f"Debian's `{APT_PACKAGE}` package — install it with `apt-get install -y {APT_PACKAGE}`"
            ' (or deselect them with -m "not postgres")',
            pytrace=False,
        )

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in path.parent.name.split(".") if part.isdigit())

    return max(candidates, key=version)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _runner(root: Path) -> list[str]:
    """initdb refuses to run as root: as root, run the server as Debian's ``postgres`` user."""
    if os.geteuid() != 0:
        return []
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail(
            "running as root, but there is no `postgres` system user to run the server as; "
            f"it comes with Debian's `{APT_PACKAGE}` package (apt-get install -y {APT_PACKAGE})",
            pytrace=False,
        )
    os.chown(root, account.pw_uid, account.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


def _run(command: list[str], *, cwd: Path, what: str, log: Path | None = None) -> None:
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
        pytest.fail(
            f"{what} failed (exit {result.returncode}): {' '.join(command)}\n"
            f"{result.stdout}{result.stderr}{tail}",
            pytrace=False,
        )


def _wait_until_accepting(server: PostgresServer, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with psycopg.connect(
                host=server.host,
                port=server.port,
                user=server.user,
                dbname="postgres",
                connect_timeout=2,
            ) as connection:
                connection.execute("SELECT 1")
                return
        except psycopg.OperationalError as exc:
            if time.monotonic() > deadline:
                pytest.fail(
                    f"PostgreSQL on {server.host}:{server.port} did not accept connections "
                    f"within {START_TIMEOUT_S}s: {exc}\n{log.read_text(errors='replace')[-2000:]}",
                    pytrace=False,
                )
            time.sleep(0.1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start a PostgreSQL cluster for the session; fail (not skip) if the package is missing."""
    bin_dir = _find_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="callrec-pg-"))
    data, socket_dir, log = root / "data", root / "socket", root / "server.log"
    started = False
    try:
        as_postgres = _runner(root)
        _run(
            [
                *as_postgres,
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            cwd=root,
            what="initdb",
        )
        socket_dir.mkdir()
        if as_postgres:
            shutil.chown(socket_dir, "postgres", "postgres")
        server = PostgresServer(host="127.0.0.1", port=_free_port())
        options = (
            f"-c listen_addresses=127.0.0.1 -p {server.port} -k {socket_dir} "
            f"-c timezone={SERVER_TIMEZONE} {SERVER_OPTIONS}"
        )
        _run(
            [
                *as_postgres,
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-o",
                options,
                "start",
            ],
            cwd=root,
            what="pg_ctl start",
            log=log,
        )
        started = True
        _wait_until_accepting(server, log)
        yield server
    finally:
        if started:
            subprocess.run(
                [
                    *_runner(root),
                    str(bin_dir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-m",
                    "fast",
                    "-w",
                    "stop",
                ],
                cwd=root,
                capture_output=True,
                timeout=START_TIMEOUT_S,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """One database for the session (tests that need isolation use ``catalogue_url``)."""
    return postgres_server.create_database("callrec_session")


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
    ]
)
def catalogue_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each backend, private to the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalogue.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.create_database()
    yield url
    with contextlib.suppress(psycopg.Error):
        server.drop_database(url)
