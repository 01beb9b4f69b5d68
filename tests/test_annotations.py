"""Coaching notes and scorecards on the real catalogues: written only by the call's team leads,
read only by them and the admin, validated, audited without their text, and erased with the
call by the purge."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import func, select

from storage.access import AccessDeniedError, Role, Viewer
from storage.annotations import (
    MAX_TEXT,
    SCORECARD,
    AnnotationError,
    add_note,
    add_score,
    notes_of,
    scores_of,
)
from storage.audit import Action, events
from storage.calls import CallNotFoundError
from storage.catalogue import Call, Note, Score
from storage.connect import Storage
from storage.purge import purge
from tests.test_call_access import (
    ADMIN,
    ANALYST,
    CLAIMS_LEAD,
    HANDLER,
    SALES_LEAD,
    catalogued_call,
)
from tests.test_purge import ingest_at, rows_of

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
GOOD = {criterion.key: 4 for criterion in SCORECARD}


@pytest.fixture(params=["storage", "pg_storage"], ids=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Storage:
    storage: Storage = request.getfixturevalue(request.param)
    catalogued_call(storage, "c1", NOW - timedelta(days=1), team="claims", duration_s=90.0)
    return storage


@pytest.fixture
def sqlite(storage: Storage) -> Storage:
    catalogued_call(storage, "c1", NOW - timedelta(days=1), team="claims", duration_s=90.0)
    return storage


def counts(storage: Storage) -> tuple[int, int, int]:
    """Notes, scores and audit events stored: a refusal must leave all three unchanged."""
    with storage.catalogue.session() as session:
        return (
            session.exec(select(func.count()).select_from(Note)).one(),
            session.exec(select(func.count()).select_from(Score)).one(),
            len(events(session)),
        )


def test_a_team_lead_writes_notes_and_scores_that_the_team_and_admin_read_back(
    backend: Storage,
):
    for at_s, text in [(30.0, "noemt de afspraak niet"), (5.0, " goede begroeting "), (90, "ok")]:
        add_note(backend, CLAIMS_LEAD, "c1", at_s=at_s, text=text, now=NOW)
    marks = GOOD | {"closing": 2}
    add_score(backend, CLAIMS_LEAD, "c1", scorecard=marks, comment="  ", now=NOW)
    add_score(backend, CLAIMS_LEAD, "c1", scorecard=GOOD, comment="beter", now=NOW)

    for reader in (CLAIMS_LEAD, ADMIN, Viewer("co-lead", Role.TEAM_LEAD, ("sales", "claims"))):
        notes = notes_of(backend, reader, "c1")
        assert [(n.at_s, n.text, n.author) for n in notes] == [
            (5.0, "goede begroeting", "lead-claims"),
            (30.0, "noemt de afspraak niet", "lead-claims"),
            (90.0, "ok", "lead-claims"),
        ]
        scores = scores_of(backend, reader, "c1")
        assert [(s.scorecard, s.comment, s.author) for s in scores] == [
            (marks, None, "lead-claims"),  # a blank comment is no comment
            (GOOD, "beter", "lead-claims"),
        ]


def test_notes_and_scores_are_audited_by_moment_and_total_never_by_their_text(
    backend: Storage,
):
    add_note(backend, CLAIMS_LEAD, "c1", at_s=12.5, text="klant boos over IBAN", now=NOW)
    add_score(backend, CLAIMS_LEAD, "c1", scorecard=GOOD, comment="praat te snel", now=NOW)

    with backend.catalogue.session() as session:
        [note] = events(session, call_id="c1", action=Action.NOTE)
        [score] = events(session, call_id="c1", action=Action.SCORE)
    assert (note.actor, note.at, note.details) == ("lead-claims", NOW, {"at_s": 12.5})
    assert score.details == {"total": 4 * len(SCORECARD), "out_of": 5 * len(SCORECARD)}
    trail = json.dumps([note.details, score.details])
    assert "boos" not in trail and "snel" not in trail


@pytest.mark.parametrize("viewer", [ADMIN, HANDLER, ANALYST], ids=lambda v: v.name)
def test_only_team_leads_write_notes_and_scores(sqlite: Storage, viewer: Viewer):
    before = counts(sqlite)
    with pytest.raises(AccessDeniedError, match=f"not available to the {viewer.role} role"):
        add_note(sqlite, viewer, "c1", at_s=1, text="x", now=NOW)
    with pytest.raises(AccessDeniedError, match=f"not available to the {viewer.role} role"):
        add_score(sqlite, viewer, "c1", scorecard=GOOD, comment=None, now=NOW)
    assert counts(sqlite) == before


@pytest.mark.parametrize("viewer", [HANDLER, ANALYST], ids=lambda v: v.name)
def test_only_team_leads_and_admins_read_notes_and_scores(sqlite: Storage, viewer: Viewer):
    add_note(sqlite, CLAIMS_LEAD, "c1", at_s=1, text="x", now=NOW)
    with pytest.raises(AccessDeniedError):
        notes_of(sqlite, viewer, "c1")
    with pytest.raises(AccessDeniedError):
        scores_of(sqlite, viewer, "c1")


def test_another_teams_lead_cannot_tell_the_call_exists(sqlite: Storage):
    add_note(sqlite, CLAIMS_LEAD, "c1", at_s=1, text="x", now=NOW)
    before = counts(sqlite)
    attempts: list[Any] = [
        lambda: add_note(sqlite, SALES_LEAD, "c1", at_s=1, text="x", now=NOW),
        lambda: add_score(sqlite, SALES_LEAD, "c1", scorecard=GOOD, comment=None, now=NOW),
        lambda: notes_of(sqlite, SALES_LEAD, "c1"),
        lambda: scores_of(sqlite, SALES_LEAD, "c1"),
    ]
    for attempt in attempts:
        with pytest.raises(CallNotFoundError, match=r"^no call c1 "):
            attempt()
    with pytest.raises(CallNotFoundError, match=r"^no call c2 "):
        notes_of(sqlite, ADMIN, "c2")
    assert counts(sqlite) == before


@pytest.mark.parametrize("at_s", [-0.1, 90.01, math.nan, math.inf])
def test_a_note_must_be_at_a_moment_of_the_call(sqlite: Storage, at_s: float):
    with pytest.raises(AnnotationError, match=r"is not a moment of call c1.*0 to 90\.0"):
        add_note(sqlite, CLAIMS_LEAD, "c1", at_s=at_s, text="x", now=NOW)
    assert counts(sqlite) == (0, 0, 0)


def test_a_note_may_sit_at_the_first_and_last_moment(sqlite: Storage):
    for at_s in (0, 90.0):
        add_note(sqlite, CLAIMS_LEAD, "c1", at_s=at_s, text="x", now=NOW)
    assert [n.at_s for n in notes_of(sqlite, CLAIMS_LEAD, "c1")] == [0, 90.0]


@pytest.mark.parametrize(
    ("text", "error"),
    [("", "cannot be empty"), (" \n\t", "cannot be empty"), ("x" * 2001, "has 2001 characters")],
    ids=["empty", "blank", "too-long"],
)
def test_a_note_needs_text_of_at_most_2000_characters(sqlite: Storage, text: str, error: str):
    with pytest.raises(AnnotationError, match=error):
        add_note(sqlite, CLAIMS_LEAD, "c1", at_s=1, text=text, now=NOW)
    assert counts(sqlite) == (0, 0, 0)
    add_note(sqlite, CLAIMS_LEAD, "c1", at_s=1, text="x" * MAX_TEXT, now=NOW)


@pytest.mark.parametrize(
    ("scorecard", "comment", "error"),
    [
        ({k: v for k, v in GOOD.items() if k != "closing"}, None, "no mark for closing"),
        (GOOD | {"humour": 5}, None, "unknown criteria humour"),
        ({"humour": 5}, None, "unknown criteria humour; no mark for greeting, identification"),
        (GOOD | {"listening": 0}, None, "listening is scored 0"),
        (GOOD | {"listening": 6}, None, "listening is scored 6"),
        (GOOD | {"solution": 3.5}, None, "solution is scored 3.5"),
        (GOOD | {"solution": "3"}, None, "solution is scored '3'"),
        (GOOD | {"greeting": True}, None, "greeting is scored True"),
        (GOOD, "x" * 2001, "a comment has 2001 characters"),
    ],
    ids=["missing", "unknown", "both", "zero", "six", "fraction", "text", "bool", "long-comment"],
)
def test_a_scorecard_marks_every_criterion_from_1_to_5(
    sqlite: Storage, scorecard: dict[str, Any], comment: str | None, error: str
):
    with pytest.raises(AnnotationError, match=error):
        add_score(sqlite, CLAIMS_LEAD, "c1", scorecard=scorecard, comment=comment, now=NOW)
    assert counts(sqlite) == (0, 0, 0)


def test_the_purge_erases_a_calls_notes_and_scores_with_it(storage: Storage, tmp_path: Path):
    started = NOW - timedelta(days=200)
    call = ingest_at(storage, tmp_path, "coached", started)
    with storage.catalogue.session() as session:
        session.execute(sa.update(Call).where(Call.id == call.id).values(team="claims"))
    later = started + timedelta(days=2)
    add_note(storage, CLAIMS_LEAD, call.id, at_s=0.5, text="goed gedaan", now=later)
    add_score(storage, CLAIMS_LEAD, call.id, scorecard=GOOD, comment="prima", now=later)
    assert (rows_of(storage, call.id)["notes"], rows_of(storage, call.id)["scores"]) == (1, 1)

    report = purge(storage, now=NOW)

    assert report.calls_purged == [call.id]
    left = rows_of(storage, call.id)
    assert {"notes", "scores"} <= set(left) and set(left.values()) == {0}
    with pytest.raises(CallNotFoundError, match="was deleted on"):
        notes_of(storage, ADMIN, call.id)
