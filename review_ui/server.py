"""Start the Streamlit review app as a child process of a callrec command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from settings import Settings

APP = Path(__file__).with_name("app.py")


def start_review_app(settings: Settings) -> subprocess.Popen[bytes]:
    """Serve the app on ``settings.ui_host:ui_port``; the caller stops it.

    The child reads the same ``CALLREC_`` environment, so it opens the same catalogue and reuses
    the embedded S3 server that the parent started.
    """
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.address",
        settings.ui_host,
        "--server.port",
        str(settings.ui_port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
    ]
    env_overrides = {"CALLREC_DATA_DIR": str(settings.data_dir)}
    return subprocess.Popen(command, env={**os.environ, **env_overrides}, stdin=subprocess.DEVNULL)
