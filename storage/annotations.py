"""Coaching: a team lead's notes at moments of a call, and their scorecards of it.

Coaching belongs to the team: only a team lead of the call's team writes notes and scores, and
only the team's leads and the admin (privacy officer) read them. A call outside a team lead's
teams is "no call X" here, as on the call page, so these functions cannot be used to find out
which calls exist. Notes say what was said, so they are call data: they go with the call (by
cascade, listed in ``storage.purge``), and the audit trail records that a note or scorecard was
written, at which moment or with which total, never its text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, TypeVar

from sqlmodel import col, select

from errors import CallrecError
from storage.access import Role, Viewer, require_role
from storage.audit import Action, record
from storage.calls import require_visible_call
from storage.catalogue import Note, Score
from storage.connect import Storage


class Criterion(NamedTuple):
    key: str  # as stored in a scorecard
    label: str  # Dutch / English, as the page shows it


# What a team lead scores, in the order of a call.
SCORECARD: tuple[Criterion, ...] = (
    Criterion("greeting", "Begroeting / Greeting"),
    Criterion("identification", "Identificatie / Identification"),
    Criterion("listening", "Luisteren / Listening"),
    Criterion("solution", "Oplossing / Solution"),
    Criterion("agreement", "Afspraak bevestigd / Agreement confirmed"),
    Criterion("closing", "Afsluiting / Closing"),
)
MARKS = range(1, 6)  # 1 (poor) .. 5 (excellent)
MAX_TEXT = 2000  # characters of a note or a scorecard's comment

WRITERS = (Role.TEAM_LEAD,)
READERS = (Role.TEAM_LEAD, Role.ADMIN)


class AnnotationError(CallrecError):
    """A note or scorecard is not valid as given; the message says what to change."""


def add_note(
    storage: Storage, viewer: Viewer, call_id: str, *, at_s: float, text: str, now: datetime
) -> Note:
    """Write a coaching note at second ``at_s`` of the call.

    Raises:
        AccessDeniedError: The viewer is not a team lead.
        CallNotFoundError: No such call, erased, or not of the lead's teams.
        AnnotationError: ``at_s`` is outside the call, or the text is blank or too long.
    """
    require_role(viewer, *WRITERS, what="writing coaching notes")
    text = _text(text, "a note")
    with storage.catalogue.session() as session:
        call = require_visible_call(session, viewer, call_id)
        if not 0 <= at_s <= call.duration_s:
            raise AnnotationError(
                f"{at_s} s is not a moment of call {call_id}",
                hint=f"give a second from 0 to {call.duration_s:.1f}",
            )
        note = Note(call_id=call_id, at_s=at_s, author=viewer.name, text=text, created_at=now)
        session.add(note)
        record(session, actor=viewer.name, action=Action.NOTE, at=now, call_id=call_id, at_s=at_s)
    return note


def notes_of(storage: Storage, viewer: Viewer, call_id: str) -> list[Note]:
    """The call's coaching notes in the order of the call.

    Raises:
        AccessDeniedError: The viewer is neither a team lead nor an admin.
        CallNotFoundError: No such call, erased, or not of the lead's teams.
    """
    return _read(storage, viewer, call_id, Note, col(Note.at_s))


def add_score(
    storage: Storage,
    viewer: Viewer,
    call_id: str,
    *,
    scorecard: Mapping[str, int],
    comment: str | None,
    now: datetime,
) -> Score:
    """Score the call on every criterion of :data:`SCORECARD`, 1 to 5 each.

    Raises:
        AccessDeniedError: The viewer is not a team lead.
        CallNotFoundError: No such call, erased, or not of the lead's teams.
        AnnotationError: A criterion is missing, unknown or not scored 1 to 5, or the comment
            is too long.
    """
    require_role(viewer, *WRITERS, what="scoring calls")
    marks = _scorecard(scorecard)
    comment = _text(comment, "a comment") if comment and comment.strip() else None
    with storage.catalogue.session() as session:
        require_visible_call(session, viewer, call_id)
        score = Score(
            call_id=call_id, author=viewer.name, scorecard=marks, comment=comment, created_at=now
        )
        session.add(score)
        record(
            session, actor=viewer.name, action=Action.SCORE, at=now, call_id=call_id,
            total=sum(marks.values()), out_of=len(marks) * MARKS[-1],
        )  # fmt: skip
    return score


def scores_of(storage: Storage, viewer: Viewer, call_id: str) -> list[Score]:
    """The call's scorecards, the oldest first.

    Raises:
        AccessDeniedError: The viewer is neither a team lead nor an admin.
        CallNotFoundError: No such call, erased, or not of the lead's teams.
    """
    return _read(storage, viewer, call_id, Score, col(Score.created_at))


_Row = TypeVar("_Row", Note, Score)


def _read(
    storage: Storage, viewer: Viewer, call_id: str, model: type[_Row], order: Any
) -> list[_Row]:
    require_role(viewer, *READERS, what="reading coaching notes and scores")
    with storage.catalogue.session() as session:
        require_visible_call(session, viewer, call_id)
        rows = select(model).where(model.call_id == call_id).order_by(order, col(model.id))
        return list(session.exec(rows))


def _text(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise AnnotationError(f"{what} cannot be empty", hint="write what the agent should hear")
    if len(text) > MAX_TEXT:
        raise AnnotationError(f"{what} has {len(text)} characters", hint=f"keep it to {MAX_TEXT}")
    return text


def _scorecard(given: Mapping[str, int]) -> dict[str, int]:
    """Exactly the criteria of :data:`SCORECARD`, each marked 1 to 5 (else a clear error)."""
    keys = [criterion.key for criterion in SCORECARD]
    unknown = sorted(set(given) - set(keys))
    missing = [key for key in keys if key not in given]
    problems = []
    if unknown:
        problems.append(f"unknown criteria {', '.join(unknown)}")
    if missing:
        problems.append(f"no mark for {', '.join(missing)}")
    if problems:
        raise AnnotationError(
            f"the scorecard has {'; '.join(problems)}",
            hint=f"score every criterion: {', '.join(keys)}",
        )
    for key in keys:
        mark = given[key]
        if isinstance(mark, bool) or not isinstance(mark, int) or mark not in MARKS:
            raise AnnotationError(
                f"{key} is scored {mark!r}",
                hint=f"give a whole number from {MARKS[0]} to {MARKS[-1]}",
            )
    return {key: given[key] for key in keys}
