"""Local accounts of the review app, on SQLite and a real PostgreSQL server: sign-in per role,
refusals that reveal nothing, argon2id hashes, the policies, the last admin, the first start and
the `callrec users` commands."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import argon2
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

import cli
from storage import users
from storage.access import Role, Viewer
from storage.audit import Action, events
from storage.catalogue import AuditEvent, Catalogue
from storage.users import (
    AccountError,
    UnknownUserError,
    UserExistsError,
    add_user,
    authenticate,
    create_demo_accounts,
    disable_user,
    ensure_first_admin,
    list_users,
    set_password,
)
from tests.test_cli import CALLREC, _env

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PASSWORD = "paard-batterij-nietje"
# The hasher the module ships with, taken before any test swaps it for a faster one.
SHIPPED_HASHER = users._hasher


@pytest.fixture(autouse=True)
def fast_hashes(monkeypatch: pytest.MonkeyPatch) -> PasswordHasher:
    """Real argon2id with small costs: the default costs take about a second per hash on a
    busy 2-core machine. ``test_accounts_are_hashed_with_the_argon2id_defaults`` checks those."""
    hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(users, "_hasher", hasher)
    return hasher


@pytest.fixture
def catalogue(catalogue_url: str):
    with Catalogue.open(catalogue_url) as opened:
        yield opened


def _add(catalogue: Catalogue, name: str, role: Role = Role.ANALYST, **kwargs) -> str:
    teams = ("schade",) if role is Role.TEAM_LEAD else ()
    kwargs = {"teams": teams, "password": PASSWORD} | kwargs
    _, password = add_user(catalogue, name, role=role, actor="cli:test", now=NOW, **kwargs)
    return password


def _trail(catalogue: Catalogue) -> list[AuditEvent]:
    with catalogue.session() as session:
        return events(session)


def _trail_text(catalogue: Catalogue) -> str:
    return json.dumps([[e.actor, e.action, e.details] for e in _trail(catalogue)])


@pytest.mark.parametrize(
    ("role", "teams"),
    [
        (Role.TEAM_LEAD, ("schade", "zorg")),
        (Role.COMPLAINT_HANDLER, ()),
        (Role.ANALYST, ()),
        (Role.ADMIN, ()),
    ],
)
def test_each_role_signs_in_as_a_viewer_with_that_role_and_teams(
    catalogue: Catalogue, role: Role, teams: tuple[str, ...]
) -> None:
    user, password = add_user(
        catalogue, "Jan.de-Vries@example.nl", role=role, teams=teams, actor="cli:test", now=NOW
    )
    assert user.username == "jan.de-vries@example.nl"
    expected = Viewer("jan.de-vries@example.nl", role, teams)
    assert authenticate(catalogue, "jan.de-vries@example.nl", password, now=NOW) == expected
    assert authenticate(catalogue, " JAN.de-vries@EXAMPLE.nl ", password, now=NOW) == expected
    signed_in = [e for e in _trail(catalogue) if e.action == Action.SIGN_IN]
    assert len(signed_in) == 2 and signed_in[0].actor == "jan.de-vries@example.nl"
    [added] = [e for e in _trail(catalogue) if e.action == Action.USER_ADDED]
    assert added.details == {
        "username": "jan.de-vries@example.nl", "role": str(role), "teams": list(teams)
    }  # fmt: skip


def test_generated_passwords_are_long_readable_and_different(catalogue: Catalogue) -> None:
    passwords = [_add(catalogue, f"user{n}", password=None) for n in range(3)]
    assert len(set(passwords)) == 3
    for password in passwords:
        assert len(password) >= 16
        assert set(password) <= set("abcdefghjkmnpqrstuvwxyz23456789-")


def test_refusals_return_none_and_are_audited_without_the_password(catalogue: Catalogue) -> None:
    _add(catalogue, "handler", Role.COMPLAINT_HANDLER)
    _add(catalogue, "leaver", Role.ANALYST)
    _add(catalogue, "boss", Role.ADMIN)
    disable_user(catalogue, "leaver", actor="cli:test", now=NOW)
    attempts = [
        ("handler", "wrong-password-1"),
        ("nobody", "nobodys-password"),
        ("leaver", PASSWORD),
        ("my secret pass!", "typed-in-the-wrong-field"),
    ]
    for username, password in attempts:
        assert authenticate(catalogue, username, password, now=NOW) is None
    refused = [e for e in reversed(_trail(catalogue)) if e.action == Action.SIGN_IN_REFUSED]
    assert [(e.details["username"], e.details["reason"]) for e in refused] == [
        ("handler", "wrong password"),
        ("nobody", "unknown user"),
        ("leaver", "disabled"),
        (None, "unknown user"),  # not a username: more likely a password in the wrong field
    ]
    trail = _trail_text(catalogue)
    for _, password in attempts:
        assert password not in trail
    assert PASSWORD not in trail and "my secret pass" not in trail and "$argon2" not in trail


def test_an_unknown_user_costs_one_verification_with_real_parameters(
    catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    verified: list[str] = []

    class SpyHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes):
            verified.append(hash if isinstance(hash, str) else hash.decode())
            return super().verify(hash, password)

    monkeypatch.setattr(users, "_hasher", SpyHasher(time_cost=2, memory_cost=2048, parallelism=1))
    _add(catalogue, "real", Role.ANALYST)
    [real] = list_users(catalogue)
    for username in ("real", "nobody", "not a username!"):
        verified.clear()
        assert authenticate(catalogue, username, "some-wrong-password", now=NOW) is None
        [checked] = verified
        assert argon2.extract_parameters(checked) == argon2.extract_parameters(real.password_hash)


def test_passwords_are_stored_as_argon2id_hashes_and_replaced_by_set_password(
    catalogue: Catalogue,
) -> None:
    _add(catalogue, "handler", Role.COMPLAINT_HANDLER)
    [user] = list_users(catalogue)
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash
    new = set_password(catalogue, "HANDLER", actor="cli:admin", now=NOW)
    assert len(new) >= 16
    assert authenticate(catalogue, "handler", PASSWORD, now=NOW) is None
    assert authenticate(catalogue, "handler", new, now=NOW) is not None
    chosen = set_password(catalogue, "handler", password="a chosen passphrase", actor="x", now=NOW)
    assert chosen == "a chosen passphrase"
    assert authenticate(catalogue, "handler", chosen, now=NOW) is not None
    changes = [e for e in _trail(catalogue) if e.action == Action.PASSWORD_SET]
    assert [(e.actor, e.details) for e in changes] == [
        ("x", {"username": "handler"}),
        ("cli:admin", {"username": "handler"}),
    ]
    assert new not in _trail_text(catalogue) and chosen not in _trail_text(catalogue)


def test_accounts_are_hashed_with_the_argon2id_defaults(
    catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(users, "_hasher", SHIPPED_HASHER)
    user, password = add_user(catalogue, "admin2", role=Role.ADMIN, actor="t", now=NOW)
    parameters = argon2.extract_parameters(user.password_hash)
    assert parameters == argon2.profiles.RFC_9106_LOW_MEMORY  # PasswordHasher()'s defaults
    assert parameters.type is argon2.Type.ID
    assert authenticate(catalogue, "admin2", password, now=NOW) is not None


def test_a_hash_made_with_weaker_parameters_is_upgraded_at_sign_in(
    catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch, fast_hashes: PasswordHasher
) -> None:
    _add(catalogue, "old-timer", Role.ANALYST)
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    monkeypatch.setattr(users, "_hasher", stronger)
    assert authenticate(catalogue, "old-timer", "wrong-password-here", now=NOW) is None
    [user] = list_users(catalogue)
    assert argon2.extract_parameters(user.password_hash).time_cost == fast_hashes.time_cost
    assert authenticate(catalogue, "old-timer", PASSWORD, now=NOW) is not None
    [user] = list_users(catalogue)
    assert argon2.extract_parameters(user.password_hash).time_cost == stronger.time_cost
    assert authenticate(catalogue, "old-timer", PASSWORD, now=NOW) is not None


@pytest.mark.parametrize(
    ("username", "role", "teams", "password", "message"),
    [
        ("a", Role.ANALYST, (), PASSWORD, "'a' is not a valid username"),
        ("x" * 65, Role.ANALYST, (), PASSWORD, "is not a valid username"),
        ("jan jansen", Role.ANALYST, (), PASSWORD, "'jan jansen' is not a valid username"),
        ("jan/../admin", Role.ANALYST, (), PASSWORD, "is not a valid username"),
        ("", Role.ANALYST, (), PASSWORD, "'' is not a valid username"),
        ("jan", Role.ANALYST, (), "elevenchars", "at least 12 characters"),
        ("jan", Role.TEAM_LEAD, (), PASSWORD, "a team lead needs at least one team"),
        ("jan", Role.TEAM_LEAD, (" ", ""), PASSWORD, "a team lead needs at least one team"),
        ("jan", Role.ANALYST, ("schade",), PASSWORD, "only team leads have teams"),
        ("jan", Role.ADMIN, ("zorg",), PASSWORD, "only team leads have teams"),
        ("jan", Role.TEAM_LEAD, ("t" * 65,), PASSWORD, "is too long"),
    ],
)
def test_the_account_policies_are_one_clear_line_and_store_nothing(
    catalogue: Catalogue,
    username: str,
    role: Role,
    teams: tuple[str, ...],
    password: str,
    message: str,
) -> None:
    with pytest.raises(AccountError, match=message) as refused:
        add_user(catalogue, username, role=role, teams=teams, password=password, actor="t", now=NOW)
    assert "\n" not in str(refused.value) and refused.value.hint
    assert list_users(catalogue) == [] and _trail(catalogue) == []


@pytest.mark.parametrize("username", ["ab", "a" * 64, "jan.de-vries@example.nl", "j_2"])
def test_usernames_at_the_edges_of_the_policy_are_accepted(
    catalogue: Catalogue, username: str
) -> None:
    _add(catalogue, username, password="exactly12chr")
    assert authenticate(catalogue, username, "exactly12chr", now=NOW) is not None


def test_a_username_is_taken_whatever_its_case(catalogue: Catalogue) -> None:
    _add(catalogue, "jan")
    with pytest.raises(UserExistsError) as taken:
        _add(catalogue, "JAN", Role.ADMIN)
    assert taken.value.message == "user jan exists"
    assert [u.role for u in list_users(catalogue)] == ["analyst"]


def test_unknown_users_cannot_be_changed(catalogue: Catalogue) -> None:
    with pytest.raises(UnknownUserError, match="no user 'ghost'"):
        disable_user(catalogue, "ghost", actor="t", now=NOW)
    with pytest.raises(UnknownUserError, match="no user 'ghost'"):
        set_password(catalogue, "ghost", actor="t", now=NOW)


def test_the_last_enabled_admin_cannot_be_disabled(catalogue: Catalogue) -> None:
    _add(catalogue, "first", Role.ADMIN)
    _add(catalogue, "lead", Role.TEAM_LEAD)
    with pytest.raises(AccountError, match="first is the last enabled admin"):
        disable_user(catalogue, "first", actor="t", now=NOW)
    assert authenticate(catalogue, "first", PASSWORD, now=NOW) is not None
    _add(catalogue, "second", Role.ADMIN)
    disable_user(catalogue, "first", actor="t", now=NOW)
    disable_user(catalogue, "first", actor="t", now=NOW)  # again: nothing changes
    assert authenticate(catalogue, "first", PASSWORD, now=NOW) is None
    with pytest.raises(AccountError, match="second is the last enabled admin"):
        disable_user(catalogue, "second", actor="t", now=NOW)
    disable_user(catalogue, "lead", actor="t", now=NOW)  # other roles: no such rule
    assert {u.username: u.disabled for u in list_users(catalogue)} == {
        "first": True, "lead": True, "second": False
    }  # fmt: skip
    disabled = [e.details for e in _trail(catalogue) if e.action == Action.USER_DISABLED]
    assert disabled == [{"username": "lead"}, {"username": "first"}]


def test_two_admins_disabling_each_other_at_once_leave_one_enabled(catalogue: Catalogue) -> None:
    for name in ("ann", "bob"):
        _add(catalogue, name, Role.ADMIN)
    barrier = threading.Barrier(2)
    refused: list[BaseException] = []

    def disable(name: str) -> None:
        barrier.wait()
        try:
            disable_user(catalogue, name, actor="t", now=NOW)
        except (AccountError, sa.exc.OperationalError) as error:
            refused.append(error)  # a deadlock or busy database loses, it never wins twice

    threads = [threading.Thread(target=disable, args=(name,)) for name in ("ann", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refused) == 1
    assert sorted(u.disabled for u in list_users(catalogue)) == [False, True]


def test_the_first_admin_is_made_once(catalogue: Catalogue) -> None:
    password = ensure_first_admin(catalogue, now=NOW)
    assert password is not None and len(password) >= 16
    assert authenticate(catalogue, "admin", password, now=NOW) == Viewer("admin", Role.ADMIN)
    assert ensure_first_admin(catalogue, now=NOW) is None
    assert [u.username for u in list_users(catalogue)] == ["admin"]
    assert password not in _trail_text(catalogue)


def test_no_first_admin_when_accounts_exist(catalogue: Catalogue) -> None:
    _add(catalogue, "someone", Role.ADMIN)
    assert ensure_first_admin(catalogue, now=NOW) is None
    assert [u.username for u in list_users(catalogue)] == ["someone"]


def test_processes_starting_at_once_make_exactly_one_first_admin(catalogue_url: str) -> None:
    handles = [Catalogue.open(catalogue_url) for _ in range(4)]
    barrier = threading.Barrier(len(handles))
    passwords: list[str | None] = []

    def start(handle: Catalogue) -> None:
        barrier.wait()
        passwords.append(ensure_first_admin(handle, now=NOW))

    threads = [threading.Thread(target=start, args=(handle,)) for handle in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        [password] = [p for p in passwords if p is not None]
        assert len(passwords) == len(handles)
        assert authenticate(handles[0], "admin", password, now=NOW) is not None
        assert len(list_users(handles[0])) == 1
    finally:
        for handle in handles:
            handle.close()


def test_the_demo_gets_one_account_per_role(catalogue: Catalogue) -> None:
    admin = ensure_first_admin(catalogue, now=NOW)
    _add(catalogue, "handler", Role.ADMIN)  # taken already: left alone
    created = create_demo_accounts(catalogue, now=NOW)
    assert set(created) == {"team_lead", "analyst"}
    assert created["team_lead"][0] == "lead"
    for role, (username, password) in created.items():
        viewer = authenticate(catalogue, username, password, now=NOW)
        assert viewer is not None and viewer.role == role
    assert authenticate(catalogue, "lead", created["team_lead"][1], now=NOW) == Viewer(
        "lead", Role.TEAM_LEAD, ("schade", "zorg")
    )
    assert authenticate(catalogue, "admin", admin or "", now=NOW) is not None
    assert create_demo_accounts(catalogue, now=NOW) == {}
    assert [u.username for u in list_users(catalogue)] == ["admin", "analyst", "handler", "lead"]


# --- `callrec users`, in this process (fast hashes) and as a real process with a pipe -----


@pytest.fixture
def run_cli(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    catalogue_url: str,
):
    """``callrec ARGS...`` against the test's catalogue: (exit code, stdout, stderr)."""
    for key in [k for k in os.environ if k.startswith("CALLREC_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("CALLREC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CALLREC_DATABASE_URL", catalogue_url)
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exited:
            cli.main(list(args))
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out, err

    return run


def _shown_password(out: str) -> str:
    [line] = [line for line in out.splitlines() if line.startswith("password (shown once): ")]
    return line.removeprefix("password (shown once): ")


def test_cli_manages_accounts_and_never_prints_a_hash(run_cli, catalogue: Catalogue) -> None:
    code, out, _ = run_cli("users", "add", "Lead", "--role", "team_lead", "--teams", "schade,zorg")
    assert code == 0 and "added lead (team_lead of schade, zorg)" in out
    password = _shown_password(out)
    assert out.count(password) == 1
    assert authenticate(catalogue, "lead", password, now=NOW) == Viewer(
        "lead", Role.TEAM_LEAD, ("schade", "zorg")
    )
    assert run_cli("users", "add", "boss", "--role", "admin")[0] == 0

    code, out, _ = run_cli("users", "list", "--json")
    listed = json.loads(out)
    assert [(u["username"], u["role"], u["teams"], u["disabled"]) for u in listed] == [
        ("boss", "admin", [], False),
        ("lead", "team_lead", ["schade", "zorg"], False),
    ]
    assert {key for u in listed for key in u} == {
        "username", "role", "teams", "disabled", "created_at"
    }  # fmt: skip
    code, text, _ = run_cli("users", "list")
    assert "lead" in text and "schade,zorg" in text
    assert "$argon2" not in out + text and password not in out + text

    code, out, _ = run_cli("users", "set-password", "lead")
    new = _shown_password(out)
    assert new != password and authenticate(catalogue, "lead", new, now=NOW) is not None
    assert run_cli("users", "disable", "lead")[:2] == (0, "disabled lead\n")
    assert authenticate(catalogue, "lead", new, now=NOW) is None
    changes = (Action.USER_ADDED, Action.PASSWORD_SET, Action.USER_DISABLED)
    actors = [e.actor for e in _trail(catalogue) if e.action in changes]
    assert len(actors) == 4 and all(actor.startswith("cli:") for actor in actors)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("users", "add", "jan", "--role", "team_lead"), "a team lead needs at least one team"),
        (("users", "add", "j", "--role", "analyst"), "'j' is not a valid username"),
        (("users", "disable", "boss"), "boss is the last enabled admin"),
        (("users", "set-password", "ghost"), "there is no user 'ghost'"),
        (("users", "add", "boss", "--role", "analyst"), "user boss exists"),
    ],
)
def test_cli_mistakes_are_one_line(run_cli, args: tuple[str, ...], message: str) -> None:
    assert run_cli("users", "add", "boss", "--role", "admin")[0] == 0
    code, out, err = run_cli(*args)
    assert code == 1 and out == ""
    assert err.startswith(f"callrec: error: {message}") and err.count("\n") == 1


def test_cli_refuses_an_unknown_role_listing_the_roles(run_cli) -> None:
    code, _, err = run_cli("users", "add", "jan", "--role", "boss")
    assert code == 2 and err.count("\n") == 1
    assert all(role.value in err for role in Role)


def _callrec(data_dir: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CALLREC), *args],
        env=_env(data_dir),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=data_dir.parent,
    )


def test_cli_reads_a_chosen_password_from_stdin_and_never_echoes_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    chosen = "correct horse battery staple"
    added = _callrec(data_dir, "users", "add", "jan", "--role", "analyst", "--password-stdin",
                     stdin=chosen + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert added.stdout == "added jan (analyst)\n" and chosen not in added.stderr
    short = _callrec(data_dir, "users", "set-password", "jan", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "Traceback" not in short.stderr
    assert short.stderr.strip().splitlines() == [
        "callrec: error: the password is too short: it needs at least 12 characters — choose a "
        "longer one, or leave it out and callrec generates one"
    ]
    empty = _callrec(data_dir, "users", "set-password", "jan", "--password-stdin", stdin="")
    assert empty.returncode == 1 and empty.stderr.count("\n") == 1
    with Catalogue.open(f"sqlite:///{data_dir / 'catalogue.db'}") as catalogue:
        assert authenticate(catalogue, "jan", chosen, now=NOW) == Viewer("jan", Role.ANALYST)
