"""Settings: one typed place, defaults that work, mistakes named at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from errors import SettingsError
from settings import Settings, effective_settings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    for key in list(__import__("os").environ):
        if key.startswith("CALLREC_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_defaults_give_an_embedded_installation_under_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CALLREC_DATA_DIR", str(tmp_path / "data"))
    settings = load_settings()
    assert settings.retention_days == 180
    assert settings.embedded_s3
    assert settings.catalogue_url == f"sqlite:///{tmp_path / 'data' / 'catalogue.db'}"
    assert settings.language == "nl" and settings.timezone == "Europe/Amsterdam"
    assert settings.buckets.all() == ("incoming", "recordings", "quarantine", "exports")


def test_environment_and_dotenv_are_read(monkeypatch, tmp_path):
    (tmp_path / ".env").write_text("CALLREC_BUCKET_EXPORTS=dsr-exports\n")
    monkeypatch.setenv("CALLREC_S3_ENDPOINT", "minio.internal:9000")
    settings = load_settings()
    assert settings.bucket_exports == "dsr-exports"
    assert not settings.embedded_s3


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        (
            "CALLREC_RETENTION_DAYS",
            "half a year",
            "CALLREC_RETENTION_DAYS='half a year' is not valid",
        ),
        ("CALLREC_RETENTION_DAYS", "0", "greater than or equal to 1"),
        ("CALLREC_TIMEZONE", "Europe/Amsterdan", "unknown time zone"),
        ("CALLREC_LANGUAGE", "dutch", "two-letter"),
        ("CALLREC_UI_PORT", "99999", "CALLREC_UI_PORT"),
        ("CALLREC_S3_SECURE", "maybe", "CALLREC_S3_SECURE"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_was_expected(monkeypatch, key, value, expected):
    monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as error:
        load_settings()
    assert expected in str(error.value)
    assert "\n" not in str(error.value)


def test_an_unknown_variable_is_refused_with_the_closest_name(monkeypatch):
    monkeypatch.setenv("CALLREC_RETENTION_DAY", "30")
    with pytest.raises(
        SettingsError,
        match=r"unknown setting CALLREC_RETENTION_DAY .*did you mean CALLREC_RETENTION_DAYS",
    ):
        load_settings()


def test_an_unknown_key_in_dotenv_is_refused(tmp_path):
    (tmp_path / ".env").write_text("CALLREC_BUKET_INCOMING=x\n")
    with pytest.raises(SettingsError, match=r"CALLREC_BUKET_INCOMING.*CALLREC_BUCKET_INCOMING"):
        load_settings()


def test_effective_settings_mask_secrets_and_database_passwords(monkeypatch):
    monkeypatch.setenv("CALLREC_S3_SECRET_KEY", "s3-very-secret")
    monkeypatch.setenv(
        "CALLREC_DATABASE_URL", "postgresql+psycopg://callrec:db-very-secret@db/callrec"
    )
    shown = effective_settings(load_settings())
    text = "\n".join(f"{k}={v}" for k, v in shown.items())
    assert "s3-very-secret" not in text and "db-very-secret" not in text
    assert shown["CALLREC_S3_SECRET_KEY"] == "********"
    assert set(shown) == {f"CALLREC_{name.upper()}" for name in Settings.model_fields}


def test_retention_days_default_is_written_once():
    root = Path(__file__).resolve().parents[1]
    sources = [p for p in root.rglob("*.py") if ".venv" not in p.parts and "tests" not in p.parts]
    hits = [p for p in sources if "180" in p.read_text() and "retention" in p.read_text()]
    assert [p.name for p in hits] == ["settings.py"]
