"""Start the Streamlit review app as a child process of a callrec command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from settings import Settings

APP = Path(__file__).with_name("app.py")


def streamlit_command(script: Path, host: str, port: int) -> list[str]:
    """``streamlit run script`` headless on ``host:port``: the app, and the benches' bare
    scripts served the same way."""
    return [
        sys.executable, "-m", "streamlit", "run", str(script),
        "--server.address", host, "--server.port", str(port), "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--global.developmentMode", "false",
    ]  # fmt: skip


def start_review_app(settings: Settings) -> subprocess.Popen[bytes]:
    """Serve the app on ``settings.ui_host:ui_port``; the caller stops it (:func:`stop_child`).

    The child reads the same ``CALLREC_`` environment, so it opens the same catalogue and reuses
    the embedded S3 server that the parent started.
    """
    command = streamlit_command(APP, settings.ui_host, settings.ui_port)
    env_overrides = {"CALLREC_DATA_DIR": str(settings.data_dir)}
    return subprocess.Popen(command, env={**os.environ, **env_overrides}, stdin=subprocess.DEVNULL)


def stop_child(process: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM, so Streamlit closes its sessions; SIGKILL if it has not ended in ``grace_s``."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
