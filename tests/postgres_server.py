"""A real PostgreSQL server for the test session, from Debian's ``postgresql`` package.

Loaded as a pytest plugin by ``tests/conftest.py``. The server starts on first use (so a run
that selects no PostgreSQL test never starts it), in a throw-away cluster on a free loopback
port, with durability switched off for speed; it is stopped and deleted when the session ends.

Fixtures:
- ``postgres_server``: the running server; ``create_database()`` gives a fresh, empty database.
- ``private_postgres``: a :class:`PostgresCluster` of the test's own, which it may stop and
  start again on the same port (fault tests).
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


class PostgresCluster:
    """A throw-away cluster in a folder of its own, which can be stopped and started again on
    the same port (so a client that lost it finds it where it was, as after a real restart)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin_dir = _find_bin_dir()
        self.server = PostgresServer(host="127.0.0.1", port=_free_port())
        self._data = root / "data"
        self._socket_dir = root / "socket"
        self._log = root / "server.log"
        self._as_postgres = _runner(root)
        self.running = False

    def init(self) -> None:
        _run(
            [
                *self._as_postgres,
                str(self.bin_dir / "initdb"),
                "-D",
                str(self._data),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ],
            cwd=self.root,
            what="initdb",
        )
        self._socket_dir.mkdir()
        if self._as_postgres:
            shutil.chown(self._socket_dir, "postgres", "postgres")

    def start(self) -> PostgresServer:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.server.port} -k {self._socket_dir} "
            f"-c timezone={SERVER_TIMEZONE} {SERVER_OPTIONS}"
        )
        _run(
            [
                *self._as_postgres,
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self._data),
                "-l",
                str(self._log),
                "-w",
                "-t",
                str(START_TIMEOUT_S),
                "-o",
                options,
                "start",
            ],
            cwd=self.root,
            what="pg_ctl start",
            log=self._log,
        )
        self.running = True
        _wait_until_accepting(self.server, self._log)
        return self.server

    def stop(self, *, check: bool = True) -> None:
        """Fast shutdown: open sessions are cut off mid-transaction, as a restart does to its
        clients; what was committed is kept (unlike ``immediate``, which with
        ``synchronous_commit=off`` could lose acknowledged commits: not a fault of callrec)."""
        result = subprocess.run(
            [
                *self._as_postgres,
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self._data),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(f"pg_ctl stop failed: {result.stdout}{result.stderr}", pytrace=False)
        self.running = False


@contextlib.contextmanager
def running_cluster() -> Iterator[PostgresCluster]:
    """A started cluster, stopped and deleted on exit."""
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="callrec-pg-")))
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        if cluster.running:
            cluster.stop(check=False)
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start a PostgreSQL cluster for the session; fail (not skip) if the package is missing."""
    with running_cluster() as cluster:
        yield cluster.server


@pytest.fixture
def private_postgres() -> Iterator[PostgresCluster]:
    """A cluster of the test's own (about a second to make), for a test that stops and starts
    it: the session's server is shared by every other PostgreSQL test."""
    with running_cluster() as cluster:
        yield cluster


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
