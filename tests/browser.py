"""A real Chromium (Debian's) driven by Playwright, one per test run, and the review app served
by Streamlit as a child process against a test's own stores.

Never `playwright install`: the browser is the system's `/usr/bin/chromium` (ARCHITECTURE.md).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from review_ui.server import APP, stop_child, streamlit_command
from storage.connect import Storage
from tests.stores import callrec_env

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@dataclass(frozen=True)
class ReviewApp:
    url: str
    process: subprocess.Popen[bytes]


@pytest.fixture
def review_app(storage: Storage, tmp_path: Path) -> Iterator[ReviewApp]:
    """The app on a free port, reading the same stores as ``storage``."""
    with serving(APP, callrec_env(storage), tmp_path / "streamlit.log") as (url, process):
        yield ReviewApp(url, process)


@contextlib.contextmanager
def serving(
    script: Path, env: dict[str, str], log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``script`` served as callrec serves the app, on a free port, its output in ``log``;
    yields its URL once it answers, and the process. The benches serve the same way."""
    port = _free_port()
    with log.open("wb") as out:
        process = subprocess.Popen(
            streamlit_command(script, "127.0.0.1", port), env=env, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, process)
            yield url, process
        finally:
            stop_child(process, grace_s=15)


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"streamlit did not answer at {url} within {timeout_s} s")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
