"""The real speech model, loaded once per test session (joined from its packages on first use)."""

from __future__ import annotations

from pathlib import Path

import pytest

from transcribe.engine import DecodeOptions, Transcriber, Transcript
from transcribe.model import load_model

SAMPLES = Path(__file__).resolve().parents[1] / "ingest" / "samples"
DIALOGUES = ["claim_screen_repair", "imei_iban", "policy_postcode_dob", "phone_email", "health_bsn"]


@pytest.fixture(scope="session")
def transcriber(tmp_path_factory: pytest.TempPathFactory) -> Transcriber:
    """The bundled Whisper base at temperature 0, so a test sees the same text every run."""
    loaded = load_model(None, data_dir=tmp_path_factory.mktemp("model-data"))
    return Transcriber(loaded, DecodeOptions(temperature=(0.0,)))


@pytest.fixture(scope="session")
def transcripts(transcriber: Transcriber) -> dict[str, Transcript]:
    """The model's transcripts of every bundled sample, made once per session."""
    names = [*DIALOGUES, "upmixed_mono", "silence", "hold_music"]
    return {
        name: transcriber.transcribe_file(
            SAMPLES / f"{name}.wav", channels=2, agent_channel="left", language="nl"
        )
        for name in names
    }
