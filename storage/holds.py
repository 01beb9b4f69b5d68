"""Dispute holds: a held call outlives its retention deadline until someone releases it.

A hold is a catalogue row (the purge skips a call with an active one) and an audit event,
mirrored onto every version of the call's objects in the recordings bucket, so that S3 keeps
them whatever deletes: each version is tagged ``callrec-retention=held``, which takes it out of
the lifecycle backstop (``storage.backstop``), and, where the bucket has S3 object lock, gets a
legal hold, so the server itself refuses to delete it.

The order makes a crash harmless where it matters. Placing marks the objects first and writes
the row after: a crash in between leaves objects kept that the catalogue does not hold, never a
held call whose objects can expire. Releasing writes the row first and clears the objects
after: a crash in between leaves legal holds on a released call, which the purge cannot delete
and reports as an error (``ObjectLockedError``) rather than skipping. Either leftover is
cleared by :func:`settle_objects`, which a repeated release runs.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

from sqlmodel import Session, col, select

from errors import CallrecError
from storage.access import Role, Viewer, require_role
from storage.audit import Action, record
from storage.backstop import HELD, RETENTION_TAG, STANDARD
from storage.calls import require_call
from storage.catalogue import Call, Hold
from storage.connect import Storage
from storage.purge import call_prefix

# Who may hold a call past its deadline, release it, and read why it is held: a complaint
# handler (a dispute) and an admin (the privacy officer; the CLI's operator).
HOLDERS = (Role.COMPLAINT_HANDLER, Role.ADMIN)


class HoldError(CallrecError):
    """A hold cannot be placed or released as asked."""


def place_hold(
    storage: Storage,
    call_id: str,
    *,
    reason: str,
    review_at: datetime,
    viewer: Viewer,
    now: datetime,
) -> Hold:
    """Keep ``call_id`` past its deadline until released; someone must look again at
    ``review_at``. For a complaint handler or an admin (the CLI's operator).

    Returns:
        The new hold.

    Raises:
        AccessDeniedError: The viewer's role may not hold calls.
        CallNotFoundError: No such call, or it was erased (the message says when and why).
        HoldError: The reason is blank, the review date is not in the future, or the call is
            held already (the message says by whom and until when).
        ObjectStoreError: S3 failed; no hold was written and the objects were put back.
    """
    require_role(viewer, *HOLDERS, what="putting a call on hold")
    reason, actor = _required(reason, "hold"), viewer.name
    if review_at <= now:
        raise HoldError(
            f"the review date {_local(storage, review_at)} is not in the future",
            hint="give a later --review date: a hold must be looked at again",
        )
    with storage.catalogue.session() as session:
        require_call(session, call_id)
        _refuse_second_hold(storage, session, call_id)
    try:
        _mark(storage, call_id, held=True)
        with storage.catalogue.session() as session:
            _lock_call(session, call_id)
            _refuse_second_hold(storage, session, call_id)  # placed by someone else meanwhile?
            hold = Hold(
                call_id=call_id,
                reason=reason,
                review_at=review_at,
                created_by=actor,
                created_at=now,
            )
            session.add(hold)
            record(
                session,
                actor=actor,
                action=Action.HOLD,
                at=now,
                call_id=call_id,
                reason=reason,
                review_at=review_at.isoformat(),
            )
    except Exception:
        # Put the objects back to what the catalogue says; if S3 is what failed, this may fail
        # too, and the purge's refusal to delete a legal-held version shows what is left.
        with contextlib.suppress(CallrecError):
            settle_objects(storage, call_id)
        raise
    return hold


def release_hold(
    storage: Storage, call_id: str, *, reason: str, viewer: Viewer, now: datetime
) -> Hold:
    """End the active hold on ``call_id``: the purge erases the call once its deadline has
    passed. Run again after an interrupted release, it clears the legal holds left behind.

    Raises:
        AccessDeniedError: The viewer's role may not release holds.
        CallNotFoundError: No such call, or it was erased.
        HoldError: The reason is blank, or the call has no active hold (after clearing any
            marks an interrupted hold or release left on its objects).
        ObjectStoreError: S3 failed after the release was recorded; run the release again.
    """
    require_role(viewer, *HOLDERS, what="releasing a hold")
    reason, actor = _required(reason, "release"), viewer.name
    with storage.catalogue.session() as session:
        hold = _active_hold(session, call_id)
        if hold is None and session.get(Call, call_id) is None:
            require_call(session, call_id)  # raises, saying whether and when it was erased
        if hold is not None:
            hold.released_at, hold.released_by = now, actor
            session.add(hold)
            record(
                session, actor=actor, action=Action.RELEASE, at=now, call_id=call_id, reason=reason
            )
    cleared = settle_objects(storage, call_id)
    if hold is None:
        leftovers = f"; cleared {cleared} hold marks left on its objects" if cleared else ""
        raise HoldError(
            f"call {call_id} is not under an active hold{leftovers}",
            hint="list the holds with `callrec holds`",
        )
    return hold


def settle_objects(storage: Storage, call_id: str) -> int:
    """Make the call's objects say what the catalogue says: held marks (tag and legal hold)
    while it has an active hold, standard ones otherwise. Idempotent, so it is the repair
    after any interruption; returns how many marks it changed."""
    with storage.catalogue.session() as session:
        held = _active_hold(session, call_id) is not None
    return _mark(storage, call_id, held=held)


def active_hold(storage: Storage, viewer: Viewer, call_id: str) -> Hold | None:
    """The call's hold not yet released, if any (a call has at most one); its reason and
    who placed it are for those who may place and release holds.

    Raises:
        AccessDeniedError: The viewer's role may not hold calls.
    """
    require_role(viewer, *HOLDERS, what="reading a call's hold")
    with storage.catalogue.session() as session:
        return _active_hold(session, call_id)


def active_holds(storage: Storage) -> list[Hold]:
    """Every hold not yet released, the first to review first."""
    with storage.catalogue.session() as session:
        active = select(Hold).where(col(Hold.released_at).is_(None))
        return list(session.exec(active.order_by(col(Hold.review_at))))


def holds_due_for_review(storage: Storage, now: datetime) -> list[Hold]:
    """Active holds whose review date has come: kept data nobody has looked at again."""
    with storage.catalogue.session() as session:
        due = select(Hold).where(col(Hold.released_at).is_(None), col(Hold.review_at) <= now)
        return list(session.exec(due.order_by(col(Hold.review_at))))


def _mark(storage: Storage, call_id: str, *, held: bool) -> int:
    """Tag every version of the call's objects, and set its legal hold where the bucket has
    object lock; returns how many marks changed."""
    objects, bucket = storage.objects, storage.settings.bucket_recordings
    lock = objects.object_lock_enabled(bucket)
    value = HELD if held else STANDARD
    changed = 0
    for version in list(objects.list_versions(bucket, prefix=call_prefix(call_id))):
        if version.is_delete_marker:
            continue  # holds no bytes, and takes neither tags nor legal holds
        key, version_id = version.key, version.version_id
        tags = objects.tags(bucket, key, version_id=version_id)
        if tags.get(RETENTION_TAG) != value:
            objects.set_tags(bucket, key, {**tags, RETENTION_TAG: value}, version_id=version_id)
            changed += 1
        if lock and objects.legal_hold(bucket, key, version_id=version_id) != held:
            objects.set_legal_hold(bucket, key, version_id=version_id, on=held)
            changed += 1
    return changed


def _active_hold(session: Session, call_id: str) -> Hold | None:
    active = select(Hold).where(Hold.call_id == call_id, col(Hold.released_at).is_(None))
    return session.exec(active).first()


def _lock_call(session: Session, call_id: str) -> None:
    """Lock the call's row until commit (PostgreSQL; SQLite has one writer anyway), so two
    holds placed at once cannot both pass the check for an active one."""
    session.exec(select(Call.id).where(Call.id == call_id).with_for_update()).first()
    require_call(session, call_id)


def _refuse_second_hold(storage: Storage, session: Session, call_id: str) -> None:
    hold = _active_hold(session, call_id)
    if hold is not None:
        raise HoldError(
            f"call {call_id} is already held by {hold.created_by} since "
            f"{_local(storage, hold.created_at)}, to be reviewed on "
            f"{_local(storage, hold.review_at)}",
            hint=f"to change it, release it first (`callrec release {call_id} --reason ...`)",
        )


def _required(reason: str, what: str) -> str:
    if not reason.strip():
        raise HoldError(
            f"a {what} needs a reason", hint="say why, e.g. the complaint or case number"
        )
    return reason.strip()


def _local(storage: Storage, instant: datetime) -> str:
    return instant.astimezone(storage.settings.zone).strftime("%Y-%m-%d %H:%M %Z")
