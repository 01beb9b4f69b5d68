"""The access matrix: every page of the review app, every storage function that reads call data
for a viewer, and every command of the CLI, each tried by everyone who must be refused — a
visitor who has not signed in, every role without the right, the wrong credentials.

Each table mirrors a registry of the code and is checked against it (the pages ``app.py``
defines, the storage functions that take a viewer, the functions the pages call without one,
the Typer app's commands), so a new page, function or command fails here until it is classified.

"Refused" means the same everywhere: one clear answer, nothing of the call in it, and nothing
written. The code records no refusal events (the only refusal the audit trail holds is a
refused sign-in), so a refused request must leave every table and every bucket as it was.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import json
import pkgutil
import re
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
import typer
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block

import storage as storage_package
from cli import app as cli_app
from review_ui import state
from storage.access import AccessDeniedError, Role, Viewer
from storage.annotations import SCORECARD, add_note, add_score, notes_of, scores_of
from storage.audit import Action, events
from storage.calls import (
    CallFilters,
    CallNotFoundError,
    export_call,
    find_calls,
    open_call,
    playback_url,
)
from storage.catalogue import metadata
from storage.connect import Storage
from storage.holds import HOLDERS, active_hold, place_hold, release_hold
from storage.search.analytics import call_stats, term_trend
from storage.search.index import index_call
from storage.search.service import Filters, search
from tests import test_call_access, test_review_app, test_subject_requests
from tests.stores import callrec_env
from tests.test_call_access import (
    IBAN,
    NOW,
    NUMBER,
    REDACTED,
    SAID,
    catalogued_call,
    ingested,
    transcribe,
)
from tests.test_docs import _command_names

# Fixtures shared with the tests of each part: the app's environment, both catalogue backends,
# and `callrec` run in this process.
app_env = test_review_app.app_env
backend = test_call_access.backend
cli = test_subject_requests.cli

TEAM = "claims"
AGENT = "agent-7731"
LEAD = Viewer("lead-claims", Role.TEAM_LEAD, (TEAM,))
OTHER_LEAD = Viewer("lead-sales", Role.TEAM_LEAD, ("sales",))
HANDLER = Viewer("handler", Role.COMPLAINT_HANDLER)
ANALYST = Viewer("analyst", Role.ANALYST)
ADMIN = Viewer("root", Role.ADMIN)
VIEWERS = {viewer.role: viewer for viewer in (LEAD, HANDLER, ANALYST, ADMIN)}


def test_the_matrix_has_a_viewer_for_every_role():
    assert set(VIEWERS) == set(Role)


def traces_of(call_id: str) -> list[str]:
    """What of a seeded call must not show where it is refused: its id, agent, text (the word
    in both its full and its redacted text) and the customer's number."""
    return [call_id, AGENT, "rekening", IBAN, NUMBER, NUMBER[3:]]


def seed(storage: Storage, call_id: str, started: datetime) -> None:
    """A transcribed call of team claims with a customer number, policy and agent."""
    catalogued_call(
        storage, call_id, started, team=TEAM, agent_id=AGENT, customer_number=NUMBER,
        policy_number="POL-778899",
    )  # fmt: skip
    transcribe(storage, call_id, text=SAID, redacted=REDACTED)


def audit_actions(storage: Storage) -> list[str]:
    with storage.catalogue.session() as session:
        return [event.action for event in reversed(events(session))]


def written(storage: Storage) -> dict[str, Any]:
    """Everything a request could change: every row of every catalogue table and every object
    version in every bucket."""
    with storage.catalogue.session() as session:
        rows = {
            table.name: sorted(repr(tuple(row)) for row in session.execute(sa.select(table)))
            for table in metadata.sorted_tables
        }
    buckets = dataclasses.astuple(storage.settings.buckets)
    objects = {
        bucket: sorted((o.key, o.version_id) for o in storage.objects.list_versions(bucket))
        for bucket in buckets
    }
    return rows | objects


# --- 1. The review app's pages ----------------------------------------------------------------

APP = test_review_app.APP
EVERYONE = frozenset(Role)
ADMINS = frozenset({Role.ADMIN})


@dataclass(frozen=True)
class Page:
    roles: frozenset[Role]  # who may use it
    heading: str  # what it shows first ({call}: the call asked for in the URL)


PAGES: dict[str, Page] = {
    "calls": Page(EVERYONE, "Calls"),
    "call": Page(EVERYONE, "Call {call}"),
    "search": Page(EVERYONE, "Search"),
    "analytics": Page(frozenset({Role.TEAM_LEAD, Role.ANALYST, Role.ADMIN}), "Analytics"),
    "users": Page(ADMINS, "Users"),
    "audit": Page(ADMINS, "Audit trail"),
    "retention": Page(ADMINS, "Retention"),
    "quarantine": Page(ADMINS, "Quarantine and failed jobs"),
}
REFUSED_PAGES = [(p, r) for p, page in PAGES.items() for r in Role if r not in page.roles]
ALLOWED_PAGES = [(p, r) for p, page in PAGES.items() for r in Role if r in page.roles]

# Parts of the call page that only some roles get (the page decides; see UNCHECKED below).
SECTIONS = {
    "Coaching": frozenset({Role.TEAM_LEAD, Role.ADMIN}),
    "Dispute": frozenset({Role.COMPLAINT_HANDLER, Role.ADMIN}),
}


def test_the_matrix_lists_exactly_the_pages_the_app_defines():
    tree = ast.parse(APP.read_text())
    defined = [
        keyword.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "Page"
        for keyword in node.keywords
        if keyword.arg == "url_path" and isinstance(keyword.value, ast.Constant)
    ]
    assert sorted(defined) == sorted(PAGES)


@pytest.fixture
def page_call(app_env: Storage) -> str:
    """A call of yesterday (so the Calls page lists it by default) in the claims team."""
    call_id = f"claims-{uuid.uuid4().hex[:8]}"
    seed(app_env, call_id, datetime.now(UTC) - timedelta(days=1))
    return call_id


def visit(path: str, **query: str) -> AppTest:
    """The app as a browser first opens ``/path?query``: not signed in."""
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.context["url"] = f"http://localhost:8501/{path}?{urlencode(query)}"
    at.query_params.update(query)
    return at.run()


def signed_in(at: AppTest, viewer: Viewer) -> AppTest:
    """The same session once ``viewer`` has signed in (the form is tested in test_review_app)."""
    at.session_state[state.VIEWER] = viewer
    return at.run()


def shown(at: AppTest, *, leave_out: str = "") -> str:
    """Everything on the screen, as text: every element's message, tables by their cells."""
    parts = []
    for node in [*at.main, *at.sidebar]:
        if isinstance(node, Block) or node.type == leave_out:
            continue
        parts.append(node.value.to_csv() if node.type == "dataframe" else str(node.proto))
    return "\n".join(parts)


@pytest.mark.parametrize("path", sorted(PAGES))
def test_a_visitor_not_signed_in_gets_only_the_sign_in_form_and_nothing_is_read(
    app_env: Storage, page_call: str, path: str
):
    at = visit(path, call=page_call)

    assert not at.exception, at.exception
    assert [n.type for n in at.main if not isinstance(n, Block)] == [
        "title", "text_input", "text_input", "button",
    ]  # fmt: skip
    assert [t.label for t in at.text_input] == ["Username", "Password"]
    assert not list(at.sidebar.children)
    screen = shown(at)
    assert not [trace for trace in traces_of(page_call) if trace in screen]
    assert audit_actions(app_env) == []


@pytest.mark.parametrize(
    ("path", "role"), REFUSED_PAGES, ids=[f"{p}-{r}" for p, r in REFUSED_PAGES]
)
def test_a_role_without_the_page_is_told_so_and_shown_nothing_beyond_its_own_first_page(
    app_env: Storage, page_call: str, path: str, role: Role
):
    """A link to a page the role does not have lands on the role's first page with a warning;
    the screen and the audit trail are exactly those of that first page opened directly."""
    at = signed_in(visit(path, call=page_call), VIEWERS[role])
    refused_reads = audit_actions(app_env)
    home = signed_in(AppTest.from_file(str(APP), default_timeout=60), VIEWERS[role])

    assert not at.exception, at.exception
    assert [w.value for w in at.warning] == [f"The page '{path}' is not available to your role."]
    assert path not in at.session_state[state.PAGES]
    assert shown(at, leave_out="warning") == shown(home)
    assert audit_actions(app_env) == refused_reads * 2  # the first page's own reads, no more


@pytest.mark.parametrize(
    ("path", "role"), ALLOWED_PAGES, ids=[f"{p}-{r}" for p, r in ALLOWED_PAGES]
)
def test_a_role_with_the_page_gets_it_from_a_link_after_sign_in(
    app_env: Storage, page_call: str, path: str, role: Role
):
    """The other side of the refusals: the same link opens the page for the roles that have it
    (so a refusal above is the role's doing, not a broken link)."""
    at = signed_in(visit(path, call=page_call), VIEWERS[role])

    assert not at.exception, at.exception
    assert not at.warning
    assert PAGES[path].heading.format(call=page_call) == at.header[0].value


TRICKS: dict[str, tuple[Viewer, str]] = {
    "another-teams-call": (OTHER_LEAD, "{call}"),
    "relative-path": (HANDLER, "../{call}"),
    "parent-folder": (HANDLER, "../x"),
    "very-long": (HANDLER, "x" * 10_000),
    "unicode": (HANDLER, "☎📞 ëé\u202e" * 40),
    "nul-byte": (HANDLER, "a\x00b"),
    "sql": (HANDLER, "' OR '1'='1"),
    "wildcard": (HANDLER, "%"),
}


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_a_call_asked_for_by_a_tricky_query_parameter_is_no_call_and_nothing_is_read(
    app_env: Storage, page_call: str, trick: str
):
    viewer, asked = TRICKS[trick]
    asked = asked.format(call=page_call)
    at = signed_in(visit("call", call=asked), viewer)

    assert not at.exception, at.exception
    assert [n.type for n in at.main if not isinstance(n, Block)] == ["error"]  # nothing else
    assert at.error[0].value.startswith(f"no call {asked} — ")
    screen = shown(at).replace(json.dumps(asked)[1:-1], "")  # what was typed is echoed
    assert not [trace for trace in traces_of(page_call) if trace in screen]
    assert audit_actions(app_env) == []


@pytest.mark.parametrize("role", list(Role))
def test_the_call_page_shows_each_section_and_the_player_only_to_their_roles(
    app_env: Storage, page_call: str, role: Role
):
    at = signed_in(visit("call", call=page_call), VIEWERS[role])

    assert not at.exception, at.exception
    expected = {name for name, roles in SECTIONS.items() if role in roles}
    assert {s.value for s in at.subheader} & set(SECTIONS) == expected
    assert any(b.label == "Listen" for b in at.button) == (role is not Role.ANALYST)


# --- 2. The storage functions behind the pages ------------------------------------------------


class Refusal(Enum):
    DENIED = "AccessDeniedError naming the role"
    NO_CALL = "CallNotFoundError: as if the call did not exist"
    NOTHING = "an answer with nothing of the call in it"


DENIED, NO_CALL, NOTHING = Refusal
# How the matrix calls a function: (the function, storage, viewer, call id) -> its result.
Run = Callable[[Callable[..., Any], Storage, Viewer, str], Any]


def _names_the_call(result: Any, call_id: str) -> bool:
    return call_id in repr(result)


def _any_rows(result: Any, call_id: str) -> bool:
    return bool(result)  # aggregates name no call


def _exported(result: Any, call_id: str) -> bool:
    return bool(result.calls == 1)  # the zip's contents are checked in test_call_access


@dataclass(frozen=True)
class Read:
    """One storage function that reads (or writes) call data for a viewer."""

    function: Callable[..., Any]
    run: Run
    refused: Mapping[Viewer, Refusal]
    allowed: Viewer  # a role that may: proves the same request reaches the call
    reaches: Callable[[Any, str], bool] = _names_the_call  # the result holds the call

    @property
    def name(self) -> str:
        return f"{self.function.__module__}.{self.function.__name__}"


BY_NUMBER = Filters(customer_number=NUMBER)
FULL_MARKS = {criterion.key: 5 for criterion in SCORECARD}
WRITE_COACHING = {HANDLER: DENIED, ANALYST: DENIED, ADMIN: DENIED, OTHER_LEAD: NO_CALL}
READ_COACHING = {HANDLER: DENIED, ANALYST: DENIED, OTHER_LEAD: NO_CALL}
LOOKUP = {ANALYST: DENIED, OTHER_LEAD: NOTHING}  # by customer number

HOLDS = {LEAD: DENIED, OTHER_LEAD: DENIED, ANALYST: DENIED}  # for handlers and admins only
READS = [
    Read(place_hold, lambda f, s, v, c: f(s, c, reason="complaint 8", viewer=v, now=NOW,
         review_at=NOW + timedelta(days=30)), HOLDS, HANDLER),
    Read(release_hold, lambda f, s, v, c: (_held_for(s, v, c),
         f(s, c, reason="settled", viewer=v, now=NOW))[1], HOLDS, HANDLER),
    Read(active_hold, lambda f, s, v, c: (_held_for(s, v, c), f(s, v, c))[1], HOLDS, HANDLER),
    Read(find_calls, lambda f, s, v, c: f(s, v, CallFilters(customer_number=NUMBER), now=NOW),
         LOOKUP, HANDLER),
    Read(open_call, lambda f, s, v, c: f(s, v, c, now=NOW), {OTHER_LEAD: NO_CALL}, LEAD),
    Read(playback_url, lambda f, s, v, c: f(s, v, c, now=NOW),
         {ANALYST: DENIED, OTHER_LEAD: NO_CALL}, LEAD),
    Read(export_call, lambda f, s, v, c: f(s, v, c, reason="complaint 8", now=NOW),
         {LEAD: DENIED, OTHER_LEAD: DENIED, ANALYST: DENIED}, HANDLER, _exported),
    Read(add_note, lambda f, s, v, c: f(s, v, c, at_s=0.5, text="Goed", now=NOW),
         WRITE_COACHING, LEAD),
    Read(add_score, lambda f, s, v, c: f(s, v, c, scorecard=FULL_MARKS, comment=None, now=NOW),
         WRITE_COACHING, LEAD),
    Read(notes_of, lambda f, s, v, c: f(s, v, c), READ_COACHING, ADMIN),
    Read(scores_of, lambda f, s, v, c: f(s, v, c), READ_COACHING, ADMIN),
    Read(search, lambda f, s, v, c: f(s, "rekening", viewer=v, filters=BY_NUMBER, now=NOW),
         LOOKUP, HANDLER),
    Read(term_trend, lambda f, s, v, c: f(s, "rekening", viewer=v, filters=BY_NUMBER, now=NOW),
         LOOKUP, HANDLER, _any_rows),
    Read(call_stats, lambda f, s, v, c: f(s, viewer=v, filters=BY_NUMBER, now=NOW),
         LOOKUP, HANDLER, _any_rows),
]  # fmt: skip
READ_BY_NAME = {read.name: read for read in READS}


def _held_for(storage: Storage, viewer: Viewer, call_id: str) -> None:
    """Releasing and reading a hold need one to act on: placed (by the admin) only for a role
    that may hold calls, so a refused request finds nothing the matrix wrote itself."""
    if viewer.role in HOLDERS:
        place_hold(
            storage, call_id, reason="complaint 8", review_at=NOW + timedelta(days=30),
            viewer=ADMIN, now=NOW,
        )  # fmt: skip


def functions_taking_a_viewer() -> set[str]:
    """Every public function of ``storage`` that works on the stores for a viewer."""
    found = set()
    for module in pkgutil.walk_packages(storage_package.__path__, "storage."):
        if ".migrations" in module.name:
            continue  # Alembic scripts, run by Alembic only
        loaded = importlib.import_module(module.name)
        for name, value in vars(loaded).items():
            if name.startswith("_") or not inspect.isfunction(value):
                continue
            parameters = list(inspect.signature(value).parameters)
            if value.__module__ == loaded.__name__ and parameters[:1] == ["storage"]:
                found |= {f"{loaded.__name__}.{name}"} if "viewer" in parameters else set()
    return found


def test_the_matrix_lists_every_storage_function_that_reads_for_a_viewer():
    assert sorted(READ_BY_NAME) == sorted(functions_taking_a_viewer())


@pytest.fixture
def stored_call(backend: Storage, tmp_path: Path) -> str:
    """A real ingested call of team claims (audio in S3), transcribed, indexed for search, with
    a coaching note and a scorecard: something behind every function to leak."""
    call_id = ingested(backend, tmp_path).id
    with backend.catalogue.session() as session:
        session.execute(
            sa.text("UPDATE calls SET agent_id = :agent, customer_number = :number WHERE id = :id"),
            {"agent": AGENT, "number": NUMBER, "id": call_id},
        )
    transcribe(backend, call_id, text=SAID, redacted=REDACTED)
    with backend.catalogue.session() as session:
        index_call(session.connection(), call_id)
    add_note(backend, LEAD, call_id, at_s=0.5, text="Goed doorgevraagd", now=NOW)
    add_score(backend, LEAD, call_id, scorecard=FULL_MARKS, comment=None, now=NOW)
    return call_id


@pytest.mark.parametrize("name", sorted(READ_BY_NAME))
def test_a_storage_function_refuses_each_role_it_must_and_nothing_is_written(
    backend: Storage, stored_call: str, name: str
):
    read = READ_BY_NAME[name]
    for viewer, refusal in read.refused.items():
        before = written(backend)
        if refusal is NOTHING:
            result = read.run(read.function, backend, viewer, stored_call)
            assert not read.reaches(result, stored_call), (viewer, result)
            _assert_only_audited_without_the_call(backend, before, stored_call)
            continue
        error, words = (
            (AccessDeniedError, f"is not available to the {viewer.role} role")
            if refusal is DENIED
            else (CallNotFoundError, f"^no call {re.escape(stored_call)} — ")
        )
        with pytest.raises(error, match=words):
            read.run(read.function, backend, viewer, stored_call)
        assert written(backend) == before, (viewer, refusal)

    answer = read.run(read.function, backend, read.allowed, stored_call)
    assert read.reaches(answer, stored_call), answer


def _assert_only_audited_without_the_call(storage: Storage, before: dict[str, Any], call_id: str):
    """A lookup that found nothing is still a lookup (audited); the event must not name the call."""
    after = written(storage)
    assert {k: v for k, v in after.items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"
    }
    with storage.catalogue.session() as session:
        new = events(session, limit=len(after["audit_events"]) - len(before["audit_events"]))
    assert all(e.call_id is None and call_id not in json.dumps(e.details) for e in new), new


LOOKUPS_BY_NUMBER = [
    "storage.calls.find_calls",
    "storage.search.service.search",
    "storage.search.analytics.term_trend",
    "storage.search.analytics.call_stats",
]


@pytest.mark.parametrize("name", LOOKUPS_BY_NUMBER)
def test_a_lookup_by_customer_number_is_audited_without_the_number(
    backend: Storage, stored_call: str, name: str
):
    read = READ_BY_NAME[name]
    read.run(read.function, backend, read.allowed, stored_call)
    with backend.catalogue.session() as session:
        trail = [json.dumps(event.details) for event in events(session)]
    assert trail and not [details for details in trail if NUMBER[3:] in details]


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_a_tricky_call_id_is_no_call_on_both_backends(
    backend: Storage, stored_call: str, trick: str
):
    viewer, asked = TRICKS[trick]
    asked = asked.format(call=stored_call)
    with pytest.raises(CallNotFoundError, match=f"^no call {re.escape(asked)} — "):
        open_call(backend, viewer, asked, now=NOW)
    assert Action.VIEW not in audit_actions(backend)


# What the pages call without a viewer: these functions check no role themselves, so each is
# kept from the wrong roles by the page around it (tested above), or holds no call data.
DISPUTE = "the call page's Dispute section (SECTIONS)"
ADMIN_PAGES = "the admin pages (PAGES, and require_role in review_ui/views/admin.py)"
SIGN_IN = "the sign-in form"
NO_CALL_DATA = "no call data"
UNCHECKED = {
    "storage.holds.holds_due_for_review": ADMIN_PAGES,
    "storage.status.collect_status": ADMIN_PAGES,
    "scheduler.last_runs": ADMIN_PAGES,
    "transcribe.jobs.retry": ADMIN_PAGES,
    "storage.users.add_user": ADMIN_PAGES,
    "storage.users.disable_user": ADMIN_PAGES,
    "storage.users.list_users": ADMIN_PAGES,
    "storage.users.set_password": ADMIN_PAGES,
    "storage.users.authenticate": SIGN_IN,
    "storage.connect.open_storage": NO_CALL_DATA,
    "storage.subject_requests.customer_number": NO_CALL_DATA,  # normalises a typed number
    "storage.search.analytics.write_csv": NO_CALL_DATA,  # writes rows already read for a viewer
}


def functions_the_pages_call() -> dict[str, bool]:
    """Each function the app imports from callrec's components, and whether it takes a viewer."""
    called = {}
    review_ui = APP.parent
    for source in [*review_ui.glob("*.py"), *review_ui.glob("views/*.py")]:
        for node in ast.walk(ast.parse(source.read_text())):
            if not isinstance(node, ast.ImportFrom) or node.module is None:
                continue
            if node.module.split(".")[0] not in {"storage", "transcribe", "scheduler", "ingest"}:
                continue
            module = importlib.import_module(node.module)
            for alias in node.names:
                function = getattr(module, alias.name)
                if inspect.isfunction(function):
                    name = f"{function.__module__}.{function.__name__}"
                    called[name] = "viewer" in inspect.signature(function).parameters
    return called


def test_every_function_the_pages_call_is_role_checked_or_gated_by_its_page():
    called = functions_the_pages_call()
    checked = {name for name, takes_viewer in called.items() if takes_viewer}
    assert checked - {"storage.access.require_role"} <= set(READ_BY_NAME)
    assert sorted(name for name, takes_viewer in called.items() if not takes_viewer) == sorted(
        UNCHECKED
    )


# --- 3. The command line ----------------------------------------------------------------------

CALLREC = Path(sys.executable).parent / "callrec"

# Every command that opens the installation's stores to read (or change) call data, with
# arguments that would do so (``{call}`` and ``{recording}`` are filled in).
STORE_COMMANDS: dict[str, tuple[str, ...]] = {
    "status": ("status",),
    "calls": ("calls",),
    "show": ("show", "{call}"),
    "search": ("search", "rekening"),
    "export": ("export", "--customer", NUMBER, "--reason", "ticket 1"),
    "erase": ("erase", "--customer", NUMBER, "--reason", "ticket 2", "--yes"),
    "hold": ("hold", "{call}", "--reason", "ticket 3", "--review", "2099-01-01"),
    "release": ("release", "{call}", "--reason", "ticket 4"),
    "holds": ("holds",),
    "verify": ("verify",),
    "purge": ("purge",),
    "retry": ("retry", "--failed"),
    "ingest": ("ingest", "{recording}"),
    "worker": ("worker", "--until-idle"),
    "ui": ("ui",),
    "scheduler": ("scheduler",),
    "run": ("run",),
}
# Commands that hold no call data (an account is no call; the catalogue's credentials still
# guard the accounts).
NO_CALL_DATA_COMMANDS = {
    "config": "the settings, secrets masked",
    "users": "a group: its commands are below",
    "users add": "an account",
    "users list": "accounts (never a password hash)",
    "users disable": "an account",
    "users set-password": "an account's password",
}
# Commands that read calls on someone's behalf: they take --as-role like the app's sign-in.
ROLE_COMMANDS = {"calls": ("calls",), "show": ("show", "{call}"), "search": ("search", "x")}


def test_the_matrix_classifies_every_command():
    assert not set(STORE_COMMANDS) & set(NO_CALL_DATA_COMMANDS)
    assert sorted([*STORE_COMMANDS, *NO_CALL_DATA_COMMANDS]) == _command_names()


def test_exactly_the_commands_that_read_for_someone_take_a_role():
    commands = typer.main.get_command(cli_app).commands  # type: ignore[attr-defined]
    with_role = {
        name
        for name, command in commands.items()
        if {"--as-role", "--teams"} <= {o for p in command.params for o in p.opts}
    }
    assert with_role == set(ROLE_COMMANDS)


WRONG_PASSWORD = "not-the-password-4711"
# A credential that is not the installation's, on the catalogue it guards: the setting, and
# the store fixture whose credential it replaces.
WRONG_CREDENTIALS = {
    "s3-secret": ("CALLREC_S3_SECRET_KEY", "storage"),
    "catalogue-account": ("CALLREC_DATABASE_URL", "pg_storage"),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("credential", sorted(WRONG_CREDENTIALS))
@pytest.mark.parametrize("command", sorted(STORE_COMMANDS))
def test_without_the_installations_credentials_a_command_fails_in_one_line_writing_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, command: str, credential: str
):
    """Unauthenticated, at the command line, is not holding the credentials: an S3 secret that
    is not the installation's, or a database account that is not (the test server trusts every
    password, so an unknown account stands in for a wrong password)."""
    setting, fixture = WRONG_CREDENTIALS[credential]
    stores: Storage = request.getfixturevalue(fixture)
    call_id = f"claims-{uuid.uuid4().hex[:8]}"
    seed(stores, call_id, NOW)
    recording = tmp_path / "new-call.wav"  # ingest looks at its bytes only after connecting
    recording.write_bytes(b"RIFF")
    url = stores.settings.catalogue_url
    env = callrec_env(stores) | {"CALLREC_DATABASE_URL": url, "CALLREC_UI_PORT": str(_free_port())}
    env[setting] = (
        re.sub(r"//[^@/]*@", f"//intruder:{WRONG_PASSWORD}@", url)
        if setting == "CALLREC_DATABASE_URL"
        else "not-the-secret"
    )
    args = [a.format(call=call_id, recording=recording) for a in STORE_COMMANDS[command]]
    before = written(stores)

    result = subprocess.run(
        [str(CALLREC), *args], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )

    assert (result.returncode, result.stdout) == (1, ""), result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("callrec: error: ") and setting in line, line
    assert call_id not in line and WRONG_PASSWORD not in line
    assert written(stores) == before


@pytest.fixture
def two_teams(storage: Storage) -> dict[str, str]:
    """A transcribed call of claims and one of sales, by team."""
    ids = {TEAM: f"claims-{uuid.uuid4().hex[:8]}", "sales": f"sales-{uuid.uuid4().hex[:8]}"}
    seed(storage, ids[TEAM], NOW - timedelta(days=1))
    catalogued_call(storage, ids["sales"], NOW - timedelta(days=2), team="sales")
    return ids


def as_role(viewer: Viewer) -> tuple[str, ...]:
    teams = ("--teams", ",".join(viewer.teams)) if viewer.teams else ()
    return ("--as-role", str(viewer.role), *teams)


@pytest.mark.parametrize("viewer", [*VIEWERS.values(), OTHER_LEAD], ids=lambda v: v.name)
def test_callrec_calls_as_a_role_lists_what_that_role_may_see(
    storage: Storage, two_teams: dict[str, str], cli, capsys, viewer: Viewer
):
    assert cli("calls", "--json", *as_role(viewer)) == 0
    listed = {row["call_id"] for row in json.loads(capsys.readouterr().out)}

    scope = viewer.teams or (TEAM, "sales")
    assert listed == {two_teams[team] for team in scope}


def test_callrec_calls_and_show_without_a_role_are_the_operators_full_view(
    storage: Storage, two_teams: dict[str, str], cli, capsys
):
    assert cli("calls", "--json") == 0
    assert {row["call_id"] for row in json.loads(capsys.readouterr().out)} == set(
        two_teams.values()
    )
    assert cli("show", two_teams[TEAM]) == 0
    printed = capsys.readouterr().out
    assert SAID in printed and NUMBER in printed
    with storage.catalogue.session() as session:
        [view] = events(session, action=Action.VIEW)
    assert view.actor.startswith("cli:") and view.details == {"role": "admin", "redacted": False}


def test_callrec_show_as_an_analyst_prints_only_redacted_text_and_is_audited_so(
    storage: Storage, two_teams: dict[str, str], cli, capsys
):
    assert cli("show", two_teams[TEAM], "--json", "--as-role", "analyst") == 0
    printed = capsys.readouterr().out

    assert REDACTED in printed
    assert not [secret for secret in (IBAN, NUMBER, NUMBER[3:], "POL-778899") if secret in printed]
    with storage.catalogue.session() as session:
        [view] = events(session, action=Action.VIEW)
    assert view.details == {"role": "analyst", "redacted": True}


# Requests a role may not make at the command line: the arguments, and the words of the line.
CLI_REFUSALS = {
    "show-another-teams-call": (
        ("show", "{call}", "--as-role", "team_lead", "--teams", "sales"),
        "no call {call} — ",
    ),
    "search-by-customer-as-analyst": (
        ("search", "rekening", "--as-role", "analyst", "--customer", NUMBER),
        "filtering by customer number is not available to the analyst role",
    ),
}


@pytest.mark.parametrize("case", sorted(CLI_REFUSALS))
def test_callrec_refuses_what_the_role_may_not_read_in_one_line_and_writes_nothing(
    storage: Storage, two_teams: dict[str, str], cli, capsys, case: str
):
    args, words = CLI_REFUSALS[case]
    call_id = two_teams[TEAM]
    before = written(storage)

    assert cli(*(a.format(call=call_id) for a in args)) == 1
    out, err = capsys.readouterr()

    assert out == ""
    assert err.splitlines() == [err.strip()] and words.format(call=call_id) in err, err
    assert written(storage) == before


@pytest.mark.parametrize("command", sorted(ROLE_COMMANDS))
def test_a_role_the_cli_does_not_know_or_a_lead_without_teams_is_a_usage_error(
    storage: Storage, cli, capsys, command: str
):
    args = [a.format(call="any") for a in ROLE_COMMANDS[command]]
    for role, words in (("boss", "--as-role must be one of"), ("team_lead", "--teams")):
        assert cli(*args, "--as-role", role) == 2
        err = capsys.readouterr().err
        assert err.splitlines() == [err.strip()] and words in err, err
    assert audit_actions(storage) == []
