"""The review app in a real Chromium: sign-in per role, what each role can and cannot reach
(also by typing a URL), the player landing on the clicked turn, a note that survives a reload,
and a screenshot of the call page (``test-artifacts/call-page.png``)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ingest.backfill import LocalRecording, upload_and_ingest
from ingest.pipeline import IngestOptions, Outcome
from storage.access import Role
from storage.connect import Storage
from storage.users import add_user
from tests.browser import ARTIFACTS, ReviewApp
from tests.models import DIALOGUES, SAMPLES
from transcribe.engine import Transcript
from transcribe.jobs import LeasePolicy, claim
from transcribe.metrics import metrics_from_speech
from transcribe.store import save_transcript

PASSWORD = "a long test password"
ACCOUNTS = {
    "lead": (Role.TEAM_LEAD, ("zorg",)),
    "handler": (Role.COMPLAINT_HANDLER, ()),
    "analyst": (Role.ANALYST, ()),
    "root": (Role.ADMIN, ()),
}


@pytest.fixture
def installation(storage: Storage, transcripts: dict[str, Transcript]) -> dict[str, str]:
    """The sample calls ingested from their audio (started the last few days) and transcribed
    through the worker's store path, and one account per role; returns call ids by sample."""
    now = datetime.now(UTC)
    suffix = uuid.uuid4().hex[:6]
    recordings = []
    for n, name in enumerate(DIALOGUES):
        meta = json.loads((SAMPLES / f"{name}.json").read_text())
        metadata = {k: v for k, v in meta.items() if k not in ("reference", "pii", "key_phrases")}
        metadata["call_id"] = f"{meta['call_id']}-{suffix}"
        metadata["started_at"] = (now - timedelta(days=n + 1)).isoformat()
        recordings.append(LocalRecording(SAMPLES / f"{name}.wav", metadata))
    results = upload_and_ingest(
        storage, recordings, now=now, options=IngestOptions.from_settings(storage)
    )
    assert [r.outcome for r in results] == [Outcome.INGESTED] * len(DIALOGUES), results
    ids = {name: r.call_id or "" for name, r in zip(DIALOGUES, results, strict=True)}
    by_call = {call_id: name for name, call_id in ids.items()}
    while (job := claim(storage.catalogue, owner="t", now=now, policy=LeasePolicy())) is not None:
        transcript = transcripts[by_call[job.call_id]]
        metrics = metrics_from_speech(transcript.speech, duration_s=transcript.duration_s)
        save_transcript(storage.catalogue, job, transcript, metrics.to_dict(), owner="t", now=now)
    for username, (role, teams) in ACCOUNTS.items():
        add_user(storage.catalogue, username, role=role, teams=teams, password=PASSWORD,
                 actor="test", now=now)  # fmt: skip
    return ids


@pytest.fixture
def tab(browser: Any) -> Any:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(tab: Any, app: ReviewApp, username: str, path: str = "", *, password: str = PASSWORD):
    """Open ``path`` (a fresh session: reloads sign out) and sign in there."""
    tab.goto(f"{app.url}/{path}")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password", exact=True).fill(password)
    tab.get_by_role("button", name="Sign in").click()


@pytest.mark.parametrize("username", list(ACCOUNTS))
def test_each_role_signs_in(installation, review_app: ReviewApp, tab: Any, username: str):
    sign_in(tab, review_app, username)
    role = ACCOUNTS[username][0].replace("_", " ")
    tab.get_by_text(f"Signed in as {username}, {role}").wait_for(timeout=30_000)


def test_a_wrong_password_is_refused(installation, review_app: ReviewApp, tab: Any):
    sign_in(tab, review_app, "handler", password="not the password")
    tab.get_by_text("Wrong username or password").wait_for(timeout=30_000)
    assert tab.get_by_text("Signed in as").count() == 0


def test_the_analyst_cannot_play_audio_or_see_unredacted_text_even_by_url(
    installation: dict[str, str], review_app: ReviewApp, tab: Any
):
    call_id = installation["imei_iban"]
    sign_in(tab, review_app, "analyst", f"call?call={call_id}")
    tab.get_by_text("Transcript (personal data redacted)").wait_for(timeout=30_000)
    tab.get_by_text("[IBAN]").first.wait_for()
    body = tab.inner_text("body")
    assert "NL30" not in body and "0317" not in body
    assert tab.locator("audio").count() == 0
    assert tab.get_by_role("button", name="Listen").count() == 0
    for admin_page, heading in (("users", "Users"), ("audit", "Audit trail")):
        sign_in(tab, review_app, "analyst", admin_page)
        tab.get_by_text(f"The page '{admin_page}' is not available to your role.").wait_for(
            timeout=30_000
        )
        assert tab.get_by_role("heading", name=heading).count() == 0


def test_a_team_lead_sees_only_their_teams_calls(
    installation: dict[str, str], review_app: ReviewApp, tab: Any
):
    sign_in(tab, review_app, "lead", "search")
    tab.get_by_label("Query").fill("emma")
    tab.get_by_label("Query").press("Enter")
    tab.get_by_role("link", name="Open").first.wait_for(timeout=30_000)
    assert tab.get_by_role("link", name="Open").count() == 1  # only the zorg call
    assert "team zorg" in tab.inner_text("body") and "team schade" not in tab.inner_text("body")
    sign_in(tab, review_app, "lead", f"call?call={installation['imei_iban']}")  # team schade
    tab.get_by_text(f"no call {installation['imei_iban']}").wait_for(timeout=30_000)


def test_a_complaint_handler_finds_the_agreement_and_the_player_lands_on_it(
    installation: dict[str, str], review_app: ReviewApp, tab: Any
):
    reference = json.loads((SAMPLES / "claim_screen_repair.json").read_text())
    phrase = next(p for p in reference["key_phrases"] if p["kind"] == "REPAIR_DATE")
    sign_in(tab, review_app, "handler", "search")
    tab.get_by_text("Filters").click()
    tab.get_by_label("Customer number").fill(reference["customer_number"].replace("+31", "0"))
    tab.get_by_label("Query").fill("dinsdag")
    tab.get_by_label("Query").press("Enter")
    tab.get_by_role("link", name="Open").first.click(timeout=30_000)
    tab.get_by_role("heading", name=f"Call {installation['claim_screen_repair']}").wait_for(
        timeout=30_000
    )
    tab.get_by_role("button", name="Listen").click()
    tab.locator("audio").wait_for(timeout=30_000)
    turn = tab.get_by_role("button", name="dinsdag 13 januari")
    try:
        turn.click(timeout=30_000)
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / "call-page-failed.png"))
        raise AssertionError(tab.inner_text("body")[:3000]) from None
    tab.wait_for_function(
        "expected => { const a = document.querySelector('audio');"
        " return a && Math.abs(a.currentTime - expected) < 1.5; }",
        arg=phrase["turn_start_s"],
        timeout=30_000,
    )
    landed = tab.evaluate("document.querySelector('audio').currentTime")
    assert abs(landed - phrase["turn_start_s"]) <= 1.5, landed
    ARTIFACTS.mkdir(exist_ok=True)
    tab.get_by_role("heading", name=f"Call {installation['claim_screen_repair']}").hover()
    tab.screenshot(path=str(ARTIFACTS / "call-page.png"))


def test_a_note_survives_a_reload(installation: dict[str, str], review_app: ReviewApp, tab: Any):
    call_id = installation["health_bsn"]
    sign_in(tab, review_app, "lead", f"call?call={call_id}")
    tab.get_by_label("Note").fill("Goed doorgevraagd naar de behandelingen.")
    tab.get_by_role("button", name="Add note").click()
    tab.get_by_text("Goed doorgevraagd naar de behandelingen.").last.wait_for(timeout=30_000)
    tab.reload()
    sign_in(tab, review_app, "lead", f"call?call={call_id}")
    tab.get_by_text("lead: Goed doorgevraagd naar de behandelingen.").wait_for(timeout=30_000)
