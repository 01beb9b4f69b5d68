"""The audit trail: who did what to which call, when and why, kept after the call is gone.

Every purge, erase, export, hold and release (and, with the review app, every view, playback
and search) writes one event in the same transaction as the change it describes, so the trail
and the data cannot disagree. The table is append-only in the database itself (a trigger
refuses UPDATE and DELETE, migration 0004). Events name calls by id and never copy personal
data: an erasure or access request about a customer is recorded as the calls it touched, never
as the customer's number.
"""

from __future__ import annotations

import getpass
import os
import socket
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Session, col, select

from storage.catalogue import AuditEvent


class Action(StrEnum):
    """What an event records; the admin page filters on these."""

    PURGE = "purge"  # retention: one event per erased call
    ERASE = "erase"  # erasure request: one event per erased call
    EXPORT = "export"
    EXPORT_EXPIRED = "export.expired"
    HOLD = "hold"
    RELEASE = "release"
    SEARCH = "search"  # the query and filters, so every lookup can be explained
    USER_ADDED = "user.added"  # the username, role and teams; never a password or hash
    USER_DISABLED = "user.disabled"
    PASSWORD_SET = "user.password"
    SIGN_IN = "sign-in"
    SIGN_IN_REFUSED = "sign-in.refused"  # unknown user, wrong password or disabled account
    VIEW = "view"  # a call's page opened: who read which transcript
    PLAYBACK = "playback"  # a link to a call's audio handed out
    NOTE = "note"  # a coaching note written (its moment, never its text)
    SCORE = "score"  # a scorecard given (its total, never the comment)


def record(
    session: Session,
    *,
    actor: str,
    action: Action,
    at: datetime,
    call_id: str | None = None,
    **details: Any,
) -> AuditEvent:
    """Add one event to ``session`` (committed with the change it describes)."""
    event = AuditEvent(at=at, actor=actor, action=str(action), call_id=call_id, details=details)
    session.add(event)
    return event


def events(
    session: Session,
    *,
    call_id: str | None = None,
    action: Action | None = None,
    limit: int = 1000,
) -> list[AuditEvent]:
    """The newest events first, optionally of one call or one kind."""
    query = select(AuditEvent)
    if call_id is not None:
        query = query.where(AuditEvent.call_id == call_id)
    if action is not None:
        query = query.where(AuditEvent.action == str(action))
    return list(session.exec(query.order_by(col(AuditEvent.id).desc()).limit(limit)))


def cli_actor() -> str:
    """Who runs a command: the operating-system account on this host (before sign-in exists)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}@{socket.gethostname()}"[:64]
