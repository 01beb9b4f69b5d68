"""The review app's status page renders from real storage (Streamlit's AppTest, no browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from storage.embedded_s3 import S3Endpoint

APP = Path(__file__).resolve().parents[1] / "review_ui" / "app.py"


def test_the_status_page_shows_the_counts_without_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, s3_endpoint: S3Endpoint
):
    monkeypatch.setenv("CALLREC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CALLREC_S3_ENDPOINT", s3_endpoint.endpoint)
    monkeypatch.setenv("CALLREC_S3_ACCESS_KEY", s3_endpoint.access_key)
    monkeypatch.setenv("CALLREC_S3_SECRET_KEY", s3_endpoint.secret_key)
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception, app.exception
    assert [h.value for h in app.subheader] == ["Calls by state", "Transcription jobs by state"]
    assert {m.label: m.value for m in app.metric} == {
        "Quarantined recordings": "0",
        "Calls on hold": "0",
    }
