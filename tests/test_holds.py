"""Holds keep a disputed call past its deadline, in the catalogue and on S3 itself, until released;
the lifecycle backstop expires what no hold keeps. Real S3 server, both catalogue backends."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from minio import Minio
from minio.versioningconfig import ENABLED, VersioningConfig
from sqlmodel import select

import cli
from storage.access import AccessDeniedError, Role, Viewer
from storage.audit import Action, cli_actor, events
from storage.backstop import (
    HELD,
    RETENTION_TAG,
    RULE_ID,
    STANDARD,
    STANDARD_TAGS,
    backstop_status,
    ensure_backstop,
)
from storage.calls import CallNotFoundError
from storage.catalogue import Call, Catalogue, Hold
from storage.connect import Storage
from storage.embedded_s3 import S3Endpoint
from storage.holds import (
    HoldError,
    active_hold,
    active_holds,
    holds_due_for_review,
    place_hold,
    release_hold,
)
from storage.objects import ObjectInfo, ObjectLockedError, ObjectStore
from storage.purge import call_prefix, purge
from storage.status import collect_status
from storage.verify import verify
from tests.stores import callrec_env, settings_for
from tests.test_purge import ingest_at

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
OPERATOR = Viewer("cli:alice@contact-centre", Role.ADMIN)
BOB = Viewer("cli:bob@host", Role.ADMIN)
NUMBER = "+31612345678"


@pytest.fixture(
    params=[
        pytest.param("storage", id="sqlite"),
        pytest.param("pg_storage", id="postgres", marks=pytest.mark.postgres),
    ]
)
def any_storage(request: pytest.FixtureRequest) -> Storage:
    return request.getfixturevalue(request.param)


@pytest.fixture
def s3(s3_endpoint: S3Endpoint) -> Minio:
    """A bare client, for what callrec itself never does (delete markers, removing the rule)."""
    return Minio(
        s3_endpoint.endpoint,
        access_key=s3_endpoint.access_key,
        secret_key=s3_endpoint.secret_key,
        secure=False,
    )


@contextlib.contextmanager
def own_buckets(
    tmp_path: Path, endpoint: S3Endpoint, objects: ObjectStore, *, plain_recordings: str = ""
) -> Iterator[Storage]:
    """Buckets of this test's own (a lifecycle rule is per bucket); ``plain_recordings`` names
    a recordings bucket made beforehand without object lock, as an older installation has."""
    tag = uuid.uuid4().hex[:8]
    settings = settings_for(
        tmp_path / f"data-{tag}", endpoint, bucket_incoming=f"in-{tag}",
        bucket_recordings=plain_recordings or f"rec-{tag}", bucket_quarantine=f"q-{tag}",
        bucket_exports=f"ex-{tag}",
    )  # fmt: skip
    objects.ensure_buckets(settings.buckets)
    with Catalogue.open(settings.catalogue_url) as catalogue:
        yield Storage(settings=settings, objects=objects, catalogue=catalogue)


def versions(storage: Storage, call_id: str) -> list[ObjectInfo]:
    """The call's object versions that hold bytes (delete markers take no marks)."""
    listed = storage.objects.list_versions(
        storage.settings.bucket_recordings, prefix=call_prefix(call_id)
    )
    return [v for v in listed if not v.is_delete_marker]


def marks(storage: Storage, call_id: str) -> set[tuple[str | None, bool]]:
    """The distinct (retention tag, legal hold) pairs over every version of the call."""
    bucket = storage.settings.bucket_recordings
    return {
        (
            storage.objects.tags(bucket, v.key, version_id=v.version_id).get(RETENTION_TAG),
            storage.objects.legal_hold(bucket, v.key, version_id=v.version_id),
        )
        for v in versions(storage, call_id)
    }


def hold(storage: Storage, call_id: str, *, review_at: datetime = NOW + 30 * DAY) -> Hold:
    return place_hold(
        storage, call_id, reason="complaint 2026-118", review_at=review_at, viewer=OPERATOR, now=NOW
    )


def test_a_hold_and_its_release_are_audited_with_who_what_why_and_no_customer_number(
    any_storage: Storage, tmp_path: Path
):
    storage = any_storage
    call = ingest_at(storage, tmp_path, "disputed", NOW - 10 * DAY)
    with storage.catalogue.session() as session:
        row = session.get_one(Call, call.id)
        row.customer_number = NUMBER
        session.add(row)

    placed = hold(storage, call.id)
    assert (placed.call_id, placed.created_by, placed.created_at) == (call.id, OPERATOR.name, NOW)
    assert [h.id for h in active_holds(storage)] == [placed.id]

    released = release_hold(
        storage, call.id, reason="  settled, case closed ", viewer=BOB, now=NOW + DAY
    )
    assert (released.released_at, released.released_by) == (NOW + DAY, "cli:bob@host")
    assert active_holds(storage) == []

    with storage.catalogue.session() as session:
        trail = events(session, call_id=call.id)
        assert session.exec(select(Hold)).one().released_by == "cli:bob@host"
    assert [(e.action, e.actor, e.at) for e in trail] == [
        (Action.RELEASE, "cli:bob@host", NOW + DAY),
        (Action.HOLD, OPERATOR.name, NOW),
    ]
    assert trail[0].details == {"reason": "settled, case closed"}
    assert trail[1].details == {
        "reason": "complaint 2026-118",
        "review_at": (NOW + 30 * DAY).isoformat(),
    }
    written = json.dumps([e.model_dump(mode="json") for e in trail])
    assert "612345678" not in written, "the audit trail must not copy the customer's number"


def _refused(storage: Storage, tmp_path: Path, case: str) -> tuple[Call, Callable[[], object]]:
    """Set the scene for one refusal; returns its call and the attempt that must fail."""
    started = NOW - (200 if case == "purged call" else 10) * DAY
    call = ingest_at(storage, tmp_path, "r", started)
    if case == "purged call":
        assert purge(storage, now=NOW).calls_purged == [call.id]
    if case == "second hold":
        hold(storage, call.id)
    attempts: dict[str, Callable[[], object]] = {
        "unknown call": lambda: hold(storage, "nobody-" + call.id),
        "purged call": lambda: hold(storage, call.id),
        "blank reason": lambda: place_hold(
            storage, call.id, reason=" \t", review_at=NOW + DAY, viewer=OPERATOR, now=NOW
        ),
        "review in the past": lambda: hold(storage, call.id, review_at=NOW - DAY),
        "review now": lambda: hold(storage, call.id, review_at=NOW),
        "second hold": lambda: place_hold(
            storage, call.id, reason="another", review_at=NOW + DAY, viewer=BOB, now=NOW
        ),
        "release without hold": lambda: release_hold(
            storage, call.id, reason="done", viewer=OPERATOR, now=NOW
        ),
        "release of unknown call": lambda: release_hold(
            storage, "nobody-" + call.id, reason="done", viewer=OPERATOR, now=NOW
        ),
        "release with blank reason": lambda: release_hold(
            storage, call.id, reason="", viewer=OPERATOR, now=NOW
        ),
    }
    return call, attempts[case]


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("unknown call", CallNotFoundError, r"^no call nobody-r-\w+ — list calls with"),
        ("purged call", CallNotFoundError, r"was deleted on 2026-11-28 12:00 UTC \(retention"),
        ("blank reason", HoldError, r"^a hold needs a reason — say why"),
        ("review in the past", HoldError, r"review date 2026-11-27 13:00 CET is not in the future"),
        ("review now", HoldError, r"review date 2026-11-28 13:00 CET is not in the future"),
        (
            "second hold",
            HoldError,
            r"already held by cli:alice@contact-centre since 2026-11-28 13:00 CET, to be reviewed "
            r"on 2026-12-28 13:00 CET — to change it, release it first",
        ),
        ("release without hold", HoldError, r"^call r-\w+ is not under an active hold — list"),
        ("release of unknown call", CallNotFoundError, r"^no call nobody-r-\w+"),
        ("release with blank reason", HoldError, r"^a release needs a reason"),
    ],
)
def test_a_refused_hold_or_release_says_why_and_changes_nothing(
    storage: Storage, tmp_path: Path, case: str, error: type[Exception], message: str
):
    call, attempt = _refused(storage, tmp_path, case)
    with storage.catalogue.session() as session:
        before = (len(session.exec(select(Hold)).all()), len(events(session)))
    with pytest.raises(error, match=message):
        attempt()
    with storage.catalogue.session() as session:
        assert (len(session.exec(select(Hold)).all()), len(events(session))) == before
    held = case == "second hold"
    expected = set() if case == "purged call" else {(HELD if held else STANDARD, held)}
    assert marks(storage, call.id) == expected, "a refusal must leave S3 as it was"


def test_a_held_call_is_protected_by_the_server_until_released_and_then_purged(
    storage: Storage, tmp_path: Path, s3: Minio
):
    bucket = storage.settings.bucket_recordings
    assert storage.objects.object_lock_enabled(bucket), "callrec creates it with object lock"
    call = ingest_at(storage, tmp_path, "evidence", NOW - 200 * DAY)  # past its deadline
    storage.objects.put(bucket, call.original_key, b"a second version", tags=STANDARD_TAGS)
    assert call.rendition_key
    s3.remove_object(bucket, call.rendition_key)  # a delete marker over the rendition
    assert len(versions(storage, call.id)) == 3
    assert marks(storage, call.id) == {(STANDARD, False)}, "ingest tags what it stores"

    hold(storage, call.id)
    assert marks(storage, call.id) == {(HELD, True)}
    with pytest.raises(ObjectLockedError, match=r"AccessDenied.*legal hold may protect"):
        storage.objects.delete(bucket, call.original_key)
    report = purge(storage, now=NOW)
    assert (report.calls_purged, report.held) == ([], 1)
    assert len(versions(storage, call.id)) == 3, "the server refused; nothing went"

    release_hold(storage, call.id, reason="settled", viewer=OPERATOR, now=NOW)
    assert marks(storage, call.id) == {(STANDARD, False)}
    assert purge(storage, now=NOW).calls_purged == [call.id]
    assert list(storage.objects.list_versions(bucket, prefix=call_prefix(call.id))) == []


@pytest.mark.parametrize("interrupted", ["place", "release"])
def test_hold_marks_left_by_an_interruption_are_repaired_by_release_or_by_the_purge(
    storage: Storage, tmp_path: Path, interrupted: str
):
    """The catalogue decides: marks without an active hold are leftovers. ``release`` repairs
    them; a due call's purge clears them itself rather than stopping at the server's refusal."""
    bucket = storage.settings.bucket_recordings
    calls = [ingest_at(storage, tmp_path, f"crash{n}", NOW - 200 * DAY) for n in range(2)]
    for call in calls:
        if interrupted == "place":  # the objects were marked, the row never written
            for v in versions(storage, call.id):
                storage.objects.set_legal_hold(bucket, v.key, version_id=v.version_id, on=True)
        else:  # the row was released, the objects never cleared
            hold(storage, call.id)
            with storage.catalogue.session() as session:
                row = session.exec(select(Hold).where(Hold.call_id == call.id)).one()
                row.released_at, row.released_by = NOW, OPERATOR.name
                session.add(row)
    with pytest.raises(ObjectLockedError):
        storage.objects.delete_prefix(bucket, call_prefix(calls[0].id))

    with pytest.raises(HoldError, match=r"not under an active hold; cleared [1-9]\d* hold marks"):
        release_hold(storage, calls[0].id, reason="clear leftovers", viewer=OPERATOR, now=NOW)
    assert marks(storage, calls[0].id) == {(STANDARD, False)}
    assert sorted(purge(storage, now=NOW).calls_purged) == sorted(c.id for c in calls)
    assert all(versions(storage, call.id) == [] for call in calls)


def test_without_object_lock_a_hold_still_retags_every_version(
    tmp_path: Path, s3_endpoint: S3Endpoint, object_store: ObjectStore, s3: Minio
):
    plain = f"plain-{uuid.uuid4().hex[:8]}"
    s3.make_bucket(plain)  # made by an older callrec: versioned, no object lock
    s3.set_bucket_versioning(plain, VersioningConfig(ENABLED))
    with own_buckets(tmp_path, s3_endpoint, object_store, plain_recordings=plain) as storage:
        assert not storage.objects.object_lock_enabled(plain), "an existing bucket is kept as is"
        call = ingest_at(storage, tmp_path, "plain", NOW - 10 * DAY)
        hold(storage, call.id)
        assert marks(storage, call.id) == {(HELD, False)}
        release_hold(storage, call.id, reason="settled", viewer=OPERATOR, now=NOW)
        assert marks(storage, call.id) == {(STANDARD, False)}


def test_holds_due_for_review_are_exactly_the_active_ones_whose_date_has_come(
    storage: Storage, tmp_path: Path
):
    reviews = {n: NOW + n * DAY for n in (1, 10, 20)}
    calls = {n: ingest_at(storage, tmp_path, f"due{n}", NOW - 5 * DAY) for n in (*reviews, 0)}
    for n, review_at in reviews.items():
        hold(storage, calls[n].id, review_at=review_at)
    hold(storage, calls[0].id, review_at=NOW + DAY)
    release_hold(storage, calls[0].id, reason="settled", viewer=OPERATOR, now=NOW)

    assert holds_due_for_review(storage, NOW) == []
    at = NOW + 10 * DAY  # the boundary: a review date equal to now is due
    assert [h.call_id for h in holds_due_for_review(storage, at)] == [calls[1].id, calls[10].id]
    assert [h.call_id for h in active_holds(storage)] == [calls[n].id for n in (1, 10, 20)]
    status = collect_status(storage, now=at).to_dict()
    assert status["holds"] == 3
    assert status["holds_due_for_review"] == [
        {"call_id": calls[n].id, "review_at": reviews[n].isoformat()} for n in (1, 10)
    ]


def test_the_backstop_rule_is_set_kept_current_and_reported_missing_by_verify(
    tmp_path: Path, s3_endpoint: S3Endpoint, object_store: ObjectStore, s3: Minio
):
    with own_buckets(tmp_path, s3_endpoint, object_store) as storage:
        bucket = storage.settings.bucket_recordings
        assert not backstop_status(storage).present
        assert not verify(storage, now=NOW).ok

        ensure_backstop(storage)
        status = backstop_status(storage)
        assert (status.ok, status.days, status.expected_days) == (True, 183, 183)
        [rule] = s3.get_bucket_lifecycle(bucket).rules  # type: ignore[union-attr]
        assert rule.rule_id == RULE_ID and rule.rule_filter and rule.rule_filter.and_operator
        assert rule.rule_filter.and_operator.prefix == "calls/"
        assert dict(rule.rule_filter.and_operator.tags or {}) == {RETENTION_TAG: STANDARD}
        assert rule.noncurrent_version_expiration.noncurrent_days == 1  # type: ignore[union-attr]
        report = verify(storage, now=NOW)
        assert report.ok and report.to_dict()["backstop"] == {
            "ok": True, "present": True, "days": 183, "expected_days": 183,
        }  # fmt: skip

        longer = Storage(
            settings=storage.settings.model_copy(update={"lifecycle_backstop_days": 5}),
            objects=storage.objects,
            catalogue=storage.catalogue,
        )
        assert not backstop_status(longer).ok, "a changed setting is noticed"
        ensure_backstop(longer)
        assert backstop_status(longer).days == 185
        assert len(s3.get_bucket_lifecycle(bucket).rules) == 1  # type: ignore[union-attr]

        s3.delete_bucket_lifecycle(bucket)
        missing = verify(storage, now=NOW)
        assert not missing.ok and missing.backstop and not missing.backstop.present
        assert not (missing.orphan_objects or missing.missing_objects or missing.past_deadline)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli.main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_callrec_hold_holds_and_release(
    storage: Storage,
    tmp_path: Path,
    s3: Minio,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
):
    monkeypatch.chdir(tmp_path)  # no stray .env
    for key, value in callrec_env(storage).items():
        monkeypatch.setenv(key, value)
    now = datetime.now(UTC)
    call = ingest_at(storage, tmp_path, "cli", now - 10 * DAY)
    overdue = ingest_at(storage, tmp_path, "overdue", now - 50 * DAY)
    place_hold(
        storage,
        overdue.id,
        reason="old case",
        review_at=now - DAY,
        viewer=OPERATOR,
        now=now - 9 * DAY,
    )
    s3.delete_bucket_lifecycle(storage.settings.bucket_recordings)
    review = (now + 30 * DAY).date().isoformat()

    code, out, err = run_cli(capsys, "hold", call.id, "--reason", "complaint 7", "--review", review)
    assert (code, err) == (0, "")
    assert out.startswith(f"held {call.id} until released; review on {review} 00:00 ")
    assert backstop_status(storage).ok, "every start puts the backstop rule back"

    code, out, _ = run_cli(capsys, "holds", "--json")
    listed = {h["call_id"]: h for h in json.loads(out)}
    assert set(listed) == {call.id, overdue.id}
    assert (listed[call.id]["reason"], listed[call.id]["created_by"]) == (
        "complaint 7",
        cli_actor(),
    )
    code, out, _ = run_cli(capsys, "holds", "--due")
    assert overdue.id in out and call.id not in out and "old case" in out
    code, out, _ = run_cli(capsys, "status")
    assert f"hold on {overdue.id} due for review since" in out and "(1 due for review)" in out

    code, out, err = run_cli(capsys, "hold", call.id, "--reason", "again", "--review", review)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"callrec: error: call {call.id} is already held by {cli_actor()}")
    code, _, err = run_cli(capsys, "hold", call.id, "--reason", "x", "--review", "next week")
    assert code == 2 and "'next week' is not an ISO 8601 date" in err and err.count("\n") == 1

    code, out, _ = run_cli(capsys, "release", call.id, "--reason", "answered")
    assert (code, out) == (0, f"released {call.id}\n")
    code, _, err = run_cli(capsys, "release", call.id, "--reason", "answered")
    assert code == 1 and "is not under an active hold" in err and err.count("\n") == 1
    assert marks(storage, call.id) == {(STANDARD, False)}


@pytest.mark.parametrize(
    "viewer", [Viewer("lead", Role.TEAM_LEAD, ("zorg",)), Viewer("analyst", Role.ANALYST)]
)
def test_only_a_complaint_handler_or_an_admin_may_hold_release_or_read_a_hold(
    storage: Storage, tmp_path: Path, viewer: Viewer
):
    """Refused in storage itself, not only by the page that offers the buttons: nothing is
    written and no mark touches the call's objects."""
    call = ingest_at(storage, tmp_path, "roles", NOW - 3 * DAY)
    held = hold(storage, call.id)
    marks_before = marks(storage, call.id)
    with storage.catalogue.session() as session:
        trail_before = len(events(session))

    with pytest.raises(AccessDeniedError, match="not available to the"):
        place_hold(storage, call.id, reason="x", review_at=NOW + DAY, viewer=viewer, now=NOW)
    with pytest.raises(AccessDeniedError, match="releasing a hold"):
        release_hold(storage, call.id, reason="x", viewer=viewer, now=NOW)
    with pytest.raises(AccessDeniedError, match="reading a call's hold"):
        active_hold(storage, viewer, call.id)

    handler = Viewer("handler", Role.COMPLAINT_HANDLER)
    assert active_hold(storage, handler, call.id) == held
    assert marks(storage, call.id) == marks_before
    with storage.catalogue.session() as session:
        assert len(events(session)) == trail_before
