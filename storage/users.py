"""Local accounts of the review app: who may sign in, with which role, and their passwords.

Passwords are stored only as argon2id hashes (``argon2.PasswordHasher`` defaults, which follow
RFC 9106's recommendation); a generated password is returned once and never kept. Every change
and every sign-in attempt writes an audit event in the same transaction, naming the account and
never the password or its hash.

Usernames are compared in lower case, so ``Lead`` and ``lead`` can never be two people in the
audit trail.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select

from errors import CallrecError
from storage.access import Role, Viewer
from storage.audit import Action, record
from storage.catalogue import Catalogue, User

__all__ = [
    "AccountError",
    "UnknownUserError",
    "UserExistsError",
    "add_user",
    "authenticate",
    "create_demo_accounts",
    "disable_user",
    "ensure_first_admin",
    "list_users",
    "set_password",
]

MIN_PASSWORD_CHARS = 12
FIRST_ADMIN = "admin"
_USERNAME = re.compile(r"[a-z0-9._@-]{2,64}")
_TEAM_MAX_CHARS = 64  # calls.team
# No look-alikes (0/o, 1/l/i), so a password read off a screen is typed right the first time:
# 20 characters of 31 are about 99 bits.
_PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_PASSWORD_GROUPS, _PASSWORD_GROUP_CHARS = 4, 5
# (role, username, teams) of the accounts the demo installation gets next to its admin.
_DEMO_ACCOUNTS = (
    (Role.TEAM_LEAD, "lead", ("schade", "zorg")),
    (Role.COMPLAINT_HANDLER, "handler", ()),
    (Role.ANALYST, "analyst", ()),
)
_FIRST_START_ACTOR = "callrec:first-start"
_DEMO_ACTOR = "callrec:demo"

_hasher = PasswordHasher()


class AccountError(CallrecError):
    """An account cannot be added or changed as asked (a policy, or the last admin)."""


class UserExistsError(AccountError):
    """The username is taken."""


class UnknownUserError(AccountError):
    """No account has this username."""


def add_user(
    catalogue: Catalogue,
    username: str,
    *,
    role: Role,
    teams: Sequence[str] = (),
    password: str | None = None,
    actor: str,
    now: datetime,
) -> tuple[User, str]:
    """Create an account; a team lead sees the calls of ``teams`` only, other roles have none.

    Args:
        password: At least 12 characters; ``None`` generates one (to be shown once).

    Returns:
        The new user and its password.

    Raises:
        AccountError: The username, teams or password break the rules (the message says which).
        UserExistsError: The username is taken (also when another process just took it).
    """
    name = _valid_username(username)
    team_names = _valid_teams(role, teams)
    password = _valid_password(password) if password is not None else _generate_password()
    user = User(
        username=name,
        role=str(role),
        teams=list(team_names),
        password_hash=_hasher.hash(password),
        created_at=now,
    )
    try:
        with catalogue.session() as session:
            if _find(session, name) is not None:
                raise _exists(name)
            session.add(user)
            session.flush()  # a concurrent insert of the same name fails here, not at commit
            record(
                session, actor=actor, action=Action.USER_ADDED, at=now,
                username=name, role=str(role), teams=list(team_names),
            )  # fmt: skip
    except sa.exc.IntegrityError:
        raise _exists(name) from None
    return user, password


def authenticate(
    catalogue: Catalogue, username: str, password: str, *, now: datetime
) -> Viewer | None:
    """The signed-in viewer, or ``None`` for an unknown user, a wrong password or a disabled
    account; the caller cannot tell which, so a sign-in form cannot be used to find usernames.

    An unknown username costs a verification against a dummy hash, so the answer takes as long
    as for a real one. Every attempt is audited with the username tried (only when it is a
    well-formed username: something else is more likely a password typed in the wrong field).
    """
    name = username.strip().lower()
    tried = name if _USERNAME.fullmatch(name) else None
    with catalogue.session() as session:
        user = _find(session, name) if tried else None
        matches = _verify(user.password_hash if user else _dummy_hash(_hasher), password)
        if user is None or user.disabled or not matches:
            record(
                session, actor=tried or "(not a username)", action=Action.SIGN_IN_REFUSED, at=now,
                username=tried, reason=_refusal(user),
            )  # fmt: skip
            return None
        if _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = _hasher.hash(password)  # parameters raised since it was set
            session.add(user)
        record(session, actor=user.username, action=Action.SIGN_IN, at=now, username=user.username)
    return Viewer(user.username, Role(user.role), tuple(user.teams))


def set_password(
    catalogue: Catalogue,
    username: str,
    *,
    password: str | None = None,
    actor: str,
    now: datetime,
) -> str:
    """Give an account a new password (``None`` generates one) and return it.

    Raises:
        UnknownUserError: No such account.
        AccountError: The password is too short.
    """
    password = _valid_password(password) if password is not None else _generate_password()
    password_hash = _hasher.hash(password)
    with catalogue.session() as session:
        user = _require(session, username)
        user.password_hash = password_hash
        session.add(user)
        record(session, actor=actor, action=Action.PASSWORD_SET, at=now, username=user.username)
    return password


def disable_user(catalogue: Catalogue, username: str, *, actor: str, now: datetime) -> None:
    """Stop an account from signing in (its audit trail stays); disabling twice is a no-op.

    Raises:
        UnknownUserError: No such account.
        AccountError: It is the last enabled admin: nobody could manage accounts any more.
    """
    with catalogue.session() as session:
        user = _require(session, username)
        if user.disabled:
            return
        if user.role == Role.ADMIN:
            # PostgreSQL: two admins disabling each other at once queue here, so the second
            # sees the first's change; SQLite ignores FOR UPDATE and queues at the write below.
            admins = select(User.id).where(User.role == str(Role.ADMIN)).order_by(col(User.id))
            session.exec(admins.with_for_update()).all()
        user.disabled = True
        session.add(user)
        session.flush()
        if user.role == Role.ADMIN and _enabled_admins(session) == 0:
            raise AccountError(
                f"{user.username} is the last enabled admin; without one nobody can manage "
                "accounts or answer privacy requests in the app",
                hint="add another admin first: callrec users add NAME --role admin",
            )
        record(session, actor=actor, action=Action.USER_DISABLED, at=now, username=user.username)


def list_users(catalogue: Catalogue) -> list[User]:
    """Every account, by username (disabled ones too: they still name people in the trail)."""
    with catalogue.session() as session:
        return list(session.exec(select(User).order_by(col(User.username))))


def ensure_first_admin(catalogue: Catalogue, *, now: datetime) -> str | None:
    """On a fresh installation, create the account ``admin`` and return its generated password
    (for the caller to show once); ``None`` when accounts exist or another process made it."""
    with catalogue.session() as session:
        if session.exec(select(User.id).limit(1)).first() is not None:
            return None
    try:
        _, password = add_user(
            catalogue, FIRST_ADMIN, role=Role.ADMIN, actor=_FIRST_START_ACTOR, now=now
        )
    except UserExistsError:
        return None
    return password


def create_demo_accounts(catalogue: Catalogue, *, now: datetime) -> dict[str, tuple[str, str]]:
    """One account for each role but admin, for trying the app on the sample calls.

    Returns:
        role → (username, password) of the accounts created now; those that exist are left alone.
    """
    created: dict[str, tuple[str, str]] = {}
    for role, username, teams in _DEMO_ACCOUNTS:
        try:
            _, password = add_user(
                catalogue, username, role=role, teams=teams, actor=_DEMO_ACTOR, now=now
            )
        except UserExistsError:
            continue
        created[str(role)] = (username, password)
    return created


def _generate_password() -> str:
    """A random password people can read and type: ``xxxxx-xxxxx-xxxxx-xxxxx``."""
    return "-".join(
        "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(_PASSWORD_GROUP_CHARS))
        for _ in range(_PASSWORD_GROUPS)
    )


def _valid_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise AccountError(
            f"{username[:80]!r} is not a valid username",
            hint="use 2 to 64 characters: letters a-z, digits and . _ - @",
        )
    return name


def _valid_teams(role: Role, teams: Sequence[str]) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(t.strip() for t in teams if t.strip()))
    if role == Role.TEAM_LEAD and not names:
        raise AccountError(
            "a team lead needs at least one team",
            hint="give the teams whose calls they coach, e.g. --teams schade,zorg",
        )
    if role != Role.TEAM_LEAD and names:
        raise AccountError(
            f"only team leads have teams: a {role} sees the calls of every team",
            hint="leave the teams out",
        )
    too_long = [t for t in names if len(t) > _TEAM_MAX_CHARS]
    if too_long:
        raise AccountError(
            f"team name {too_long[0][:80]!r} is too long",
            hint=f"team names have at most {_TEAM_MAX_CHARS} characters, as in the call metadata",
        )
    return names


def _valid_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(
            f"the password is too short: it needs at least {MIN_PASSWORD_CHARS} characters",
            hint="choose a longer one, or leave it out and callrec generates one",
        )
    return password


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _refusal(user: User | None) -> str:
    """Why a sign-in was refused, for the audit trail only (never for the person trying)."""
    if user is None:
        return "unknown user"
    return "disabled" if user.disabled else "wrong password"


@functools.cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """A hash of nothing anyone knows, with the parameters of ``hasher``: verifying against it
    costs what verifying a real account's password does."""
    return hasher.hash(secrets.token_urlsafe(32))


def _find(session: Session, name: str) -> User | None:
    return session.exec(select(User).where(User.username == name)).first()


def _require(session: Session, username: str) -> User:
    name = username.strip().lower()
    user = _find(session, name)
    if user is None:
        raise UnknownUserError(
            f"there is no user {name[:80]!r}", hint="see callrec users list for the accounts"
        )
    return user


def _enabled_admins(session: Session) -> int:
    query = (
        select(sa.func.count())
        .select_from(User)
        .where(User.role == str(Role.ADMIN), sa.not_(col(User.disabled)))
    )
    return session.exec(query).one()


def _exists(name: str) -> UserExistsError:
    return UserExistsError(
        f"user {name} exists", hint="choose another username, or see callrec users list"
    )
