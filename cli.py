"""The ``callrec`` command: parse, call a component, render. No business rule lives here."""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer

# Typer vendors Click; its usage errors are only importable from here (pinned typer ~=0.29).
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from errors import CallrecError
from settings import Settings, effective_settings, load_settings
from storage.access import Role
from storage.connect import open_storage
from storage.objects import one_line
from storage.status import collect_status

app = typer.Typer(
    name="callrec",
    help="Call-recording pipeline: ingest, transcribe, review, erase after the retention period.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
# Commands that read calls for someone apply that person's role (see ``_viewer``); without it
# they run as the operator, who holds the installation's credentials: the admin role.
AsRoleOption = Annotated[
    str, typer.Option("--as-role", help="team_lead, complaint_handler, analyst or admin.")
]
TeamsOption = Annotated[
    str | None, typer.Option("--teams", help="With --as-role team_lead: their teams, a,b.")
]


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
        f"quarantine: {report['quarantine']}   holds: {report['holds']} "
        f"({len(report['holds_due_for_review'])} due for review)   "
        f"oldest call: {report['oldest_call_age_days']} days"
    )
    for hold in report["holds_due_for_review"]:
        review = datetime.fromisoformat(hold["review_at"]).astimezone(settings.zone)
        typer.echo(f"  hold on {hold['call_id']} due for review since {review:%Y-%m-%d %H:%M %Z}")
    for item in report["quarantine_recent"]:
        typer.echo(f"  quarantined {one_line(item['source_key'])}: {item['reason']}")
    for job in report["failed_jobs"]:
        typer.echo(f"  failed job {job['job']} (call {job['call_id']}): {job['error']}")
    _echo_scheduled_runs(report["scheduled_runs"])


def _echo_scheduled_runs(runs: dict[str, Any]) -> None:
    """The verify verdict, and an alarm for every job whose last run failed."""
    checked = runs.get("verify")
    if checked is None or checked["ok"] is None:
        typer.echo("verify:    not run by the scheduler yet (it runs daily)")
    elif checked["ok"]:
        verdict = "ok" if checked["result"].get("ok") else "PROBLEMS FOUND (`callrec verify`)"
        typer.echo(f"verify:    {verdict} at {checked['finished_at']}")
    for job, run in runs.items():
        if run["ok"] is False:
            failed = f"the last {job} run failed at {run['finished_at']}"
            typer.echo(f"  ALARM: {failed}: {run['error']}")


def _number(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _counts(by_state: dict[str, int]) -> str:
    return ", ".join(f"{state} {count}" for state, count in by_state.items())


@app.command("ingest")
def ingest_files(
    paths: Annotated[list[Path], typer.Argument(help="Recordings, or folders to search.")],
    metadata: Annotated[
        Path | None, typer.Option("--metadata", help="Manifest (CSV with a header, or JSON).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Upload local recordings and ingest them exactly as if the PBX had dropped them."""
    from ingest.backfill import find_recordings, upload_and_ingest
    from ingest.pipeline import IngestOptions, Outcome

    settings = _settings()
    recordings = find_recordings(paths, manifest=metadata)
    progress = Progress(len(recordings), label="ingest", quiet=as_json)
    with open_storage(settings) as storage:
        results = upload_and_ingest(
            storage,
            recordings,
            now=datetime.now(UTC),
            options=IngestOptions.from_settings(storage),
            workers=settings.ingest_workers,
            on_result=lambda _: progress.advance(),
        )
    counts = {str(outcome): sum(r.outcome == outcome for r in results) for outcome in Outcome}
    if as_json:
        _print_json({"counts": counts, "results": [r.to_dict() for r in results]})
    else:
        summary = ", ".join(f"{n} {outcome}" for outcome, n in counts.items() if n)
        typer.echo(summary or "nothing to do")
        for result in results:
            if result.outcome == Outcome.QUARANTINED:
                typer.echo(f"  quarantined {one_line(result.key)}: {result.reason}")
    left = [r for r in results if r.outcome == Outcome.RETRY]
    if left:  # an outage: scripts must not take the batch for done
        raise CallrecError(
            f"{len(left)} of {len(results)} recordings were left for the next run: "
            f"{left[0].reason}",
            hint="run the same `callrec ingest` again once storage is back (settled ones stay)",
        )


@app.command("calls")
def list_calls(
    as_json: JsonFlag = False,
    limit: Annotated[int, typer.Option(help="Show at most this many, newest first.")] = 50,
    as_role: AsRoleOption = "admin",
    teams: TeamsOption = None,
) -> None:
    """List the calls a role may see: id, start, duration, channels, agent, state and days
    before deletion."""
    from storage.calls import CallFilters, find_calls

    settings = _settings()
    viewer = _viewer(as_role, teams)
    with open_storage(settings) as storage:
        rows = find_calls(storage, viewer, CallFilters(), now=datetime.now(UTC), limit=limit)
    if as_json:
        _print_json([row.to_dict() for row in rows])
        return
    width = max([len(row.call_id) for row in rows] + [4])
    typer.echo(
        f"{'call':<{width}} {'started':<16} {'dur':>6} ch {'agent':<10} {'state':<12} days left"
    )
    for row in rows:
        started = row.started_at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M")
        typer.echo(
            f"{row.call_id:<{width}} {started:<16} {row.duration_s:>5.0f}s {row.channels:>2} "
            f"{row.agent_id or '-':<10} {row.state:<12} {row.days_left}"
        )


@app.command()
def worker(
    device: Annotated[
        str | None, typer.Option(help="cpu or cuda (default CALLREC_DEVICE).")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="Calls at once (default CALLREC_WORKER_CONCURRENCY).")
    ] = None,
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Drain the queue, then exit.")
    ] = False,
) -> None:
    """Transcribe queued calls: claim a job under a lease, transcribe, store, repeat."""
    from transcribe import start_worker

    overrides = {
        k: v for k, v in {"device": device, "worker_concurrency": concurrency}.items() if v
    }
    settings = load_settings(**overrides)
    _stop_on_sigterm()
    _log_to_stderr()
    with open_storage(settings) as storage:
        stop = threading.Event()
        try:
            report = start_worker(storage, stop=stop, until_idle=until_idle)
        except KeyboardInterrupt:
            stop.set()
            typer.echo("stopping...", err=True)
            return
    typer.echo(f"transcribed {len(report.done)}, failed {len(report.failed)}")
    for call_id, error in report.failed:
        typer.echo(f"  {call_id}: {error}")


@app.command()
def retry(
    job: Annotated[
        int | None, typer.Argument(help="A failed job's id (see `callrec status`).")
    ] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Retry every failed job.")] = False,
) -> None:
    """Put a failed transcription job (or all of them) back in the queue."""
    from transcribe.jobs import retry as retry_jobs

    if (job is None) == (not failed):
        raise typer.BadParameter("give a JOB id or --failed (not both)")
    with open_storage(_settings()) as storage:
        count = retry_jobs(storage.catalogue, job_id=job, all_failed=failed, now=datetime.now(UTC))
    if job is not None and count == 0:
        raise CallrecError(
            f"job {job} is not a failed job", hint="see `callrec status` for failed jobs"
        )
    typer.echo(f"{count} job(s) queued again")


@app.command()
def show(
    call_id: Annotated[str, typer.Argument(help="The call's id.")],
    as_json: JsonFlag = False,
    redacted: Annotated[bool, typer.Option("--redacted", help="Personal data replaced.")] = False,
    as_role: AsRoleOption = "admin",
    teams: TeamsOption = None,
) -> None:
    """A call's metadata, metrics and speaker-labelled transcript with times, as a role may
    read it; recorded in the audit trail like a call opened in the review app."""
    from storage.calls import open_call

    settings = _settings()
    viewer = _viewer(as_role, teams)
    with open_storage(settings) as storage:
        detail = open_call(storage, viewer, call_id, now=datetime.now(UTC))
    payload = detail.to_dict(redacted=redacted)
    if as_json:
        _print_json(payload)
        return
    call = payload["call"]
    started = detail.call.started_at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M:%S %Z")
    typer.echo(
        f"call {call['id']}  started {started}  {call['duration_s']:.1f} s  {call['channels']} ch"
    )
    for key in ("agent_id", "team", "queue", "direction", "customer_number", "policy_number"):
        if call.get(key):
            typer.echo(f"  {key}: {call[key]}")
    typer.echo(f"  state: {call['state']}   days left: {payload['days_left']}")
    transcript = payload["transcript"]
    if transcript is None:
        typer.echo("no transcript yet")
        return
    flag = "  LANGUAGE MISMATCH" if transcript["language_mismatch"] else ""
    made = f"{transcript['model']}, {transcript['layout']}, {transcript['language']}"
    typer.echo(f"  transcript: {made}{flag}")
    metrics = {k: v for k, v in transcript["metrics"].items() if k != "options" and v is not None}
    typer.echo("  metrics: " + ", ".join(f"{k} {_number(v)}" for k, v in metrics.items()))
    for segment in payload["segments"]:
        minutes, seconds = divmod(segment["start_s"], 60)
        typer.echo(
            f"[{int(minutes):02d}:{seconds:04.1f}] {segment['speaker']:<8} {segment['text']}"
        )


@app.command("purge")
def purge_now(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would go; delete nothing.")
    ] = False,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Judge deadlines at this date/time (ISO 8601).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Erase every call and quarantined item at or past its retention deadline, now."""
    from storage.purge import purge

    settings = _settings()
    now = _instant(as_of, settings) if as_of else datetime.now(UTC)
    if as_of and not dry_run:
        raise typer.BadParameter("--as-of only with --dry-run: a purge always judges by the clock")
    with open_storage(settings) as storage:
        report = purge(storage, now=now, dry_run=dry_run)
    if as_json:
        _print_json(report.to_dict())
        return
    verb = "would erase" if dry_run else "erased"
    typer.echo(
        f"{verb} {len(report.calls_purged)} calls and {report.quarantine_purged} quarantined items "
        f"(deadline: {settings.retention_days} days after the call's start, judged at "
        f"{now:%Y-%m-%d %H:%M} UTC); {report.held} past their deadline kept by a hold"
    )
    for call_id in report.calls_purged:
        typer.echo(f"  {call_id}")


def _instant(text: str, settings: Settings) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not an ISO 8601 date or time, e.g. 2026-06-01"
        ) from None
    return (value if value.tzinfo else value.replace(tzinfo=settings.zone)).astimezone(UTC)


@app.command("verify")
def verify_storage(as_json: JsonFlag = False) -> None:
    """Check every bucket (all versions) against the catalogue and the retention deadline;
    exits 1 if anything is wrong."""
    from storage.verify import verify

    with open_storage(_settings()) as storage:
        report = verify(storage, now=datetime.now(UTC))
    if as_json:
        _print_json(report.to_dict())
    else:
        typer.echo("verify: ok" if report.ok else "verify: PROBLEMS FOUND")
        for label, items in (
            ("object without a catalogued call", report.orphan_objects),
            ("call whose original is missing", report.missing_objects),
            ("past its deadline, not held", report.past_deadline),
        ):
            for item in items:
                typer.echo(f"  {label}: {one_line(item)}")
        if report.backstop is not None and not report.backstop.ok:
            found = f"{report.backstop.days} days" if report.backstop.present else "missing"
            typer.echo(
                f"  lifecycle backstop rule: {found}, expected {report.backstop.expected_days} "
                "days (callrec sets it at start: does the S3 server support lifecycle rules?)"
            )
    if not report.ok:
        raise typer.Exit(1)


ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why, for the audit trail: a complaint or case number.")
]


@app.command("hold")
def hold_call(
    call_id: Annotated[str, typer.Argument(help="The call's id.")],
    reason: ReasonOption,
    review: Annotated[
        str, typer.Option("--review", help="When to look at the hold again (ISO 8601 date).")
    ],
) -> None:
    """Keep a call past its retention deadline (a dispute, a complaint) until released."""
    from storage.holds import place_hold

    settings = _settings()
    review_at = _instant(review, settings)
    with open_storage(settings) as storage:
        hold = place_hold(
            storage,
            call_id,
            reason=reason,
            review_at=review_at,
            viewer=_viewer("admin", None),
            now=datetime.now(UTC),
        )
    review_local = hold.review_at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M %Z")
    typer.echo(f"held {call_id} until released; review on {review_local}")


@app.command("release")
def release_call(
    call_id: Annotated[str, typer.Argument(help="The call's id.")], reason: ReasonOption
) -> None:
    """End a call's hold: the purge erases it once its deadline has passed."""
    from storage.holds import release_hold

    with open_storage(_settings()) as storage:
        viewer = _viewer("admin", None)
        release_hold(storage, call_id, reason=reason, viewer=viewer, now=datetime.now(UTC))
    typer.echo(f"released {call_id}")


@app.command("holds")
def list_holds(
    due: Annotated[bool, typer.Option("--due", help="Only holds past their review date.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Active holds: call, since, by whom, review date and reason."""
    from storage.holds import active_holds, holds_due_for_review

    settings = _settings()
    with open_storage(settings) as storage:
        holds = holds_due_for_review(storage, datetime.now(UTC)) if due else active_holds(storage)
    if as_json:
        _print_json([hold.model_dump(mode="json", exclude={"id"}) for hold in holds])
        return
    width = max([len(hold.call_id) for hold in holds] + [4])
    typer.echo(f"{'call':<{width}} {'since':<10} {'review':<10} {'by':<24} reason")
    for hold in holds:
        since, review = (
            t.astimezone(settings.zone).strftime("%Y-%m-%d")
            for t in (hold.created_at, hold.review_at)
        )
        typer.echo(
            f"{hold.call_id:<{width}} {since:<10} {review:<10} {hold.created_by:<24} {hold.reason}"
        )


CustomerOption = Annotated[
    str,
    typer.Option(
        "--customer", help="The customer's phone number, national (0612345678) or +31612345678."
    ),
]


@app.command("export")
def export_customer_data(
    customer: CustomerOption,
    reason: Annotated[
        str, typer.Option("--reason", help="Why, for the audit trail: a ticket number, no names.")
    ] = "access request",
    as_json: JsonFlag = False,
) -> None:
    """Answer an access request: every call of a customer in one zip behind a link that expires."""
    from storage.audit import cli_actor
    from storage.subject_requests import export_customer

    settings = _settings()
    with open_storage(settings) as storage:
        result = export_customer(
            storage, customer, actor=cli_actor(), reason=reason, now=datetime.now(UTC)
        )
    if as_json:
        _print_json(result.to_dict())
        return
    expires = result.expires_at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M %Z")
    typer.echo(
        f"export {result.export_id}: {result.calls} calls, {result.size_bytes / 1e6:.1f} MB, "
        f"deleted with its link on {expires}"
    )
    typer.echo(result.url)


@app.command("erase")
def erase_customer_data(
    customer: CustomerOption,
    reason: Annotated[
        str, typer.Option("--reason", help="Why, for the tombstones and the audit trail.")
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Erase without asking first.")] = False,
) -> None:
    """Answer an erasure request: erase every call of a customer now (refused while one is held)."""
    from storage.audit import cli_actor
    from storage.subject_requests import customer_calls, erase_customer

    if not yes and not sys.stdin.isatty():
        raise CallrecError(
            "erase asks for confirmation and there is no terminal to ask on",
            hint="pass --yes to erase without asking",
        )
    with open_storage(_settings()) as storage:
        if not yes:
            count = len(customer_calls(storage, customer, include_erasing=True))
            if not typer.confirm(f"Erase all {count} calls of this customer now, for good?"):
                typer.echo("nothing erased")
                raise typer.Exit(1)
        erased = erase_customer(
            storage, customer, reason=reason, actor=cli_actor(), now=datetime.now(UTC)
        )
    typer.echo(f"erased {len(erased)} calls of the customer")
    for call_id in erased:
        typer.echo(f"  {call_id}")


Text = Annotated[str | None, typer.Option()]


@app.command("search")
def search_transcripts(
    query: Annotated[str, typer.Argument(help='Words, "exact phrases", prefix*, OR, -exclusions.')],
    as_role: AsRoleOption = "admin",
    teams: TeamsOption = None,
    since: Annotated[str | None, typer.Option(help="Calls started on or after (ISO 8601).")] = None,
    until: Annotated[str | None, typer.Option(help="Calls started before (ISO 8601).")] = None,
    agent: Text = None,
    team: Text = None,
    queue: Text = None,
    direction: Annotated[str | None, typer.Option(help="inbound or outbound.")] = None,
    speaker: Annotated[str | None, typer.Option(help="agent, customer or unknown.")] = None,
    min_duration: Annotated[float | None, typer.Option(help="Seconds.")] = None,
    max_duration: Annotated[float | None, typer.Option(help="Seconds.")] = None,
    customer: Annotated[str | None, typer.Option(help="The customer's number.")] = None,
    policy: Annotated[str | None, typer.Option(help="The policy number.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Hits per page.")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many hits.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Search the transcripts as a role sees them: each hit is a call, who spoke and when."""
    from storage.search.service import Filters, search
    from storage.subject_requests import customer_number

    settings = _settings()
    viewer = _viewer(as_role, teams)
    with open_storage(settings) as storage:
        filters = Filters(
            since=_instant(since, settings) if since else None,
            until=_instant(until, settings) if until else None,
            agent=agent, team=team, queue=queue, direction=direction, speaker=speaker,
            min_duration_s=min_duration, max_duration_s=max_duration,
            customer_number=customer_number(customer, settings) if customer else None,
            policy_number=policy,
        )  # fmt: skip
        result = search(
            storage, query, viewer=viewer, filters=filters, limit=limit, offset=offset,
            now=datetime.now(UTC),
        )  # fmt: skip
    if as_json:
        _print_json(result.to_dict())
        return
    shown = "redacted text" if result.redacted else "full text"
    typer.echo(f"{len(result.hits)} hits for {result.query} ({shown}, newest first)")
    for hit in result.hits:
        started = hit.started_at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M")
        minutes, seconds = divmod(hit.start_s, 60)
        typer.echo(
            f"{hit.call_id}  {started}  [{int(minutes):02d}:{seconds:04.1f}] {hit.speaker:<8} "
            f"{hit.snippet}"
        )
    if result.more:
        typer.echo(f"more: --offset {offset + limit}")


def _viewer(role: str, teams: str | None) -> Any:
    """The command-line operator, acting as ``role`` (the role rules apply as in the app)."""
    from storage.access import Role, Viewer
    from storage.audit import cli_actor

    try:
        as_role = Role(role)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise typer.BadParameter(f"--as-role must be one of {choices}") from None
    names = _team_names(teams)
    if as_role is Role.TEAM_LEAD and not names:
        raise typer.BadParameter("--as-role team_lead needs --teams (the lead's teams)")
    return Viewer(cli_actor(), as_role, names)


def _team_names(teams: str | None) -> tuple[str, ...]:
    """``--teams a,b`` as names, blanks dropped."""
    return tuple(t.strip() for t in (teams or "").split(",") if t.strip())


users_app = typer.Typer(
    help="Accounts of the review app: add, list, disable, set a password.", no_args_is_help=True
)
app.add_typer(users_app, name="users")

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from one line on stdin (else one is made)."
    ),
]
UsernameArgument = Annotated[str, typer.Argument(help="The account's username.")]


@users_app.command("add")
def add_account(
    username: UsernameArgument,
    role: Annotated[Role, typer.Option("--role", help="What the account may see and do.")],
    teams: Annotated[
        str | None, typer.Option("--teams", help="With --role team_lead: their teams, a,b.")
    ] = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add an account; prints its generated password once (unless --password-stdin)."""
    from storage.audit import cli_actor
    from storage.users import add_user

    password = _password_from_stdin() if password_stdin else None
    with _accounts() as catalogue:
        user, made = add_user(
            catalogue, username, role=role, teams=_team_names(teams), password=password,
            actor=cli_actor(), now=datetime.now(UTC),
        )  # fmt: skip
    teams_text = f" of {', '.join(user.teams)}" if user.teams else ""
    typer.echo(f"added {user.username} ({user.role}{teams_text})")
    if password is None:
        typer.echo(f"password (shown once): {made}")


@users_app.command("list")
def list_accounts(as_json: JsonFlag = False) -> None:
    """Every account: username, role, teams, disabled, created (never a password hash)."""
    from storage.users import list_users

    settings = _settings()
    with _accounts() as catalogue:
        users = list_users(catalogue)
    if as_json:
        _print_json(
            [
                {"username": u.username, "role": u.role, "teams": u.teams,
                 "disabled": u.disabled, "created_at": u.created_at.isoformat()}
                for u in users
            ]
        )  # fmt: skip
        return
    width = max([len(user.username) for user in users] + [8])
    typer.echo(f"{'username':<{width}} {'role':<17} {'disabled':<8} {'created':<16} teams")
    for user in users:
        created = user.created_at.astimezone(settings.zone).strftime("%Y-%m-%d %H:%M")
        typer.echo(
            f"{user.username:<{width}} {user.role:<17} {'yes' if user.disabled else 'no':<8} "
            f"{created:<16} {','.join(user.teams) or '-'}"
        )


@users_app.command("disable")
def disable_account(username: UsernameArgument) -> None:
    """Stop an account from signing in (refused for the last enabled admin)."""
    from storage.audit import cli_actor
    from storage.users import disable_user

    with _accounts() as catalogue:
        disable_user(catalogue, username, actor=cli_actor(), now=datetime.now(UTC))
    typer.echo(f"disabled {username}")


@users_app.command("set-password")
def set_account_password(username: UsernameArgument, password_stdin: PasswordStdin = False) -> None:
    """Give an account a new password; prints a generated one once (unless --password-stdin)."""
    from storage.audit import cli_actor
    from storage.users import set_password

    password = _password_from_stdin() if password_stdin else None
    with _accounts() as catalogue:
        made = set_password(
            catalogue, username, password=password, actor=cli_actor(), now=datetime.now(UTC)
        )
    typer.echo(f"password of {username} set")
    if password is None:
        typer.echo(f"password (shown once): {made}")


def _accounts() -> Any:
    """Accounts live in the catalogue alone: no S3 server is started for them."""
    from storage.catalogue import Catalogue

    return Catalogue.open(_settings().catalogue_url)


def _password_from_stdin() -> str:
    """One line of stdin, so a password shows neither in ``ps`` nor in the shell history."""
    if sys.stdin.isatty():
        return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CallrecError(
            "--password-stdin read no password", hint="pipe one line, e.g. from a password manager"
        )
    return password


@app.command("ui")
def serve_review_app(
    port: Annotated[int | None, typer.Option(help="Port (default CALLREC_UI_PORT).")] = None,
) -> None:
    """Serve the review app alone (the recurring jobs run elsewhere), until stopped."""
    from review_ui import start_review_app, stop_child

    settings = load_settings(**({"ui_port": port} if port else {}))
    _stop_on_sigterm()
    with open_storage(settings) as storage:
        _first_admin(storage)
        app_process = start_review_app(settings)
        typer.echo(f"review app: http://{settings.ui_host}:{settings.ui_port} (Ctrl-C to stop)")
        try:
            _wait_for(app_process, settings)
        except KeyboardInterrupt:
            typer.echo("stopping...", err=True)
        finally:
            stop_child(app_process)


@app.command("scheduler")
def run_scheduler(
    no_worker: Annotated[
        bool,
        typer.Option(
            "--no-worker",
            help="Leave transcription to `callrec worker` processes (on machines sized for the "
            "model); this one then never loads it.",
        ),
    ] = False,
) -> None:
    """Run the recurring jobs alone (poll, sweep, transcribe, purge, verify, expire exports)
    until stopped; SIGTERM lets running jobs finish their run."""
    import scheduler

    settings = _settings()
    _stop_on_sigterm()
    jobs = [job for job in scheduler.JOBS if not (no_worker and job == "transcribe")]
    with open_storage(settings) as storage:
        typer.echo("scheduler running: " + ", ".join(jobs) + " (Ctrl-C to stop)")
        try:
            scheduler.run_forever(storage, with_worker=not no_worker)
        except KeyboardInterrupt:
            typer.echo("stopping...", err=True)


@app.command()
def run() -> None:
    """The main job: storage, the sample calls on a fresh installation, the recurring jobs, and
    the review app, until stopped."""
    import scheduler
    from ingest.demo import load_sample_calls_once
    from review_ui import start_review_app, stop_child

    settings = _settings()
    _stop_on_sigterm()
    _log_to_stderr()
    with open_storage(settings) as storage:
        report = collect_status(storage, now=datetime.now(UTC)).to_dict()
        typer.echo(
            f"storage ready: S3 {report['storage']['s3_endpoint']}, "
            f"catalogue {report['storage']['database']}"
        )
        _first_admin(storage)
        samples = load_sample_calls_once(storage, now=datetime.now(UTC))
        if samples:
            typer.echo(f"loaded {len(samples)} sample calls: " + ", ".join(samples))
            _demo_accounts(storage)
        stop_jobs = threading.Event()
        jobs = scheduler.background(storage, stop=stop_jobs)
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
            stop_child(app_process)
            stop_jobs.set()
            jobs.shutdown(wait=True)


class Progress:
    """Progress on stderr: a redrawn bar on a terminal, a line per tenth otherwise (logs)."""

    def __init__(self, total: int, *, label: str, quiet: bool = False) -> None:
        self.total, self.label, self.quiet, self.done = total, label, quiet, 0
        self.tty = sys.stderr.isatty()
        self._lock = threading.Lock()

    def advance(self) -> None:
        with self._lock:
            self.done += 1
            if self.quiet:
                return
            step = max(1, self.total // 10)
            if self.tty:
                filled = 30 * self.done // max(1, self.total)
                bar = "#" * filled + "-" * (30 - filled)
                end = "\n" if self.done == self.total else ""
                sys.stderr.write(f"\r{self.label} [{bar}] {self.done}/{self.total}{end}")
            elif self.done % step == 0 or self.done == self.total:
                sys.stderr.write(f"{self.label}: {self.done}/{self.total}\n")
            sys.stderr.flush()


def _log_to_stderr() -> None:
    """Long-running commands log what they do; the scheduler's own chatter stays quiet."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("faster_whisper").setLevel(logging.WARNING)


def _stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every ``finally`` runs and no server is left behind."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _wait_for(app_process: Any, settings: Settings) -> None:
    """Block while the review app runs; its exit is an error (a port in use, say)."""
    while app_process.poll() is None:
        time.sleep(0.5)
    raise CallrecError(
        f"the review app exited with code {app_process.returncode}",
        hint=f"is port {settings.ui_port} free? set CALLREC_UI_PORT",
    )


def _first_admin(storage: Any) -> None:
    """On the very first start, create the admin account and show its password once."""
    from storage.users import ensure_first_admin

    password = ensure_first_admin(storage.catalogue, now=datetime.now(UTC))
    if password:
        typer.echo(
            f'first start: admin account "admin" with password {password} (shown once; change it '
            "with `callrec users set-password admin`)"
        )


def _demo_accounts(storage: Any) -> None:
    """With the sample calls, an account for each other role to try the app with."""
    from storage.users import create_demo_accounts

    created = create_demo_accounts(storage.catalogue, now=datetime.now(UTC))
    for role, (username, password) in created.items():
        typer.echo(f'demo account: "{username}" ({role}) with password {password} (shown once)')


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
