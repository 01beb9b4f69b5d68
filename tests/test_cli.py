"""The `callrec` command as a user runs it: a real process, real servers, one-line errors."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from storage.embedded_s3 import S3Endpoint

CALLREC = Path(sys.executable).parent / "callrec"


def _env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLREC_")}
    env["CALLREC_DATA_DIR"] = str(data_dir)
    env.update({f"CALLREC_{k.upper()}": v for k, v in settings.items()})
    return env


def _callrec(data_dir: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    assert CALLREC.exists(), f"{CALLREC} missing: install the project (bash .ci/setup.sh)"
    return subprocess.run(
        [str(CALLREC), *args],
        env=_env(data_dir, **settings),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=data_dir.parent,
    )


def _weed_pids(data_dir: Path) -> list[int]:
    """Live weed processes serving this data directory (found via /proc, not our bookkeeping)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            status = (proc / "status").read_text().splitlines()
            state = next(line for line in status if line.startswith("State:"))
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            continue
        if (
            b"weed" in cmdline[0]
            and f"-dir={data_dir}/s3/data".encode() in cmdline
            and "Z" not in state
        ):
            pids.append(int(proc.name))
    return pids


def test_status_json_on_a_fresh_data_dir_is_all_zeros_and_leaves_no_server(tmp_path: Path):
    data_dir = tmp_path / "fresh"
    result = _callrec(data_dir, "status", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["calls"]["total"] == 0
    assert set(report["calls"]["by_state"].values()) == {0}
    assert report["calls"]["by_state"] and report["jobs"]["by_state"]
    assert set(report["jobs"]["by_state"].values()) == {0}
    assert report["quarantine"] == 0 and report["holds"] == 0
    assert report["oldest_call_age_days"] == 0
    assert report["storage"]["s3_embedded"] is True
    assert (data_dir / "catalogue.db").exists()
    assert _weed_pids(data_dir) == [], "a one-shot command left the S3 server it started running"


def test_status_with_a_wrong_s3_secret_fails_with_one_line_naming_the_endpoint(
    tmp_path: Path, s3_endpoint: S3Endpoint
):
    result = _callrec(
        tmp_path / "d",
        "status",
        "--json",
        s3_endpoint=s3_endpoint.endpoint,
        s3_access_key=s3_endpoint.access_key,
        s3_secret_key="wrong-secret",
    )
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert s3_endpoint.endpoint in lines[0] and "SECRET_KEY" in lines[0]


def test_status_with_an_unreachable_s3_server_fails_with_one_line(tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _callrec(tmp_path / "d", "status", s3_endpoint=f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_flag_is_one_line_and_exit_code_2(tmp_path: Path):
    result = _callrec(tmp_path / "d", "status", "--jsn")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "callrec: error: No such option: --jsn (Possible options: --json)"
        " (see `callrec status --help`)"
    ]


def test_an_unknown_setting_is_one_line_with_a_suggestion(tmp_path: Path):
    result = _callrec(tmp_path / "d", "status", retention_dayz="30")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "callrec: error: unknown setting CALLREC_RETENTION_DAYZ"
        " — did you mean CALLREC_RETENTION_DAYS?"
    ]


def test_config_prints_every_setting_with_secrets_masked(tmp_path: Path):
    result = _callrec(
        tmp_path / "d", "config", s3_endpoint="s3.local:9000", s3_secret_key="hunter22"
    )
    assert result.returncode == 0, result.stderr
    assert "hunter22" not in result.stdout
    assert "CALLREC_S3_SECRET_KEY=********" in result.stdout
    assert "CALLREC_RETENTION_DAYS=180" in result.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_http(url: str, process: subprocess.Popen[str], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"callrec run exited early: {process.communicate()}"
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} never answered")


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_stopping_run_leaves_no_server_behind(tmp_path: Path, stop_signal: signal.Signals):
    data_dir, port = tmp_path / "run", _free_port()
    process = subprocess.Popen(
        [str(CALLREC), "run"],
        env=_env(data_dir, ui_port=str(port)),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_http(f"http://127.0.0.1:{port}/_stcore/health", process)
        assert len(_weed_pids(data_dir)) == 1
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert "review app: http://127.0.0.1:" in out
    assert "loaded 6 sample calls" in out, "a fresh embedded installation gets the sample calls"
    assert _weed_pids(data_dir) == []
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
