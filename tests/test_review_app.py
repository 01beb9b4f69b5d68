"""The review app's page logic and role rules with Streamlit's AppTest (no browser), against
real storage: the session's S3 server and a catalogue holding the real model's transcripts of
the sample calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from storage.access import Role, Viewer
from storage.audit import Action, events
from storage.connect import Storage
from storage.users import add_user
from tests.stores import callrec_env
from tests.test_search import NOW, store_samples
from transcribe.engine import Transcript

APP = Path(__file__).resolve().parents[1] / "review_ui" / "app.py"
HANDLER = Viewer("handler", Role.COMPLAINT_HANDLER)
ANALYST = Viewer("analyst", Role.ANALYST)
LEAD = Viewer("lead", Role.TEAM_LEAD, ("zorg",))


@pytest.fixture
def app_env(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> Iterator[Storage]:
    """The app reads the same CALLREC_ environment a child process would get."""
    for key, value in callrec_env(storage).items():
        if key.startswith("CALLREC_"):
            monkeypatch.setenv(key, value)
    from review_ui import state

    state.storage.clear()  # type: ignore[attr-defined]  # st.cache_resource
    yield storage
    state.storage.clear()  # type: ignore[attr-defined]


@pytest.fixture
def samples(app_env: Storage, transcripts: dict[str, Transcript]) -> dict[str, str]:
    return store_samples(app_env, transcripts)


def page(render: Callable[[], None], viewer: Viewer, **query: str) -> AppTest:
    """One page of the app run as ``viewer`` with ``query`` in the URL."""
    at = AppTest.from_function(render, default_timeout=60)
    at.session_state["viewer"] = viewer
    for key, value in query.items():
        at.query_params[key] = value
    return at.run()


def call_page() -> None:
    from review_ui.views import call

    call.render()


def test_a_visitor_sees_only_the_sign_in_form_and_a_wrong_password_is_refused(app_env: Storage):
    add_user(
        app_env.catalogue, "handler", role=Role.COMPLAINT_HANDLER,
        password="correct horse battery", actor="t", now=NOW,
    )  # fmt: skip
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not at.exception and [t.label for t in at.text_input] == ["Username", "Password"]
    assert not at.header  # no page content before sign-in
    at.text_input[0].input("handler")
    at.text_input[1].input("wrong password!!")
    at.button[0].click().run()
    assert "Wrong username or password" in at.error[0].value
    assert "viewer" not in at.session_state
    at.text_input[1].input("correct horse battery")
    at.button[0].click().run()
    assert at.session_state["viewer"] == Viewer("handler", Role.COMPLAINT_HANDLER)
    assert [h.value for h in at.header] == ["Calls"]


@pytest.mark.parametrize(
    ("viewer", "pages"),
    [
        (LEAD, {"calls", "call", "search", "analytics"}),
        (HANDLER, {"calls", "call", "search"}),
        (ANALYST, {"calls", "call", "search", "analytics"}),
        (
            Viewer("root", Role.ADMIN),
            {"calls", "call", "search", "analytics", "users", "audit", "retention", "quarantine"},
        ),
    ],
    ids=["team_lead", "complaint_handler", "analyst", "admin"],
)
def test_each_role_gets_only_its_pages(app_env: Storage, viewer: Viewer, pages: set[str]):
    from review_ui import state

    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["viewer"] = viewer
    at.run()
    assert not at.exception, at.exception
    assert set(at.session_state[state.PAGES]) == pages


def trail(storage: Storage) -> set[str]:
    with storage.catalogue.session() as session:
        return {event.action for event in events(session)}


def test_the_call_page_for_a_handler_plays_from_the_turn_clicked_and_is_audited(
    app_env: Storage, samples: dict[str, str]
):
    call_id = samples["imei_iban"]
    at = page(call_page, HANDLER, call=call_id)
    assert not at.exception, at.exception
    turns = {b.key: b.label for b in at.button if (b.key or "").startswith("turn-")}
    assert any("NL30" in label for label in turns.values()), turns  # the IBAN, in full
    assert not at.get("audio"), "no player (and no playback event) before asking to listen"
    next(b for b in at.button if b.label == "Listen").click().run()
    [player] = at.get("audio")
    assert call_id in player.proto.url and "X-Amz-Signature" in player.proto.url
    key, label = next((k, v) for k, v in turns.items() if "NL30" in v)
    at.button(key=key).click().run()
    [player] = at.get("audio")
    minutes, seconds = label[1:6].split(":")
    assert player.proto.start_time == int(minutes) * 60 + int(seconds)
    assert {str(Action.VIEW), str(Action.PLAYBACK)} <= trail(app_env)


def test_the_analyst_gets_the_redacted_transcript_and_no_player(
    app_env: Storage, samples: dict[str, str]
):
    at = page(call_page, ANALYST, call=samples["imei_iban"])
    assert not at.exception, at.exception
    shown = " ".join(m.value for m in at.markdown)
    assert "[IBAN]" in shown and "NL30" not in shown and "0317" not in shown
    assert not [b for b in at.button if b.label == "Listen"] and not at.get("audio")
    assert "+316" not in shown  # no customer number either


def test_a_team_lead_cannot_open_another_teams_call_by_its_url(
    app_env: Storage, samples: dict[str, str]
):
    at = page(call_page, LEAD, call=samples["imei_iban"])  # team schade, not zorg
    [refusal] = at.error
    assert refusal.value.startswith(f"no call {samples['imei_iban']}")  # as if it did not exist
    assert not at.header and not at.button


def test_a_team_lead_adds_a_note_at_the_moment_and_it_is_there_on_the_next_visit(
    app_env: Storage, samples: dict[str, str]
):
    call_id = samples["health_bsn"]
    at = page(call_page, LEAD, call=call_id)
    assert not at.exception, at.exception
    at.number_input[0].set_value(12)
    at.text_area[0].input("Goed doorgevraagd naar de behandelingen.")
    next(b for b in at.button if b.label == "Add note").click().run()
    again = page(call_page, LEAD, call=call_id)
    notes = [m.value for m in again.markdown if "Goed doorgevraagd" in m.value]
    assert notes and notes[0].startswith("**00:12**")


def admin_pages() -> None:
    from review_ui.views import admin

    for render in (admin.users, admin.audit, admin.retention, admin.quarantine):
        render()


def analytics_page() -> None:
    from review_ui.views import analytics

    analytics.render()


def test_the_admin_pages_render_for_an_admin_and_refuse_anyone_else(
    app_env: Storage, samples: dict[str, str]
):
    at = page(admin_pages, Viewer("root", Role.ADMIN))
    assert not at.exception, at.exception
    assert [h.value for h in at.header] == [
        "Users", "Audit trail", "Retention", "Quarantine and failed jobs",
    ]  # fmt: skip
    refused = page(admin_pages, ANALYST)
    assert refused.exception and "not available to the analyst role" in refused.exception[0].message
    assert not refused.header


def test_the_analytics_page_shows_metrics_per_agent_within_the_lead_s_teams(
    app_env: Storage, samples: dict[str, str]
):
    at = page(analytics_page, LEAD)
    assert not at.exception, at.exception  # nothing in the default period: empty, no error
    at.date_input[0].set_value((date(2026, 1, 1), date(2026, 6, 30)))
    at.text_input(key="trend-query").input("emma").run()
    assert not at.exception, at.exception
    [table] = at.dataframe
    assert set(table.value["key"]) == {"A3305"}  # only the zorg agent


def test_a_long_call_shows_its_turns_a_window_at_a_time_and_a_link_opens_the_right_one(
    app_env: Storage,
):
    from storage.catalogue import Call, Segment

    with app_env.catalogue.session() as session:
        session.add(
            Call(
                id="long-call", started_at=NOW, duration_s=1800, channels=2, sample_rate=8000,
                codec="pcm_s16le", team="zorg", sha256="0" * 64,
                original_key="calls/long-call/original.wav",
            )
        )  # fmt: skip
        session.flush()
        session.add_all(
            Segment(
                call_id="long-call", speaker="agent" if n % 2 else "customer",
                start_s=n * 13.0 + 0.4, end_s=n * 13.0 + 10, text=f"zin nummer {n}",
                redacted_text=f"zin nummer {n}", model="m",
            )
            for n in range(130)
        )  # fmt: skip
    at = page(call_page, HANDLER, call="long-call")
    turns = [b.key for b in at.button if (b.key or "").startswith("turn-")]
    assert turns == [f"turn-{n}" for n in range(60)]
    next(b for b in at.button if b.label == "Later turns").click().run()
    assert next(b.key for b in at.button if (b.key or "").startswith("turn-")) == "turn-60"
    next(b for b in at.button if b.label == "Listen").click().run()
    at.button(key="turn-60").click().run()  # the first turn of a window: the window stays
    assert next(b.key for b in at.button if (b.key or "").startswith("turn-")) == "turn-60"
    assert at.get("audio")[0].proto.start_time == 780  # whole seconds for the player
    linked = page(call_page, HANDLER, call="long-call", at=str(100 * 13.0 + 0.4))
    shown = [b.key for b in linked.button if (b.key or "").startswith("turn-")]
    assert "turn-100" in shown and len(shown) <= 60
    linked = page(call_page, HANDLER, call="long-call", at=str(60 * 13.0 + 0.4))
    assert next(b.key for b in linked.button if (b.key or "").startswith("turn-")) == "turn-60"
    at.text_input(key="find:long-call").input("nummer 12").run()
    found = [b.key for b in at.button if (b.key or "").startswith("turn-")]
    assert found == ["turn-12"] + [f"turn-{n}" for n in range(120, 130)]
