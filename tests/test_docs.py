"""The README documents every setting and every command (one subtest per item), so a new one
cannot ship undocumented."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

import scheduler
from cli import app
from settings import Settings, env_name

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_setting_is_in_the_readme_settings_table(field: str):
    assert f"| `{env_name(field)}` |" in README


def _command_names() -> list[str]:
    """Every command, and every sub-command of a group as ``group sub`` (``users add``)."""
    command = typer.main.get_command(app)
    names = []
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        names += [name, *(f"{name} {child}" for child in getattr(sub, "commands", {}))]
    return sorted(names)


@pytest.mark.parametrize("name", _command_names())
def test_command_is_in_the_readme_commands_table(name: str):
    assert f"| `callrec {name}" in README


def test_readme_starts_with_the_two_setup_commands_and_ci_runs_the_test_one():
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    main_cmd, test_cmd = (line.split("  #")[0].strip() for line in first_block[:2])
    assert "callrec run" in main_cmd
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert test_cmd in ci.splitlines()


@pytest.mark.parametrize("job", sorted(scheduler.JOBS))
def test_scheduled_job_is_in_the_readme_jobs_table(job: str):
    assert f"| `{job}` |" in README


def test_the_scheduler_registers_exactly_the_documented_jobs(storage):
    from apscheduler.schedulers.background import BackgroundScheduler

    registered = scheduler.add_jobs(BackgroundScheduler(), storage)
    assert sorted(job.id for job in registered.get_jobs()) == sorted(scheduler.JOBS)
