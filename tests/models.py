"""The real speech model, loaded once per test session (joined from its packages on first use)."""

from __future__ import annotations

import pytest

from transcribe.engine import DecodeOptions, Transcriber
from transcribe.model import load_model


@pytest.fixture(scope="session")
def transcriber(tmp_path_factory: pytest.TempPathFactory) -> Transcriber:
    """The bundled Whisper base at temperature 0, so a test sees the same text every run."""
    loaded = load_model(None, data_dir=tmp_path_factory.mktemp("model-data"))
    return Transcriber(loaded, DecodeOptions(temperature=(0.0,)))
