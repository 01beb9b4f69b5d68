"""Access and erasure requests about one customer, against the real S3 server and catalogues:
the export holds exactly the customer's calls and expires, the erasure leaves nothing of them,
and the audit trail never learns the customer's number."""

from __future__ import annotations

import hashlib
import io
import json
import sys
import urllib.error
import urllib.request
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from errors import CallrecError
from ingest.backfill import LocalRecording, upload_and_ingest
from ingest.pipeline import IngestOptions, Outcome
from storage.audit import Action
from storage.catalogue import (
    AuditEvent,
    Call,
    Export,
    ExportCall,
    Hold,
    Segment,
    Speaker,
    Tombstone,
    Transcript,
)
from storage.connect import Storage
from storage.exports import expire_exports
from storage.purge import call_prefix, export_prefix
from storage.subject_requests import erase_customer, export_customer
from tests.audio_files import make_recording
from tests.stores import callrec_env

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
NATIONAL, INTERNATIONAL = "0612345678", "+31612345678"  # one customer, two forms
DIGITS = "612345678"  # in every written form of the number
OTHER = "+31687654321"
TTL = timedelta(seconds=604800)


@pytest.fixture(
    params=[
        pytest.param("storage", id="sqlite"),
        pytest.param("pg_storage", id="postgres", marks=pytest.mark.postgres),
    ]
)
def any_storage(request: pytest.FixtureRequest) -> Storage:
    return request.getfixturevalue(request.param)


def ingest_call(
    storage: Storage, tmp_path: Path, number: str, started: datetime, name: str = "c"
) -> tuple[Call, str]:
    """Ingest a call of ``number``; returns it and the sha256 of the uploaded recording."""
    call_id = f"{name}-{uuid.uuid4().hex[:8]}"  # tests share the S3 server
    audio = make_recording(tmp_path / call_id, seconds=1.0, fmt="wav-ulaw")
    meta = {"call_id": call_id, "started_at": started.isoformat(), "customer_number": number}
    [result] = upload_and_ingest(
        storage,
        [LocalRecording(audio, meta)],
        now=started + timedelta(hours=1),
        options=IngestOptions.from_settings(storage),
    )
    assert result.outcome == Outcome.INGESTED, result
    with storage.catalogue.session() as session:
        call = session.get_one(Call, call_id)
    return call, hashlib.sha256(audio.read_bytes()).hexdigest()


def customer_with_calls_in_three_months(
    storage: Storage, tmp_path: Path
) -> tuple[list[Call], dict[str, str], Call]:
    """The customer's calls (oldest first; ingested out of order, in two number forms), the
    sha256 of each recording, and another customer's call."""
    months = [NOW - 20 * DAY, NOW - 80 * DAY, NOW - 50 * DAY]
    made = [
        ingest_call(storage, tmp_path, form, started, "mine")
        for form, started in zip([NATIONAL, INTERNATIONAL, NATIONAL], months, strict=True)
    ]
    other, _ = ingest_call(storage, tmp_path, OTHER, NOW - 30 * DAY, "other")
    calls = sorted((call for call, _ in made), key=lambda c: c.started_at)
    return calls, {call.id: digest for call, digest in made}, other


def add_transcript(storage: Storage, call: Call) -> None:
    with storage.catalogue.session() as session:
        session.add(
            Transcript(
                call_id=call.id,
                model="whisper-base",
                layout="stereo",
                language="nl",
                expected_language="nl",
            )
        )
        for speaker, start, text in (
            (Speaker.AGENT, 0.0, "Goedemiddag, waarmee kan ik helpen?"),
            (Speaker.CUSTOMER, 0.5, "Mijn IBAN is NL91ABNA0417164300."),
        ):
            session.add(
                Segment(
                    call_id=call.id,
                    speaker=speaker,
                    start_s=start,
                    end_s=start + 0.5,
                    text=text,
                    redacted_text="[redacted]",
                    model="whisper-base",
                )
            )


def download(url: str) -> zipfile.ZipFile:
    with urllib.request.urlopen(url, timeout=30) as response:
        return zipfile.ZipFile(io.BytesIO(response.read()))


def keys(storage: Storage, bucket: str, prefix: str) -> list[str]:
    return [v.key for v in storage.objects.list_versions(bucket, prefix=prefix)]


def assert_trail_never_names_the_customer(storage: Storage) -> None:
    """Every column of every audit event and tombstone, the JSON details included."""
    with storage.catalogue.session() as session:
        rows = [*session.exec(select(AuditEvent)), *session.exec(select(Tombstone))]
    assert rows
    for row in rows:
        for column, value in row.model_dump().items():
            text = json.dumps(value, default=str)
            assert DIGITS not in text, f"{type(row).__name__}.{column} holds the number: {text}"


def test_an_access_request_exports_exactly_the_customers_calls_oldest_first(
    any_storage: Storage, tmp_path: Path
):
    storage = any_storage
    calls, digests, other = customer_with_calls_in_three_months(storage, tmp_path)
    assert len({c.started_at.month for c in calls}) == 3
    add_transcript(storage, calls[1])

    result = export_customer(storage, NATIONAL, actor="tester", reason="ticket 881", now=NOW)

    ids = [c.id for c in calls]
    assert (result.calls, result.expires_at) == (3, NOW + TTL)
    assert result.object_key == f"{result.export_id}/customer-export.zip"
    archive = download(result.url)
    [stored] = keys(storage, storage.settings.bucket_exports, export_prefix(result.export_id))
    assert stored == result.object_key
    assert result.size_bytes == storage.objects.stat(storage.settings.bucket_exports, stored).size

    manifest = json.loads(archive.read("manifest.json"))
    assert [c["call_id"] for c in manifest["calls"]] == ids
    assert (manifest["export_id"], manifest["kind"]) == (result.export_id, "customer")
    assert manifest["expires_at"] == (NOW + TTL).isoformat()
    readme = archive.read("README.txt").decode()
    assert "3 recorded call(s)" in readme and "2026-12-05" in readme  # expiry, local time
    assert other.id not in " ".join(archive.namelist()) + json.dumps(manifest)
    folders = {name.split("/")[0] for name in archive.namelist() if "/" in name}
    assert folders == {c["folder"] for c in manifest["calls"]}

    for entry, call in zip(manifest["calls"], calls, strict=True):
        folder = entry["folder"]
        audio = archive.read(f"{folder}/audio.wav")
        assert hashlib.sha256(audio).hexdigest() == digests[call.id] == entry["audio_sha256"]
        metadata = json.loads(archive.read(f"{folder}/metadata.json"))
        assert (metadata["id"], metadata["customer_number"]) == (call.id, INTERNATIONAL)
        assert "original_key" not in metadata and "rendition_key" not in metadata
        assert ("transcript.json" in entry["files"]) == (call.id == calls[1].id)

    folder = manifest["calls"][1]["folder"]
    transcript = json.loads(archive.read(f"{folder}/transcript.json"))
    assert transcript["model"] == "whisper-base"
    assert transcript["segments"] == [
        {
            "speaker": "agent",
            "start_s": 0.0,
            "end_s": 0.5,
            "text": "Goedemiddag, waarmee kan ik helpen?",
        },
        {
            "speaker": "customer",
            "start_s": 0.5,
            "end_s": 1.0,
            "text": "Mijn IBAN is NL91ABNA0417164300.",
        },
    ]
    text = archive.read(f"{folder}/transcript.txt").decode()
    assert "[00:00.5 - 00:01.0] customer: Mijn IBAN is NL91ABNA0417164300." in text

    with storage.catalogue.session() as session:
        export = session.get_one(Export, result.export_id)
        held = set(session.exec(select(ExportCall.call_id)))
        events = list(session.exec(select(AuditEvent)))
    assert (export.kind, export.reason, export.created_by) == ("customer", "ticket 881", "tester")
    assert export.expires_at == NOW + TTL and held == set(ids)
    assert sorted((e.action, e.call_id) for e in events) == sorted(
        (Action.EXPORT, call_id) for call_id in ids
    )
    assert {json.dumps(e.details, sort_keys=True) for e in events} == {
        json.dumps({"export_id": result.export_id, "reason": "ticket 881"}, sort_keys=True)
    }
    assert_trail_never_names_the_customer(storage)
    assert list((storage.settings.data_dir / "tmp").iterdir()) == [], "the scratch zip stays"


def test_national_and_international_forms_of_a_number_give_the_same_export(
    storage: Storage, tmp_path: Path
):
    calls, _, _ = customer_with_calls_in_three_months(storage, tmp_path)
    for form in (NATIONAL, INTERNATIONAL, "+31 6 1234 5678"):
        result = export_customer(storage, form, actor="t", reason="r", now=NOW)
        manifest = json.loads(download(result.url).read("manifest.json"))
        assert [c["call_id"] for c in manifest["calls"]] == [c.id for c in calls]


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("0698765432", r"no calls of customer \+31698765432"),
        ("not a number", "is not a phone number"),
        ("anonymous", "is not a phone number"),
    ],
)
def test_an_unknown_customer_or_a_bad_number_is_one_clear_error_and_exports_nothing(
    storage: Storage, tmp_path: Path, number: str, message: str
):
    ingest_call(storage, tmp_path, INTERNATIONAL, NOW - DAY)
    with pytest.raises(CallrecError, match=message) as error:
        export_customer(storage, number, actor="t", reason="r", now=NOW)
    assert "\n" not in str(error.value)
    with pytest.raises(CallrecError, match=message):
        erase_customer(storage, number, actor="t", reason="r", now=NOW)
    with storage.catalogue.session() as session:
        assert session.exec(select(Export)).all() == []
        assert session.exec(select(AuditEvent)).all() == []


def test_an_export_and_its_link_are_deleted_at_its_expiry_and_not_before(
    any_storage: Storage, tmp_path: Path
):
    storage = any_storage
    bucket = storage.settings.bucket_exports
    ingest_call(storage, tmp_path, NATIONAL, NOW - 10 * DAY)
    result = export_customer(storage, NATIONAL, actor="t", reason="ticket 1", now=NOW)
    prefix = export_prefix(result.export_id)
    storage.objects.put(bucket, prefix + "stray.txt", b"anything under the prefix goes too")

    assert expire_exports(storage, now=NOW + TTL - timedelta(seconds=1)) == 0
    assert len(keys(storage, bucket, prefix)) == 2
    download(result.url)

    assert expire_exports(storage, now=NOW + TTL) == 1
    assert keys(storage, bucket, prefix) == []
    with pytest.raises(urllib.error.HTTPError):
        download(result.url)
    with storage.catalogue.session() as session:
        assert session.exec(select(Export)).all() == []
        assert session.exec(select(ExportCall)).all() == []
        [expired] = session.exec(select(AuditEvent).where(AuditEvent.action == "export.expired"))
    assert (expired.call_id, expired.details, expired.at) == (
        None,
        {"export_id": result.export_id},
        NOW + TTL,
    )
    assert expire_exports(storage, now=NOW + 2 * TTL) == 0


def test_an_erasure_request_leaves_nothing_of_the_customers_calls_and_keeps_others(
    any_storage: Storage, tmp_path: Path
):
    storage = any_storage
    recordings = storage.settings.bucket_recordings
    calls, _, other = customer_with_calls_in_three_months(storage, tmp_path)
    add_transcript(storage, calls[0])
    storage.objects.put(recordings, calls[0].original_key, b"an overwrite: a second version")

    erased = erase_customer(
        storage, "+31 (0)6-12345678", reason="request 17", actor="tester", now=NOW
    )

    assert erased == [c.id for c in calls]
    for call in calls:
        assert keys(storage, recordings, call_prefix(call.id)) == []
    with storage.catalogue.session() as session:
        assert session.exec(select(Call.id)).all() == [other.id]
        assert session.exec(select(Segment)).all() == []
        tombstones = list(session.exec(select(Tombstone)))
        events = list(session.exec(select(AuditEvent)))
    assert sorted((t.call_id, t.reason, t.deleted_at) for t in tombstones) == sorted(
        (c.id, "erasure request: request 17", NOW) for c in calls
    )
    assert sorted((e.call_id, e.action, e.actor) for e in events) == sorted(
        (c.id, Action.ERASE, "tester") for c in calls
    )
    assert keys(storage, recordings, call_prefix(other.id)), "another customer's call stays"
    assert_trail_never_names_the_customer(storage)


def test_an_erasure_with_a_held_call_is_refused_whole_naming_the_held_call(
    storage: Storage, tmp_path: Path
):
    held, _ = ingest_call(storage, tmp_path, NATIONAL, NOW - 40 * DAY, "held")
    released, _ = ingest_call(storage, tmp_path, NATIONAL, NOW - 20 * DAY, "released")
    with storage.catalogue.session() as session:
        for call, released_at in ((held, None), (released, NOW - DAY)):
            session.add(
                Hold(
                    call_id=call.id,
                    reason="complaint 42",
                    review_at=NOW + 30 * DAY,
                    created_by="handler",
                    released_at=released_at,
                )
            )

    with pytest.raises(CallrecError, match="release the hold first") as error:
        erase_customer(storage, NATIONAL, reason="request 18", actor="t", now=NOW)

    assert held.id in str(error.value) and released.id not in str(error.value)
    for call in (held, released):
        assert keys(storage, storage.settings.bucket_recordings, call_prefix(call.id))
    with storage.catalogue.session() as session:
        assert len(session.exec(select(Call)).all()) == 2
        assert session.exec(select(Tombstone)).all() == []
        assert session.exec(select(AuditEvent)).all() == []


def test_erasing_a_customer_also_erases_the_exports_that_hold_their_calls(
    storage: Storage, tmp_path: Path
):
    bucket = storage.settings.bucket_exports
    ingest_call(storage, tmp_path, NATIONAL, NOW - 10 * DAY)
    ingest_call(storage, tmp_path, OTHER, NOW - 10 * DAY)
    mine = export_customer(storage, NATIONAL, actor="t", reason="ticket 2", now=NOW)
    theirs = export_customer(storage, OTHER, actor="t", reason="ticket 3", now=NOW)

    erase_customer(storage, NATIONAL, reason="request 19", actor="t", now=NOW)

    assert keys(storage, bucket, export_prefix(mine.export_id)) == []
    assert keys(storage, bucket, export_prefix(theirs.export_id)) == [theirs.object_key]
    with storage.catalogue.session() as session:
        assert session.exec(select(Export.id)).all() == [theirs.export_id]
        assert len(session.exec(select(ExportCall)).all()) == 1


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("  ", "the reason is blank"),
        ("customer called from 06-1234 5678", "contains the customer's number"),
        ("x" * 239, "characters long"),
    ],
    ids=["blank", "holds-the-number", "too-long"],
)
def test_a_reason_that_is_blank_too_long_or_names_the_customer_is_refused(
    storage: Storage, tmp_path: Path, reason: str, message: str
):
    call, _ = ingest_call(storage, tmp_path, NATIONAL, NOW - DAY)
    for request in (erase_customer, export_customer):
        with pytest.raises(CallrecError, match=message):
            request(storage, NATIONAL, reason=reason, actor="t", now=NOW)
    with storage.catalogue.session() as session:
        assert session.get(Call, call.id) is not None
        assert session.exec(select(Export)).all() == []


# -- the commands ----------------------------------------------------------------------------


@pytest.fixture
def cli(storage: Storage, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Run ``callrec ARGS`` in this process against ``storage``'s S3 server and catalogue;
    returns the exit code."""
    from cli import main

    for key in [k for k in callrec_env(storage) if k.startswith("CALLREC_")]:
        monkeypatch.setenv(key, callrec_env(storage)[key])
    monkeypatch.chdir(tmp_path)  # no stray .env

    def run(*args: str) -> int:
        with pytest.raises(SystemExit) as exit_:
            main(list(args))
        return int(exit_.value.code or 0)

    return run


def test_callrec_export_prints_the_export_and_a_working_link(
    storage: Storage, tmp_path: Path, cli, capsys: pytest.CaptureFixture[str]
):
    call, digest = ingest_call(storage, tmp_path, NATIONAL, NOW - DAY)
    assert cli("export", "--customer", "06 12345678", "--reason", "ticket 4", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["calls"] == 1 and shown["object_key"].startswith(shown["export_id"])
    archive = download(shown["url"])
    [entry] = json.loads(archive.read("manifest.json"))["calls"]
    assert entry["call_id"] == call.id
    assert hashlib.sha256(archive.read(f"{entry['folder']}/audio.wav")).hexdigest() == digest

    assert cli("export", "--customer", INTERNATIONAL) == 0
    summary, url = capsys.readouterr().out.splitlines()
    assert summary.startswith("export ") and ": 1 calls, " in summary
    assert url.startswith("http")
    with storage.catalogue.session() as session:
        reasons = sorted(e.reason for e in session.exec(select(Export)))
        actors = {e.actor for e in session.exec(select(AuditEvent))}
    assert reasons == ["access request", "ticket 4"]
    assert [actor.startswith("cli:") for actor in actors] == [True]


def test_callrec_erase_with_yes_erases_the_customers_calls(
    storage: Storage, tmp_path: Path, cli, capsys: pytest.CaptureFixture[str]
):
    calls = [ingest_call(storage, tmp_path, NATIONAL, NOW - n * DAY)[0] for n in (5, 2)]
    other, _ = ingest_call(storage, tmp_path, OTHER, NOW - DAY)
    code = cli("erase", "--customer", INTERNATIONAL, "--reason", "request 20", "--yes")
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "erased 2 calls of the customer",
        *(f"  {c.id}" for c in calls),
    ]
    with storage.catalogue.session() as session:
        assert session.exec(select(Call.id)).all() == [other.id]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_callrec_erase_asks_first_and_refuses_without_a_terminal_or_a_yes(
    storage: Storage, tmp_path: Path, cli, capsys: pytest.CaptureFixture[str], monkeypatch
):
    call, _ = ingest_call(storage, tmp_path, NATIONAL, NOW - DAY)
    erase = ("erase", "--customer", NATIONAL, "--reason", "request 21")

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))  # not a terminal
    assert cli(*erase) == 1
    refused = capsys.readouterr().err
    assert refused.count("\n") == 1 and refused.startswith("callrec: error:")
    assert "--yes" in refused

    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))  # a terminal, the operator says no
    assert cli(*erase) == 1
    out = capsys.readouterr().out
    assert "Erase all 1 calls of this customer now" in out and "nothing erased" in out

    with storage.catalogue.session() as session:
        assert session.get(Call, call.id) is not None
        assert session.exec(select(Tombstone)).all() == []

    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    assert cli(*erase) == 0
    with storage.catalogue.session() as session:
        assert session.get(Call, call.id) is None
