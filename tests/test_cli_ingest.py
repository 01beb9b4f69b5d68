"""`callrec ingest`, `callrec calls` and `callrec status` as a user runs them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.embedded_s3 import S3Endpoint
from storage.objects import ObjectStore
from tests.audio_files import make_recording
from tests.postgres_server import PostgresCluster
from tests.stores import callrec_env
from tests.test_cli import CALLREC, _env
from tests.test_faults import outage_during, settled, stores_on_postgres


def _callrec(data_dir: Path, s3: S3Endpoint, *args: str) -> subprocess.CompletedProcess[str]:
    env = _env(
        data_dir, s3_endpoint=s3.endpoint, s3_access_key=s3.access_key, s3_secret_key=s3.secret_key
    )
    return subprocess.run(
        [str(CALLREC), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=data_dir.parent,
    )


def _backfill_folder(folder: Path, count: int, *, prefix: str) -> None:
    folder.mkdir(parents=True)
    source = make_recording(folder.parent / "source", seconds=1.0)
    started = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    for index in range(count):
        target = folder / f"rec{index:03d}.wav"
        shutil.copy(source, target)
        meta = {
            "call_id": f"{prefix}-{index:03d}",
            "started_at": started,
            "agent_id": f"a{index % 7}",
        }
        target.with_name(target.name + ".json").write_text(json.dumps(meta))


def test_ingest_of_100_files_shows_progress_and_a_correct_summary(
    tmp_path: Path, s3_endpoint: S3Endpoint, key_prefix: str
):
    folder = tmp_path / "backfill"
    tag = key_prefix.strip("/").split("/")[-1][-8:]
    _backfill_folder(folder, 100, prefix=tag)
    (folder / "rec007.wav").write_bytes(b"")  # empty: quarantined
    (folder / "rec042.wav.json").write_text(json.dumps({"started_at": "2026-11-01T10:00:00Z"}))
    data_dir = tmp_path / "data"

    result = _callrec(data_dir, s3_endpoint, "ingest", str(folder))

    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("ingest: ")]
    assert progress[0] == "ingest: 10/100" and progress[-1] == "ingest: 100/100"
    assert len(progress) == 10
    lines = result.stdout.splitlines()
    assert lines[0] == "98 ingested, 2 quarantined"
    assert any("rec007.wav: empty" in line for line in lines[1:])
    assert any("rec042.wav: metadata has no call_id" in line for line in lines[1:])

    again = _callrec(data_dir, s3_endpoint, "ingest", "--json", str(folder))
    counts = json.loads(again.stdout)["counts"]
    assert counts["duplicate"] == 98 and counts["quarantined"] == 2, "a re-run changes nothing"

    listing = json.loads(
        _callrec(data_dir, s3_endpoint, "calls", "--json", "--limit", "500").stdout
    )
    assert len(listing) == 98
    assert {row["days_left"] for row in listing} == {176}
    assert all(row["channels"] == 2 and row["state"] == "ingested" for row in listing)

    status = json.loads(_callrec(data_dir, s3_endpoint, "status", "--json").stdout)
    assert status["calls"]["total"] == 98 and status["jobs"]["by_state"]["queued"] == 98
    assert status["quarantine"] == 2
    reasons = sorted(item["reason"] for item in status["quarantine_recent"])
    assert reasons[1] == "metadata has no call_id" and reasons[0].startswith("empty")


def test_ingest_with_a_csv_manifest(tmp_path: Path, s3_endpoint: S3Endpoint, key_prefix: str):
    folder = tmp_path / "in"
    folder.mkdir()
    make_recording(folder / "one", seconds=1.0)
    tag = key_prefix.strip("/").split("/")[-1][-8:]
    manifest = tmp_path / "manifest.csv"
    started = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    manifest.write_text(f"file,call_id,started_at,team\none.wav,m-{tag},{started},claims\n")
    result = _callrec(
        tmp_path / "data", s3_endpoint, "ingest", "--metadata", str(manifest), str(folder)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "1 ingested"


def test_ingest_of_a_missing_path_is_one_line(tmp_path: Path, s3_endpoint: S3Endpoint):
    result = _callrec(tmp_path / "data", s3_endpoint, "ingest", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"callrec: error: no such file or folder: {tmp_path / 'nope'} — check the path"
    ]


def test_a_refused_file_with_a_newline_in_its_name_is_reported_on_one_line(
    tmp_path: Path, s3_endpoint: S3Endpoint
):
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "line\nbreak.wav").write_bytes(b"")

    result = _callrec(tmp_path / "data", s3_endpoint, "ingest", str(folder))

    assert result.returncode == 0, result.stderr
    first, *quarantined = result.stdout.splitlines()
    assert first == "1 quarantined"
    [line] = quarantined
    assert (
        line.startswith("  quarantined ") and "/line\\nbreak.wav: metadata has no call_id" in line
    ), line


@pytest.mark.postgres
def test_ingest_cut_off_by_a_database_outage_says_so_in_one_line_and_exits_1(
    private_postgres: PostgresCluster,
    s3_endpoint: S3Endpoint,
    object_store: ObjectStore,
    tmp_path: Path,
    key_prefix: str,
):
    """Recordings left in incoming for the next run are not a finished batch: a script that
    checks the exit code must be told."""
    folder = tmp_path / "backfill"
    _backfill_folder(folder, 40, prefix=key_prefix.strip("/").split("/")[-1][-8:])
    with stores_on_postgres(
        private_postgres, s3_endpoint, object_store, tmp_path / "data"
    ) as storage:
        env = callrec_env(storage) | {
            "CALLREC_DATABASE_URL": str(storage.settings.database_url),
            "CALLREC_INGEST_WORKERS": "1",  # slow enough for the outage to fall mid-batch
        }
        command = [str(CALLREC), "ingest", str(folder)]
        run = outage_during(command, env, lambda: settled(storage), 1, private_postgres.stop)

    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert re.fullmatch(r"\d+ ingested, \d+ retry", run.stdout.splitlines()[0]), run.stdout
    left = int(run.stdout.split(", ")[1].split()[0])
    assert run.stderr.splitlines()[-1].startswith(
        f"callrec: error: {left} of 40 recordings were left for the next run: "
        "lost the catalogue database"
    ), run.stderr
    assert run.stderr.rstrip().endswith("once storage is back (settled ones stay)")


def test_scheduler_command_is_registered():
    help_text = subprocess.run(
        [str(CALLREC), "scheduler", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "recurring jobs" in help_text
    assert sys.executable
