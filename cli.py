"""The ``callrec`` command: parse, call a component, render. No business rule lives here."""

from __future__ import annotations

import json
import signal
import sys
import time
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated, Any

import typer

# Typer vendors Click; its usage errors are only importable from here (pinned typer ~=0.29).
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from errors import CallrecError
from settings import Settings, effective_settings, load_settings
from storage.connect import open_storage
from storage.status import collect_status

app = typer.Typer(
    name="callrec",
    help="Call-recording pipeline: ingest, transcribe, review, erase after the retention period.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _settings() -> Settings:
    return load_settings()


def _print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=False, default=str))


@app.command()
def config() -> None:
    """Print the effective settings (secrets masked)."""
    for key, value in effective_settings(_settings()).items():
        typer.echo(f"{key}={value}")


@app.command()
def status(as_json: JsonFlag = False) -> None:
    """Counts of calls by state, jobs, quarantine and holds, and the oldest call's age."""
    settings = _settings()
    with open_storage(settings) as storage:
        report = collect_status(storage, now=datetime.now(UTC)).to_dict()
    if as_json:
        _print_json(report)
        return
    typer.echo(
        f"S3:        {report['storage']['s3_endpoint']}"
        f"{' (embedded)' if report['storage']['s3_embedded'] else ''}"
    )
    typer.echo(f"catalogue: {report['storage']['database']}")
    typer.echo("calls:     " + _counts(report["calls"]["by_state"]))
    typer.echo("jobs:      " + _counts(report["jobs"]["by_state"]))
    typer.echo(
        f"quarantine: {report['quarantine']}   holds: {report['holds']}   "
        f"oldest call: {report['oldest_call_age_days']} days"
    )


def _counts(by_state: dict[str, int]) -> str:
    return ", ".join(f"{state} {count}" for state, count in by_state.items())


@app.command()
def run() -> None:
    """The main job: start storage, report status, and serve the review app until stopped."""
    from review_ui import start_review_app

    settings = _settings()
    _stop_on_sigterm()
    with open_storage(settings) as storage:
        report = collect_status(storage, now=datetime.now(UTC)).to_dict()
        typer.echo(
            f"storage ready: S3 {report['storage']['s3_endpoint']}, "
            f"catalogue {report['storage']['database']}"
        )
        typer.echo("calls: " + _counts(report["calls"]["by_state"]))
        app_process = start_review_app(settings)
        typer.echo(f"review app: http://{settings.ui_host}:{settings.ui_port} (Ctrl-C to stop)")
        try:
            while app_process.poll() is None:
                time.sleep(0.5)
            raise CallrecError(
                f"the review app exited with code {app_process.returncode}",
                hint=f"is port {settings.ui_port} free? set CALLREC_UI_PORT",
            )
        except KeyboardInterrupt:
            typer.echo("stopping...", err=True)
        finally:
            _stop_child(app_process)


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` runs and no server is left behind."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _stop_child(process: Any, grace_s: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except Exception:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user mistakes become one line on stderr and a non-zero exit."""
    try:
        code = app(args=argv, standalone_mode=False, prog_name="callrec")
    except NoArgsIsHelpError:
        sys.exit(0)  # Typer has printed the help already
    except UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
        typer.echo(f"callrec: error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except CallrecError as exc:
        typer.echo(f"callrec: error: {exc}", err=True)
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
