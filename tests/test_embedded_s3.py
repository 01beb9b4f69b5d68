"""The embedded SeaweedFS supervisor: private keys, one shared server, the last user stops it."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

from storage.embedded_s3 import EmbeddedS3
from storage.objects import ObjectStore

# A child process that acquires the server, reports the server's pid, and waits for a line on
# stdin before releasing it: lets a test hold several users at once.
_CLIENT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from storage.embedded_s3 import EmbeddedS3
    server = EmbeddedS3(Path(sys.argv[1]))
    endpoint = server.acquire()
    print(json.dumps({"pid": server.server_pid(), "endpoint": endpoint.endpoint}), flush=True)
    sys.stdin.readline()
    server.release()
    """
)


def _pid_alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def _start_client(data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CLIENT, str(data_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )


def test_generated_keys_are_private_to_the_owner(s3_data_dir: Path, s3_endpoint):
    for name in ("credentials.json", "identities.json"):
        mode = stat.S_IMODE((s3_data_dir / "s3" / name).stat().st_mode)
        assert mode == 0o600, f"{name} has mode {oct(mode)}"
    creds = json.loads((s3_data_dir / "s3" / "credentials.json").read_text())
    assert creds["secret_key"] == s3_endpoint.secret_key and len(creds["secret_key"]) >= 30


def test_two_commands_started_at_once_share_one_server_and_the_last_stops_it(tmp_path: Path):
    first, second = _start_client(tmp_path), _start_client(tmp_path)
    try:
        seen = [json.loads(client.stdout.readline()) for client in (first, second)]
        assert seen[0] == seen[1], "both users must get the same server"
        server_pid = seen[0]["pid"]
        assert _pid_alive(server_pid)

        first.communicate("\n", timeout=30)
        assert _pid_alive(server_pid), "the server stopped while another process still used it"

        second.communicate("\n", timeout=30)
        assert not _pid_alive(server_pid), "the last user left the server running"
    finally:
        for client in (first, second):
            client.kill()
            client.wait()


def test_a_user_killed_without_releasing_is_not_counted(tmp_path: Path):
    crashed = _start_client(tmp_path)
    server_pid = json.loads(crashed.stdout.readline())["pid"]
    crashed.kill()
    crashed.wait()
    survivor = EmbeddedS3(tmp_path)
    survivor.acquire()
    assert survivor.server_pid() == server_pid, "a running server must be reused"
    survivor.release()
    assert not _pid_alive(server_pid)


def test_objects_survive_a_server_restart(tmp_path: Path):
    server = EmbeddedS3(tmp_path)
    with server as endpoint:
        store = ObjectStore(endpoint)
        store._client.make_bucket("keep")
        store.put("keep", "call.wav", b"evidence")
    assert server.server_pid() is None
    with EmbeddedS3(tmp_path) as endpoint:
        assert ObjectStore(endpoint).read("keep", "call.wav") == b"evidence"


def _listening_addresses(pid: int) -> list[str]:
    """The local addresses a process listens on, from /proc (no ss/netstat on a minimal box)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A = LISTEN
                addresses.append(fields[1])
    return addresses


def test_the_server_listens_on_loopback_only(s3_data_dir: Path, s3_endpoint):
    state = json.loads((s3_data_dir / "s3" / "server.json").read_text())
    addresses = _listening_addresses(state["pid"])
    assert len(addresses) >= 5, addresses
    loopback = "0100007F:"  # 127.0.0.1, little-endian hex as /proc shows it
    assert all(address.startswith(loopback) for address in addresses), addresses
    assert os.getpid() in state["clients"]
