"""Private scratch folders for copies of recordings, which must not outlive their process.

Ingest and transcription download a recording to work on it. Those copies live under
``DATA_DIR/tmp`` (where a retention audit can see them) in folders named after the process
that made them, so when a process is killed (SIGKILL skips its clean-up) the next one can tell
the dead process's folders from a live neighbour's and delete them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from settings import Settings


def scratch_root(settings: Settings) -> Path:
    path = settings.data_dir / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def scratch_dir(settings: Settings, purpose: str) -> Iterator[Path]:
    """A private folder for one piece of work, removed when the work ends."""
    prefix = f"{purpose}-{os.getpid()}-"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=scratch_root(settings)) as folder:
        yield Path(folder)


def remove_dead_scratch(settings: Settings) -> int:
    """Delete the scratch folders of processes that died; returns how many were removed."""
    removed = 0
    for folder in scratch_root(settings).iterdir():
        parts = folder.name.split("-")
        if len(parts) >= 3 and parts[1].isdigit() and not process_alive(int(parts[1])):
            shutil.rmtree(folder, ignore_errors=True)
            removed += 1
    return removed


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (ours or another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return True
