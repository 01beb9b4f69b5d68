"""Role-checked call access on the real catalogues and S3 server: listings filter and scope,
a call outside a viewer's scope does not exist for them, an analyst's call page holds no
personal data anywhere, audio and exports go only to roles that may have them, all audited."""

from __future__ import annotations

import io
import json
import urllib.request
import uuid
import zipfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import select

from errors import CallrecError
from storage.access import AccessDeniedError, Role, Viewer
from storage.audit import Action, events
from storage.calls import (
    CallFilters,
    CallNotFoundError,
    export_call,
    find_calls,
    open_call,
    playback_url,
)
from storage.catalogue import Call, CallState, Export, Hold, Segment, Tombstone, Transcript
from storage.connect import Storage
from tests.test_purge import ingest_at

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ADMIN = Viewer("admin", Role.ADMIN)
HANDLER = Viewer("handler", Role.COMPLAINT_HANDLER)
ANALYST = Viewer("analyst", Role.ANALYST)
CLAIMS_LEAD = Viewer("lead-claims", Role.TEAM_LEAD, ("claims",))
SALES_LEAD = Viewer("lead-sales", Role.TEAM_LEAD, ("sales",))
NUMBER = "+31612345678"
IBAN = "NL91ABNA0417164300"


@pytest.fixture(params=["storage", "pg_storage"], ids=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Storage:
    return request.getfixturevalue(request.param)


def catalogued_call(storage: Storage, call_id: str, started: datetime, **fields: Any) -> Call:
    """A call row as ingest writes it (no objects: for what only reads the catalogue)."""
    values: dict[str, Any] = {
        "duration_s": 60.0, "channels": 2, "sample_rate": 8000, "codec": "pcm_s16le",
        "sha256": "0" * 64, "original_key": f"calls/{call_id}/original.wav",
    } | fields  # fmt: skip
    with storage.catalogue.session() as session:
        call = Call(id=call_id, started_at=started, **values)
        session.add(call)
    return call


def transcribe(storage: Storage, call_id: str, *, text: str, redacted: str) -> None:
    """A transcript as the worker stores it: one segment with its words."""
    words = [
        {"start_s": 1.0 + n, "end_s": 1.5 + n, "text": w, "probability": 0.9}
        for n, w in enumerate(text.split())
    ]
    with storage.catalogue.session() as session:
        session.add(
            Transcript(call_id=call_id, model="m", layout="stereo", language="nl",
                       expected_language="nl", created_at=NOW)
        )  # fmt: skip
        session.add(
            Segment(call_id=call_id, speaker="customer", start_s=1.0, end_s=9.0, text=text,
                    redacted_text=redacted, words=words, model="m")
        )  # fmt: skip


def hold(storage: Storage, call_id: str, *, released: bool = False) -> None:
    with storage.catalogue.session() as session:
        session.add(
            Hold(call_id=call_id, reason="complaint 7", review_at=NOW + 30 * DAY,
                 created_by="handler", created_at=NOW - DAY,
                 released_at=NOW if released else None, released_by="handler" if released else None)
        )  # fmt: skip


def listing(storage: Storage, viewer: Viewer = ADMIN, **filters: Any) -> list[str]:
    return [r.call_id for r in find_calls(storage, viewer, CallFilters(**filters), now=NOW)]


# Started 23:30 UTC: the deadline falls on a later date in Amsterdam than in UTC.
LATE = datetime(2026, 5, 31, 23, 30, tzinfo=UTC)


@pytest.fixture
def calls(backend: Storage) -> Storage:
    """a: claims, held, transcribed; b: claims, hold released; c: sales, transcribed;
    d: being erased; e: no team."""
    catalogued_call(backend, "a", LATE, team="claims", agent_id="ann", queue="schade",
                    direction="inbound", duration_s=120.0, customer_number=NUMBER,
                    state=CallState.TRANSCRIBED)  # fmt: skip
    catalogued_call(backend, "b", NOW - 2 * DAY, team="claims", agent_id="bob", queue="schade",
                    direction="outbound", duration_s=30.0)  # fmt: skip
    catalogued_call(backend, "c", NOW - 10 * DAY, team="sales", agent_id="cor", queue="verkoop",
                    direction="inbound", duration_s=600.0, customer_number=NUMBER,
                    state=CallState.TRANSCRIBED)  # fmt: skip
    catalogued_call(backend, "d", NOW - 3 * DAY, team="sales", state=CallState.ERASING)
    catalogued_call(backend, "e", NOW - 5 * DAY, agent_id="ann")
    for call_id in ("a", "c"):
        transcribe(backend, call_id, text="goedemorgen", redacted="goedemorgen")
    hold(backend, "a")
    hold(backend, "b", released=True)
    return backend


FILTER_CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, ["a", "b", "e", "c"]),
    ({"since": NOW - 2 * DAY}, ["a", "b"]),  # since is inclusive
    ({"until": NOW - 2 * DAY}, ["e", "c"]),  # until is exclusive
    ({"agent": "ann"}, ["a", "e"]),
    ({"team": "claims"}, ["a", "b"]),
    ({"queue": "verkoop"}, ["c"]),
    ({"direction": "outbound"}, ["b"]),
    ({"min_duration_s": 100}, ["a", "c"]),
    ({"max_duration_s": 100}, ["b", "e"]),
    ({"state": CallState.TRANSCRIBED}, ["a", "c"]),
    ({"state": "ingested"}, ["b", "e"]),
    ({"held": True}, ["a"]),
    ({"held": False}, ["b", "e", "c"]),
    ({"customer_number": NUMBER}, ["a", "c"]),
    ({"team": "claims", "min_duration_s": 100, "held": True}, ["a"]),
    ({"agent": "ann", "customer_number": NUMBER}, ["a"]),
    ({"team": "sales", "direction": "outbound"}, []),
    ({"state": CallState.ERASING}, []),  # a call being erased is never listed
]


def test_find_calls_applies_every_filter_and_their_combinations_newest_first(calls: Storage):
    for filters, expected in FILTER_CASES:
        assert listing(calls, **filters) == expected, filters


def test_a_listing_row_says_when_the_call_is_deleted_in_local_time_and_whether_it_is_held(
    calls: Storage,
):
    rows = {row.call_id: row for row in find_calls(calls, ADMIN, CallFilters(), now=NOW)}

    a, b, e = rows["a"], rows["b"], rows["e"]
    # 2026-11-27 23:30 UTC is 2026-11-28 00:30 in Amsterdam.
    assert (a.deleted_on, a.days_left) == (date(2026, 11, 28), 179)
    assert (b.deleted_on, b.days_left) == (date(2026, 11, 26), 178)
    assert (a.held, b.held, e.held) == (True, False, False)  # b's hold was released
    assert (a.transcribed, b.transcribed) == (True, False)
    assert (a.team, a.queue, a.direction, a.agent_id, a.state) == (
        "claims", "schade", "inbound", "ann", "transcribed",
    )  # fmt: skip
    assert a.to_dict()["deleted_on"] == "2026-11-28"


def test_a_team_lead_lists_only_the_calls_of_their_own_teams(calls: Storage):
    assert listing(calls, CLAIMS_LEAD) == ["a", "b"]
    assert listing(calls, CLAIMS_LEAD, team="sales") == []
    both = Viewer("lead", Role.TEAM_LEAD, ("claims", "sales"))
    assert listing(calls, both) == ["a", "b", "c"]
    assert listing(calls, Viewer("new lead", Role.TEAM_LEAD)) == []
    assert listing(calls, ANALYST) == listing(calls, HANDLER) == ["a", "b", "e", "c"]


def test_an_analyst_may_not_list_calls_by_customer_number(storage: Storage):
    with pytest.raises(AccessDeniedError, match="not available to the analyst role"):
        find_calls(storage, ANALYST, CallFilters(customer_number=NUMBER), now=NOW)


def test_a_lookup_by_customer_number_is_audited_by_the_calls_found_not_the_number(
    calls: Storage,
):
    listing(calls, HANDLER, team="claims")
    with calls.catalogue.session() as session:
        assert events(session) == []  # a plain listing shows no transcript: not audited

    assert listing(calls, HANDLER, customer_number=NUMBER) == ["a", "c"]

    with calls.catalogue.session() as session:
        [event] = events(session, action=Action.SEARCH)
    assert (event.actor, event.details["calls"]) == ("handler", ["a", "c"])
    assert NUMBER not in json.dumps(event.details)


def test_a_filter_by_an_unknown_state_is_refused_naming_the_states(storage: Storage):
    with pytest.raises(CallrecError, match=r"'done' is not a call state.*transcribed"):
        listing(storage, state="done")


# --- A call's page ---------------------------------------------------------------------------

SAID = f"mijn rekening is {IBAN} bij polis POL-778899"
REDACTED = "mijn rekening is [IBAN] bij polis [POLICY]"
PERSONAL = [IBAN, "POL-778899", NUMBER, "612345678", "K-4711", "Jansen"]


@pytest.fixture
def disputed(backend: Storage) -> Storage:
    catalogued_call(backend, "x", NOW - DAY, team="claims", customer_number=NUMBER,
                    policy_number="POL-778899", customer_id="K-4711",
                    extra={"contact": "mevrouw Jansen"}, state=CallState.TRANSCRIBED)  # fmt: skip
    transcribe(backend, "x", text=SAID, redacted=REDACTED)
    return backend


def test_an_analysts_call_holds_no_personal_data_anywhere(disputed: Storage):
    detail = open_call(disputed, ANALYST, "x", now=NOW)

    everything = "\n".join(
        [
            json.dumps(detail.to_dict(redacted=False), default=str),
            json.dumps(detail.to_dict(redacted=True), default=str),
            repr(detail),
            repr(vars(detail.call)),
        ]
    )
    for secret in PERSONAL:
        assert secret not in everything
    assert [s.text for s in detail.segments] == [REDACTED]
    assert [s.words for s in detail.segments] == [()]
    assert detail.redacted
    assert sa.inspect(detail.call).transient  # a new row, not the loaded one behind a mask
    assert detail.call.customer_number is None and detail.call.extra == {}


def test_other_roles_read_the_full_call(disputed: Storage):
    for viewer in (HANDLER, ADMIN, CLAIMS_LEAD):
        detail = open_call(disputed, viewer, "x", now=NOW)
        assert [s.text for s in detail.segments] == [SAID], viewer
        assert IBAN in " ".join(w["text"] for w in detail.segments[0].words)
        assert (detail.call.customer_number, detail.redacted) == (NUMBER, False)


def test_opening_a_call_is_audited_with_the_viewer_and_what_they_saw(disputed: Storage):
    open_call(disputed, CLAIMS_LEAD, "x", now=NOW)
    open_call(disputed, ANALYST, "x", now=NOW + DAY)

    with disputed.catalogue.session() as session:
        seen = events(session, call_id="x", action=Action.VIEW)
    assert [(e.actor, e.at, e.details) for e in reversed(seen)] == [
        ("lead-claims", NOW, {"role": "team_lead", "redacted": False}),
        ("analyst", NOW + DAY, {"role": "analyst", "redacted": True}),
    ]


def test_a_call_outside_a_team_leads_teams_does_not_exist_for_them(disputed: Storage):
    with pytest.raises(CallNotFoundError) as unknown:
        open_call(disputed, ADMIN, "no-such-call", now=NOW)
    with pytest.raises(CallNotFoundError) as outside:
        open_call(disputed, SALES_LEAD, "x", now=NOW)

    assert str(outside.value) == str(unknown.value).replace("no-such-call", "x")
    with disputed.catalogue.session() as session:
        assert events(session) == []  # nothing was read


def test_an_erased_or_erasing_call_cannot_be_opened(storage: Storage):
    with storage.catalogue.session() as session:
        session.add(Tombstone(call_id="gone", call_date=date(2025, 1, 1), deleted_at=NOW,
                              reason="retention period ended"))  # fmt: skip
    catalogued_call(storage, "going", NOW - DAY, state=CallState.ERASING)

    with pytest.raises(CallNotFoundError, match="gone was deleted on 2026-06-01 12:00 UTC"):
        open_call(storage, HANDLER, "gone", now=NOW)
    with pytest.raises(CallNotFoundError, match="going is being erased"):
        open_call(storage, HANDLER, "going", now=NOW)


# --- Audio and exports (real objects) ----------------------------------------------------------


def ingested(storage: Storage, tmp_path: Path, *, fmt: str = "wav-ulaw") -> Call:
    """A real ingested call of team claims."""
    call = ingest_at(storage, tmp_path, "access", NOW - DAY, fmt=fmt)
    with storage.catalogue.session() as session:
        session.execute(sa.update(Call).where(Call.id == call.id).values(team="claims"))
    return call


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        data: bytes = response.read()
    return data


def stored(storage: Storage, key: str) -> bytes:
    with storage.objects.open(storage.settings.bucket_recordings, key) as source:
        return source.read()


def test_a_playback_link_plays_the_rendition_for_a_short_while_and_is_audited(
    storage: Storage, tmp_path: Path
):
    call = ingested(storage, tmp_path)
    assert call.rendition_key is not None

    url = playback_url(storage, HANDLER, call.id, now=NOW, expires_s=60)

    assert fetch(url) == stored(storage, call.rendition_key) != stored(storage, call.original_key)
    assert "X-Amz-Expires=60" in url
    with storage.catalogue.session() as session:
        [event] = events(session, call_id=call.id, action=Action.PLAYBACK)
    assert (event.actor, event.details) == ("handler", {"role": "complaint_handler",
                                                        "expires_s": 60})  # fmt: skip


def test_a_call_without_a_rendition_plays_its_original(storage: Storage, tmp_path: Path):
    call = ingested(storage, tmp_path, fmt="wav-pcm-8k")  # browsers play PCM WAV as it is
    assert call.rendition_key is None

    url = playback_url(storage, CLAIMS_LEAD, call.id, now=NOW)

    assert fetch(url) == stored(storage, call.original_key)


def test_audio_is_refused_to_analysts_and_hidden_from_other_teams(storage: Storage, tmp_path: Path):
    call = ingested(storage, tmp_path)

    with pytest.raises(
        AccessDeniedError, match=r"^playing audio is not available to the analyst role"
    ):
        playback_url(storage, ANALYST, call.id, now=NOW)
    with pytest.raises(CallNotFoundError, match=f"^no call {call.id}"):
        playback_url(storage, SALES_LEAD, call.id, now=NOW)
    with storage.catalogue.session() as session:
        assert events(session, action=Action.PLAYBACK) == []


def test_a_complaint_handler_exports_a_call_audited_once(storage: Storage, tmp_path: Path):
    call = ingested(storage, tmp_path)

    result = export_call(storage, HANDLER, call.id, reason="  complaint 2026-117 ", now=NOW)

    archive = zipfile.ZipFile(io.BytesIO(fetch(result.url)))
    [audio] = [n for n in archive.namelist() if n.endswith("/audio.wav")]
    assert archive.read(audio) == stored(storage, call.original_key)
    assert result.calls == 1
    with storage.catalogue.session() as session:
        [event] = events(session, call_id=call.id, action=Action.EXPORT)
        export = session.get_one(Export, result.export_id)
    assert (event.actor, event.details["reason"]) == ("handler", "complaint 2026-117")
    assert (export.kind, export.created_by) == ("call", "handler")


@pytest.mark.parametrize("viewer", [ANALYST, CLAIMS_LEAD], ids=["analyst", "team-lead"])
def test_an_export_is_refused_to_analysts_and_team_leads(
    storage: Storage, tmp_path: Path, viewer: Viewer
):
    call = ingested(storage, tmp_path)

    with pytest.raises(AccessDeniedError, match=r"^exporting a call is not available"):
        export_call(storage, viewer, call.id, reason="curious", now=NOW)
    with pytest.raises(CallrecError, match="needs a reason"):
        export_call(storage, HANDLER, call.id, reason="  ", now=NOW)
    with pytest.raises(CallNotFoundError, match=r"^no call nope-"):
        export_call(storage, ADMIN, f"nope-{uuid.uuid4().hex}", reason="x", now=NOW)
    with storage.catalogue.session() as session:
        assert list(session.exec(select(Export))) == []
        assert events(session, action=Action.EXPORT) == []


def test_every_filter_narrows_the_listing(calls: Storage):
    """Every field of CallFilters narrows the listing: a value no call has finds nothing."""
    nothing = {
        "since": NOW + DAY, "until": NOW - 100 * DAY, "agent": "zed", "team": "zed",
        "queue": "zed", "direction": "sideways", "min_duration_s": 10_000.0,
        "max_duration_s": 1.0, "state": CallState.FAILED, "held": True,
        "customer_number": "+31000000000",
    }  # fmt: skip
    assert set(nothing) == set(CallFilters.__dataclass_fields__)
    for name, value in nothing.items():
        if name == "held":
            with calls.catalogue.session() as session:
                session.execute(sa.delete(Hold))
        assert listing(calls, **{name: value}) == [], name
