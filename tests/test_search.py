"""Transcript search on both backends, over the real model's transcripts of the sample calls:
phrases land on the right moment and speaker, filters combine, roles hold, the index follows
the catalogue."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from sqlmodel import select

from storage.access import AccessDeniedError, Role, Viewer
from storage.audit import Action, events
from storage.catalogue import Call, Job
from storage.connect import Storage
from storage.search import QueryError
from storage.search.index import entries_of
from storage.search.service import Filters, search
from tests.models import DIALOGUES, SAMPLES
from transcribe.engine import Transcript
from transcribe.jobs import LeasePolicy, claim
from transcribe.metrics import metrics_from_speech
from transcribe.store import save_transcript

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
HANDLER = Viewer("handler", Role.COMPLAINT_HANDLER)
ANALYST = Viewer("analyst", Role.ANALYST)


def sample(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text())


def store_samples(storage: Storage, transcripts: dict[str, Transcript]) -> dict[str, str]:
    """The sample calls catalogued and transcribed through the worker's own store path
    (redaction and indexing included); returns call ids by sample name."""
    ids = {}
    for name in DIALOGUES:
        meta = sample(name)
        with storage.catalogue.session() as session:
            session.add(
                Call(
                    id=meta["call_id"], started_at=datetime.fromisoformat(meta["started_at"]),
                    duration_s=meta["reference"]["duration_s"], channels=2, sample_rate=8000,
                    codec="pcm_s16le", agent_id=meta["agent_id"], team=meta["team"],
                    queue=meta["queue"], direction=meta["direction"],
                    customer_number=meta["customer_number"], policy_number=meta["policy_number"],
                    sha256="0" * 64, original_key=f"calls/{meta['call_id']}/original.wav",
                )
            )  # fmt: skip
            session.flush()
            session.add(Job(call_id=meta["call_id"]))
        job = claim(storage.catalogue, owner="test", now=NOW, policy=LeasePolicy())
        assert job is not None and job.call_id == meta["call_id"]
        transcript = transcripts[name]
        metrics = metrics_from_speech(transcript.speech, duration_s=transcript.duration_s)
        save_transcript(
            storage.catalogue, job, transcript, metrics.to_dict(), owner="test", now=NOW
        )
        ids[name] = meta["call_id"]
    return ids


@pytest.fixture(params=["storage", "pg_storage"], ids=["sqlite", "postgres"])
def indexed(request: pytest.FixtureRequest, transcripts: dict[str, Transcript]):
    storage: Storage = request.getfixturevalue(request.param)
    return storage, store_samples(storage, transcripts)


def find(storage: Storage, text: str, viewer: Viewer = HANDLER, **filters) -> list:
    return search(storage, text, viewer=viewer, filters=Filters(**filters), now=NOW).hits


def test_a_known_phrase_is_found_at_its_moment_with_its_speaker(indexed):
    storage, ids = indexed
    phrase = next(
        p for p in sample("claim_screen_repair")["key_phrases"] if p["kind"] == "REPAIR_DATE"
    )
    [hit] = find(storage, '"dinsdag 13 januari"')
    assert hit.call_id == ids["claim_screen_repair"]
    assert hit.speaker == phrase["speaker"] == "agent"
    assert abs(hit.start_s - phrase["turn_start_s"]) <= 1.0
    assert "**dinsdag**" in hit.snippet and "**januari**" in hit.snippet


def test_a_phrase_needs_its_words_in_order_and_words_need_only_be_there(indexed):
    storage, ids = indexed
    assert [h.call_id for h in find(storage, "vergoed schade")] == [ids["claim_screen_repair"]]
    assert find(storage, '"schade wordt vergoed"')
    assert find(storage, '"vergoed schade"') == []


def test_stemming_prefix_or_and_exclusion(indexed):
    storage, ids = indexed
    # "verzekeringen" is said; "verzekering" finds it through the Dutch stem
    said = {h.call_id for h in find(storage, "verzekering")}
    assert ids["claim_screen_repair"] in said
    assert {h.call_id for h in find(storage, "reken*")} >= {ids["health_bsn"]}
    either = {h.call_id for h in find(storage, "premie OR rekeningen")}
    assert either == {ids["policy_postcode_dob"], ids["health_bsn"]}
    greetings, without = find(storage, "verzekering"), find(storage, "verzekering -emma")
    assert any("Emma" in h.text for h in greetings)
    assert without and all("emma" not in h.text.lower() for h in without)
    assert len(without) < len(greetings)
    assert find(storage, "GOEDEMORGEN") == find(storage, "goedemorgen")


def test_filters_combine(indexed):
    storage, ids = indexed
    everyone = {h.call_id for h in find(storage, "emma")}
    assert everyone == set(ids.values())  # the agent says her name in every call
    assert {h.call_id for h in find(storage, "emma", team="schade")} == {
        ids["claim_screen_repair"], ids["imei_iban"],
    }  # fmt: skip
    assert {h.call_id for h in find(storage, "emma", team="schade", direction="outbound")} == {
        ids["imei_iban"]
    }
    assert find(storage, "emma", speaker="customer") == []
    spring = find(
        storage, "emma",
        since=datetime(2026, 3, 1, tzinfo=UTC), until=datetime(2026, 5, 1, tzinfo=UTC),
    )  # fmt: skip
    assert {h.call_id for h in spring} == {ids["policy_postcode_dob"], ids["phone_email"]}
    assert {h.call_id for h in find(storage, "emma", agent="A2117", max_duration_s=42)} == {
        ids["phone_email"]
    }
    by_customer = find(storage, "emma", customer_number=sample("health_bsn")["customer_number"])
    assert {h.call_id for h in by_customer} == {ids["health_bsn"]}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "empty"),
        ('"dinsdag 13', "quote"),
        ("a OR", "OR"),
        ("ver*zek", "may only end a word"),
        ("-emma", "exclu"),
        ("x'); DROP TABLE calls;--", None),  # not malformed: just words, safely matched
    ],
)
def test_malformed_queries_get_their_message_and_user_text_never_reaches_sql(
    indexed, query: str, message: str | None
):
    storage, _ = indexed
    if message is None:
        assert find(storage, query) == []
        with storage.catalogue.session() as session:
            assert session.exec(select(sa.func.count()).select_from(Call)).one() == 5
        return
    with pytest.raises(QueryError, match=re.compile(message, re.IGNORECASE)) as raised:
        find(storage, query)
    assert "\n" not in str(raised.value)


def test_the_analyst_sees_only_redacted_text_and_cannot_look_up_personal_data(indexed):
    storage, ids = indexed
    handler_hits = find(storage, "0317")  # part of the IBAN the customer reads out
    assert [h.call_id for h in handler_hits] == [ids["imei_iban"]]
    assert find(storage, "0317", ANALYST) == []
    for name in DIALOGUES:
        for pii in sample(name)["pii"]:
            digits = re.sub(r"\D", "", pii["value"] if "value" in pii else pii["written"])
            if len(digits) < 4:
                continue
            for token in {digits[i : i + 3] for i in range(0, len(digits) - 2)}:
                for hit in find(storage, f"{token}*", ANALYST):
                    assert token not in re.sub(r"\D", "", hit.text), (name, pii, hit.text)
    with pytest.raises(AccessDeniedError, match="not available to the analyst role"):
        find(storage, "emma", ANALYST, customer_number="+31653390127")
    with pytest.raises(AccessDeniedError):
        find(storage, "emma", ANALYST, policy_number="8120047736")


def test_a_team_lead_finds_only_their_teams_calls(indexed):
    storage, ids = indexed
    lead = Viewer("lead", Role.TEAM_LEAD, teams=("zorg",))
    assert {h.call_id for h in find(storage, "emma", lead)} == {ids["health_bsn"]}
    assert find(storage, "emma", Viewer("nobody", Role.TEAM_LEAD)) == []


def test_every_search_is_audited_with_query_filters_and_hits(indexed):
    storage, _ = indexed
    find(storage, "emma", ANALYST, team="zorg")
    with storage.catalogue.session() as session:
        [event] = events(session, action=Action.SEARCH)
    assert (event.actor, event.details["query"], event.details["filters"]) == (
        "analyst", "emma", {"team": "zorg"},
    )  # fmt: skip
    assert event.details["hits"] == 1 and event.details["role"] == "analyst"
    number = sample("health_bsn")["customer_number"]
    find(storage, "emma", customer_number=number)
    with storage.catalogue.session() as session:
        latest = events(session, action=Action.SEARCH)[0]
    assert latest.details["filters"] == {"customer_number": "***"}
    assert number not in json.dumps(latest.details)


def test_the_index_follows_re_transcription_and_purge(indexed, transcripts):
    from storage.purge import purge

    storage, ids = indexed
    call_id = ids["claim_screen_repair"]
    with storage.catalogue.session() as session:
        before = entries_of(session.connection(), call_id)
        session.add(Job(call_id=call_id))
    assert before == len(transcripts["claim_screen_repair"].segments)
    job = claim(storage.catalogue, owner="again", now=NOW, policy=LeasePolicy())
    assert job is not None
    save_transcript(
        storage.catalogue, job, transcripts["claim_screen_repair"], {}, owner="again", now=NOW
    )
    with storage.catalogue.session() as session:
        assert entries_of(session.connection(), call_id) == before  # replaced, not doubled
    assert len(find(storage, '"dinsdag 13 januari"')) == 1

    purge(storage, now=datetime(2026, 7, 10, tzinfo=UTC))  # the January call is past 180 days
    with storage.catalogue.session() as session:
        assert entries_of(session.connection(), call_id) == 0
    assert find(storage, '"dinsdag 13 januari"') == []


def test_an_erasing_call_is_not_found(indexed):
    from storage.catalogue import CallState

    storage, ids = indexed
    with storage.catalogue.session() as session:
        session.get_one(Call, ids["health_bsn"]).state = CallState.ERASING
    assert ids["health_bsn"] not in {h.call_id for h in find(storage, "emma")}


def test_paging_says_when_there_are_more(indexed):
    storage, _ = indexed
    first = search(storage, "emma", viewer=HANDLER, limit=2, now=NOW)
    rest = search(storage, "emma", viewer=HANDLER, limit=10, offset=2, now=NOW)
    assert first.more and not rest.more
    assert len(first.hits) + len(rest.hits) == 5


def test_callrec_search_prints_hits_and_refuses_mistakes_in_one_line(
    storage: Storage, transcripts: dict[str, Transcript]
):
    import subprocess
    import sys
    from pathlib import Path

    from tests.stores import callrec_env

    ids = store_samples(storage, transcripts)
    callrec = str(Path(sys.executable).parent / "callrec")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [callrec, "search", *args], env=callrec_env(storage), capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip

    found = run('"dinsdag 13 januari"', "--as-role", "complaint_handler", "--json")
    assert found.returncode == 0, found.stderr
    [hit] = json.loads(found.stdout)["hits"]
    assert (hit["call_id"], hit["speaker"]) == (ids["claim_screen_repair"], "agent")
    printed = run("emma", "--team", "zorg", "--speaker", "agent")
    assert ids["health_bsn"] in printed.stdout and "[00:00" in printed.stdout
    assert json.loads(run("0317", "--as-role", "analyst", "--json").stdout)["hits"] == []
    for args, code, words in (
        (("emma", "--as-role", "analyst", "--customer", "0653390127"), 1, "analyst role"),
        (('"dinsdag',), 1, "quote"),
        (("emma", "--as-role", "team_lead"), 2, "--teams"),
        (("emma", "--as-role", "boss"), 2, "--as-role must be one of"),
        (("emma", "--since", "yesterday"), 2, "ISO 8601"),
    ):
        refused = run(*args)
        assert refused.returncode == code, (args, refused.stderr)
        assert refused.stderr.count("\n") == 1 and words in refused.stderr, refused.stderr


def test_segments_transcribed_before_the_index_existed_are_indexed_by_its_migration(
    catalogue_url: str, tmp_path
):
    from storage.catalogue import Catalogue, Segment, Speaker, upgrade
    from tests.test_migrations import SEED_ROWS, _connect, _insert

    upgrade(catalogue_url, "0004")
    with _connect(catalogue_url) as connection:
        for table, values in SEED_ROWS["0004"]:
            _insert(connection, table, values)
        connection.commit()
    with Catalogue.open(catalogue_url) as catalogue:  # upgrades to head, index included
        with catalogue.session() as session:
            said = session.exec(select(Segment).where(Segment.speaker == Speaker.CUSTOMER)).one()
        assert "werkdagen" in said.text
        storage = Storage(settings=None, objects=None, catalogue=catalogue)  # type: ignore[arg-type]
        [hit] = search(storage, "werkdag afspraak", viewer=HANDLER, now=NOW).hits
        assert (hit.call_id, hit.start_s) == ("call-1", said.start_s)
