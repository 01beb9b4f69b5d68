"""Reading calls: listings, a call's page, its audio and an export, each as a role may.

``call_detail`` is the operator's view (exports, an access request): everything. ``find_calls``,
``open_call``, ``playback_url`` and ``export_call`` are what the review app and the CLI call for a
:class:`Viewer` (the CLI's operator is an admin unless it says ``--as-role``), and they apply the
rules of ``storage.access`` themselves, so a page that forgets a check cannot leak: a team lead
is told "no call X" about another team's call (not even its existence shows), an analyst's call
holds no unredacted text at all, and every opened page, audio link and export is in the audit
trail.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, select

from errors import CallrecError
from storage.access import Role, Viewer, require_role
from storage.audit import Action, record
from storage.catalogue import Call, CallState, Hold, Segment, Tombstone, Transcript
from storage.connect import Storage
from storage.retention import days_left, deadline

if TYPE_CHECKING:
    from storage.exports import ExportResult

# Columns of a call that are personal data (``extra`` may hold anything the PBX sent).
PERSONAL_CALL_FIELDS = frozenset({"customer_number", "customer_id", "policy_number", "extra"})

_HELD = sa.exists().where(col(Hold.call_id) == col(Call.id), col(Hold.released_at).is_(None))
_TRANSCRIBED = sa.exists().where(col(Transcript.call_id) == col(Call.id))


@dataclass(frozen=True)
class CallRow:
    """One line of a calls listing: what the call was, where it stands, and when it goes."""

    call_id: str
    started_at: datetime
    duration_s: float
    channels: int
    agent_id: str | None
    team: str | None
    queue: str | None
    direction: str | None
    state: str
    transcribed: bool  # has a transcript to read
    days_left: int
    deleted_on: date  # the local date of the deadline (CALLREC_TIMEZONE)
    held: bool  # under an active hold: kept past the deadline until released

    def to_dict(self) -> dict[str, Any]:
        shown = {f.name: _plain(getattr(self, f.name)) for f in fields(self)}
        return shown | {"duration_s": round(self.duration_s, 2)}


@dataclass(frozen=True)
class CallFilters:
    """What narrows a calls listing; every field is optional."""

    since: datetime | None = None  # calls started at or after
    until: datetime | None = None  # calls started before
    agent: str | None = None
    team: str | None = None
    queue: str | None = None
    direction: str | None = None  # inbound / outbound
    min_duration_s: float | None = None
    max_duration_s: float | None = None
    state: str | None = None  # a CallState value; anything else is refused
    held: bool | None = None  # only calls under an active hold (True) or without one (False)
    customer_number: str | None = None  # E.164 (personal data: not for analysts)

    def given(self) -> dict[str, Any]:
        """The filters that are set, JSON-ready, the customer's number masked (for the audit
        trail, which never copies personal data)."""
        return {
            f.name: "(given)" if f.name == "customer_number" else _plain(getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name) is not None
        }


def find_calls(
    storage: Storage, viewer: Viewer, filters: CallFilters, *, now: datetime, limit: int = 200
) -> list[CallRow]:
    """The calls ``viewer`` may see that match ``filters``, newest first.

    A listing shows no transcript, so it is not audited, except a lookup by customer number:
    that finds a person's calls, so the trail records it as the calls it found (never the
    number), like an access request.

    Raises:
        AccessDeniedError: A customer-number filter from a role that may not see personal data.
        CallrecError: ``filters.state`` is not a call state.
    """
    if filters.customer_number is not None:
        viewer.require_personal_data("filtering by customer number")
    rows = _listing(storage, [viewer.call_scope(), *_conditions(filters)], now=now, limit=limit)
    if filters.customer_number is not None:
        with storage.catalogue.session() as session:
            record(
                session, actor=viewer.name, action=Action.SEARCH, at=now, listing="calls",
                filters=filters.given(), calls=[row.call_id for row in rows],
                role=str(viewer.role),
            )  # fmt: skip
    return rows


def _listing(
    storage: Storage, where: Sequence[sa.ColumnElement[bool]], *, now: datetime, limit: int
) -> list[CallRow]:
    """Calls matching ``where``, never those being erased, newest first."""
    settings = storage.settings
    query = (
        select(Call, _HELD.label("held"), _TRANSCRIBED.label("transcribed"))
        .where(col(Call.state) != CallState.ERASING, *where)
        .order_by(col(Call.started_at).desc(), col(Call.id).desc())
        .limit(limit)
    )
    with storage.catalogue.session() as session:
        found = session.exec(query).all()
    return [
        CallRow(
            call_id=call.id,
            started_at=call.started_at,
            duration_s=call.duration_s,
            channels=call.channels,
            agent_id=call.agent_id,
            team=call.team,
            queue=call.queue,
            direction=call.direction,
            state=str(call.state),
            transcribed=bool(transcribed),
            days_left=days_left(call.started_at, settings.retention_days, now),
            deleted_on=deadline(call.started_at, settings.retention_days)
            .astimezone(settings.zone)
            .date(),
            held=bool(held),
        )
        for call, held, transcribed in found
    ]


# Each filter of :class:`CallFilters` as a condition on ``calls``, applied when it is set.
_FILTERS: dict[str, Callable[[Any], sa.ColumnElement[bool]]] = {
    "since": lambda since: col(Call.started_at) >= since,
    "until": lambda until: col(Call.started_at) < until,
    "agent": lambda agent: col(Call.agent_id) == agent,
    "team": lambda team: col(Call.team) == team,
    "queue": lambda queue: col(Call.queue) == queue,
    "direction": lambda direction: col(Call.direction) == direction,
    "min_duration_s": lambda seconds: col(Call.duration_s) >= seconds,
    "max_duration_s": lambda seconds: col(Call.duration_s) <= seconds,
    "state": lambda state: col(Call.state) == _state(state),
    "held": lambda held: _HELD if held else ~_HELD,
    "customer_number": lambda number: col(Call.customer_number) == number,
}


def _conditions(filters: CallFilters) -> list[sa.ColumnElement[bool]]:
    given = ((name, getattr(filters, name)) for name in _FILTERS)
    return [_FILTERS[name](value) for name, value in given if value is not None]


def _state(value: str) -> CallState:
    try:
        return CallState(value)
    except ValueError:
        accepted = ", ".join(s for s in CallState if s is not CallState.ERASING)
        raise CallrecError(
            f"{value!r} is not a call state", hint=f"expected one of {accepted}"
        ) from None


class CallNotFoundError(CallrecError):
    """No such call; if it was erased, the message says when and why."""


@dataclass(frozen=True)
class SegmentView:
    """One turn of the transcript. ``words`` (with their times, for seeking) hold the full
    text, so they are left empty wherever the text is redacted."""

    speaker: str
    start_s: float
    end_s: float
    text: str
    redacted_text: str
    confidence: float | None
    words: tuple[dict[str, Any], ...] = ()

    def to_dict(self, *, redacted: bool) -> dict[str, Any]:
        return {
            "speaker": self.speaker,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "text": self.redacted_text if redacted else self.text,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class CallDetail:
    """A call with its transcript, as ``callrec show`` and the call page present it.

    ``redacted`` details (an analyst's) were built without the personal data: the call has no
    customer, policy or extra fields, every segment's ``text`` is its redacted text and no words
    are kept, so nothing reachable from the object holds what was hidden.
    """

    call: Call
    transcript: Transcript | None
    segments: list[SegmentView]
    days_left: int
    redacted: bool = False

    def to_dict(self, *, redacted: bool) -> dict[str, Any]:
        call = self.call
        hidden = PERSONAL_CALL_FIELDS if redacted or self.redacted else set()
        metadata = {k: _plain(v) for k, v in call.model_dump().items() if k not in hidden}
        transcript = None
        if self.transcript is not None:
            transcript = self.transcript.model_dump(exclude={"call_id"})
            transcript["created_at"] = self.transcript.created_at.isoformat()
        return {
            "call": metadata,
            "days_left": self.days_left,
            "transcript": transcript,
            "segments": [s.to_dict(redacted=redacted) for s in self.segments],
        }


def require_call(session: Session, call_id: str) -> Call:
    """The call ``call_id``, for anything that acts on one call (show, hold, release).

    Raises:
        CallNotFoundError: No such call (with the date and reason if it was erased), or it is
            being erased.
    """
    if "\x00" in call_id:  # never a call's id, and PostgreSQL refuses it in a text parameter
        raise _no_call(call_id)
    call = session.get(Call, call_id)
    if call is None:
        tombstone = session.get(Tombstone, call_id)
        if tombstone is not None:
            raise CallNotFoundError(
                f"call {call_id} was deleted on {tombstone.deleted_at:%Y-%m-%d %H:%M} UTC "
                f"({tombstone.reason})",
                hint="nothing of it is kept",
            )
        raise _no_call(call_id)
    if call.state == CallState.ERASING:
        raise CallNotFoundError(
            f"call {call_id} is being erased", hint="the purge finishes it on its next run"
        )
    return call


def require_visible_call(session: Session, viewer: Viewer, call_id: str) -> Call:
    """The call ``call_id`` if ``viewer`` may see it; a call outside their scope is reported
    exactly like one that never existed.

    Raises:
        CallNotFoundError: No such call, erased, being erased, or not the viewer's.
    """
    call = require_call(session, call_id)
    if not viewer.may_see(call):
        raise _no_call(call_id)
    return call


def _no_call(call_id: str) -> CallNotFoundError:
    return CallNotFoundError(f"no call {call_id}", hint="list calls with `callrec calls`")


def call_detail(storage: Storage, call_id: str, *, now: datetime) -> CallDetail:
    """Everything stored about one call.

    Raises:
        CallNotFoundError: No such call (with the date and reason if it was erased).
    """
    with storage.catalogue.session() as session:
        call = require_call(session, call_id)
        return _detail(storage, session, call, now=now)


def open_call(storage: Storage, viewer: Viewer, call_id: str, *, now: datetime) -> CallDetail:
    """A call's page as ``viewer`` may read it (an analyst: redacted, see :class:`CallDetail`),
    recorded in the audit trail.

    Raises:
        CallNotFoundError: No such call, erased, or outside the viewer's scope ("no call X").
    """
    with storage.catalogue.session() as session:
        call = require_visible_call(session, viewer, call_id)
        detail = _detail(storage, session, call, now=now)
        record(
            session, actor=viewer.name, action=Action.VIEW, at=now, call_id=call_id,
            role=str(viewer.role), redacted=not viewer.sees_personal_data,
        )  # fmt: skip
    return detail if viewer.sees_personal_data else _without_personal_data(detail)


def _detail(storage: Storage, session: Session, call: Call, *, now: datetime) -> CallDetail:
    rows = session.exec(
        select(Segment).where(Segment.call_id == call.id).order_by(col(Segment.start_s))
    ).all()
    segments = [
        SegmentView(
            s.speaker, s.start_s, s.end_s, s.text, s.redacted_text, s.confidence, tuple(s.words)
        )
        for s in rows
    ]
    return CallDetail(
        call=call,
        transcript=session.get(Transcript, call.id),
        segments=segments,
        days_left=days_left(call.started_at, storage.settings.retention_days, now),
    )


def _without_personal_data(detail: CallDetail) -> CallDetail:
    """A copy built only from what may be shown: a new, unattached call row (nothing links
    back to the loaded one) and segments whose only text is the redacted one."""
    call = Call(**detail.call.model_dump(exclude=set(PERSONAL_CALL_FIELDS)))
    segments = [
        SegmentView(s.speaker, s.start_s, s.end_s, s.redacted_text, s.redacted_text, s.confidence)
        for s in detail.segments
    ]
    return CallDetail(
        call=call,
        transcript=detail.transcript,
        segments=segments,
        days_left=detail.days_left,
        redacted=True,
    )


def playback_url(
    storage: Storage, viewer: Viewer, call_id: str, *, now: datetime, expires_s: int = 300
) -> str:
    """A link that plays the call in a browser for ``expires_s`` seconds: the rendition, or the
    original when it plays as it is. The link is handed out (and audited) here; the bucket
    itself is never public.

    Raises:
        AccessDeniedError: The viewer's role may not play audio (the analyst).
        CallNotFoundError: No such call, erased, or outside the viewer's scope.
    """
    require_role(viewer, Role.TEAM_LEAD, Role.COMPLAINT_HANDLER, Role.ADMIN, what="playing audio")
    with storage.catalogue.session() as session:
        call = require_visible_call(session, viewer, call_id)
        key = call.rendition_key or call.original_key
        url = storage.objects.presigned_get(
            storage.settings.bucket_recordings, key, expires_s=expires_s
        )
        record(
            session, actor=viewer.name, action=Action.PLAYBACK, at=now, call_id=call_id,
            role=str(viewer.role), expires_s=expires_s,
        )  # fmt: skip
    return url


def export_call(
    storage: Storage, viewer: Viewer, call_id: str, *, reason: str, now: datetime
) -> ExportResult:
    """One call in a zip behind an expiring link, for a complaint or dispute
    (``storage.exports``, which records the export in the audit trail).

    Raises:
        AccessDeniedError: The viewer is not a complaint handler or admin.
        CallNotFoundError: No such call, or erased.
        CallrecError: The reason is blank.
        ObjectStoreError: S3 failed; nothing was exported.
    """
    from storage.exports import create_export  # it builds on call_detail from this module

    require_role(viewer, Role.COMPLAINT_HANDLER, Role.ADMIN, what="exporting a call")
    if not reason.strip():
        raise CallrecError(
            "an export needs a reason", hint="say why, e.g. the complaint or case number"
        )
    with storage.catalogue.session() as session:
        call = require_visible_call(session, viewer, call_id)
    return create_export(
        storage, [call], kind="call", subject=f"call {call_id}", reason=reason.strip(),
        actor=viewer.name, now=now,
    )  # fmt: skip


def _plain(value: Any) -> Any:
    """JSON-ready: instants and dates as ISO 8601."""
    return value.isoformat() if isinstance(value, datetime | date) else value
