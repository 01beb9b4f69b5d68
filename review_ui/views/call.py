"""One call: metadata, the player, a picture of who spoke when, the transcript as turns that
start the player at their moment, find-in-call, coaching notes and a scorecard (team leads),
and dispute hold/release and export (complaint handlers).

Everything shown comes from functions that check the role: an analyst gets the redacted
transcript and no player (``playback_url`` refuses them), whatever this page does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import TypeVar

import streamlit as st

from errors import CallrecError
from review_ui import state
from review_ui.timeline import timeline_chart
from storage.access import Role, Viewer
from storage.calls import CallDetail, SegmentView, open_call, playback_url

T = TypeVar("T")
PLAYER_TTL_S = 300  # a presigned link lives this long; the page asks for a new one after
TURNS_SHOWN = 60  # turn buttons drawn at once


def render() -> None:
    viewer = state.viewer()
    assert viewer is not None
    call_id = st.query_params.get("call", "")
    if not call_id:
        st.info("Choose a call on the Calls or Search page.")
        return
    try:
        detail = _opened(viewer, call_id)
    except CallrecError as error:
        st.error(str(error))
        return
    call = detail.call
    _seek_from_link(call.id)
    st.header(f"Call {call.id}")
    _summary(detail, viewer)
    timeline_chart(detail)
    _listen_and_read(detail, viewer)
    if viewer.role in (Role.TEAM_LEAD, Role.ADMIN):
        _coaching(detail, viewer)
    if viewer.role in (Role.COMPLAINT_HANDLER, Role.ADMIN):
        _dispute(detail, viewer)


def _opened(viewer: Viewer, call_id: str) -> CallDetail:
    """The call, opened (and audited) once per visit; reruns of the page reuse it."""
    key = f"opened:{call_id}"
    if key not in st.session_state:
        st.session_state[key] = open_call(state.storage(), viewer, call_id, now=state.now())
    detail: CallDetail = st.session_state[key]
    return detail


def _summary(detail: CallDetail, viewer: Viewer) -> None:
    call = detail.call
    deleted_on = call.started_at + timedelta(days=state.storage().settings.retention_days)
    cols = st.columns([2, 1, 1.2, 1, 1.4])  # the start's date and time need the width
    cols[0].metric("Started", state.local(call.started_at))
    cols[1].metric("Duration", state.clock(call.duration_s))
    cols[2].metric("Agent", call.agent_id or "-")
    cols[3].metric("Team", call.team or "-")
    cols[4].metric(
        "Deleted on", state.local(deleted_on, "%Y-%m-%d"), f"{detail.days_left} days left"
    )
    facts = [
        f"queue {call.queue or '-'}",
        f"{call.direction or '-'}",
        f"{call.channels} channel(s)",
    ]
    if viewer.sees_personal_data and call.customer_number:
        facts.append(f"customer {call.customer_number}")
    if viewer.sees_personal_data and call.policy_number:
        facts.append(f"policy {call.policy_number}")
    st.caption(" · ".join(facts))
    if detail.transcript is not None and detail.transcript.metrics:
        metrics = detail.transcript.metrics
        talk, silence, overtalk, interruptions = st.columns(4)
        talk.metric("Talk ratio (agent)", _percent(metrics.get("talk_ratio")))
        silence.metric("Silence", state.clock(metrics.get("silence_s") or 0))
        overtalk.metric("Overtalk", f"{metrics.get('overtalk_s') or 0:.1f} s")
        interruptions.metric("Interruptions", metrics.get("interruptions") or 0)


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def _player(viewer: Viewer, call_id: str) -> None:
    """The player, fed by a short-lived presigned link (never a public bucket). It is re-keyed
    on every seek: ``st.audio`` only moves to ``start_time`` when it is a new element."""
    link = st.session_state.get(f"player:{call_id}")
    if link is None or link[1] <= state.now():
        st.button(
            "Listen", icon=":material/play_arrow:", on_click=_open_player, args=(viewer, call_id)
        )
        return
    seek_s, nonce = st.session_state.get(f"seek:{call_id}", (0.0, 0))
    with st.container(key=f"player-{nonce}"):
        st.audio(link[0], format="audio/mpeg", start_time=int(seek_s), autoplay=nonce > 0)


def _open_player(viewer: Viewer, call_id: str) -> None:
    """A fresh playback link (audited), before the rerun that draws the player in the button's
    place; it is renewed 30 s before it runs out."""
    url = playback_url(state.storage(), viewer, call_id, now=state.now(), expires_s=PLAYER_TTL_S)
    expires = state.now() + timedelta(seconds=PLAYER_TTL_S - 30)
    st.session_state[f"player:{call_id}"] = (url, expires)


@st.fragment
def _listen_and_read(detail: CallDetail, viewer: Viewer) -> None:
    """The player and the transcript, rerun on their own: a seek or a page of turns redraws
    this part only, not the summary, the time line and the forms."""
    if viewer.may_play_audio:
        _player(viewer, detail.call.id)
    _transcript(detail, viewer)


def _transcript(detail: CallDetail, viewer: Viewer) -> None:
    """The turns, a window of ``TURNS_SHOWN`` at a time (a 30-minute call has ~450; drawing
    them all as buttons costs the browser a second), or every turn that holds the words
    looked for."""
    call_id = detail.call.id
    st.subheader(
        "Transcript" + (" (personal data redacted)" if not viewer.sees_personal_data else "")
    )
    if not detail.segments:
        st.info("Not transcribed yet.")
        return
    find = st.text_input("Find in call", key=f"find:{call_id}").strip().lower()
    numbered = list(enumerate(detail.segments))
    if find:
        shown = [(n, s) for n, s in numbered if find in s.text.lower()][:TURNS_SHOWN]
        st.caption(f"{len(shown)} turns hold '{find}'")
        window_from = None  # a turn found by its words: the window follows it
    else:
        window_from = _window_start(call_id, detail.segments)  # a turn clicked: it stays
        shown = numbered[window_from : window_from + TURNS_SHOWN]
        _window_controls(call_id, window_from, len(numbered))
    playable = viewer.may_play_audio
    with st.container(height=420):
        for n, segment in shown:
            label = f"[{state.clock(segment.start_s)}] {segment.speaker}: {segment.text}"
            if playable:
                st.button(
                    label, key=f"turn-{n}", type="tertiary", on_click=_seek,
                    args=(call_id, segment.start_s), kwargs={"window_from": window_from},
                )  # fmt: skip
            else:
                st.markdown(label)


def _window_start(call_id: str, segments: list[SegmentView]) -> int:
    """The first turn shown: where the user paged to, else the window holding the moment the
    player was sent to (a search hit's link)."""
    paged = st.session_state.get(f"turns-from:{call_id}")
    if paged is not None:
        return int(paged)
    seek_s, _ = st.session_state.get(f"seek:{call_id}", (0.0, 0))
    started = sum(1 for segment in segments if segment.start_s <= seek_s)
    return max(0, started - 1) // TURNS_SHOWN * TURNS_SHOWN


def _window_controls(call_id: str, first: int, turns: int) -> None:
    if turns <= TURNS_SHOWN:
        return
    earlier, where, later = st.columns([1, 3, 1])
    earlier.button(
        "Earlier turns", disabled=first == 0, key=f"earlier:{call_id}",
        on_click=_show_from, args=(call_id, max(0, first - TURNS_SHOWN)),
    )  # fmt: skip
    where.caption(f"turns {first + 1} to {min(turns, first + TURNS_SHOWN)} of {turns}")
    later.button(
        "Later turns", disabled=first + TURNS_SHOWN >= turns, key=f"later:{call_id}",
        on_click=_show_from, args=(call_id, first + TURNS_SHOWN),
    )  # fmt: skip


def _show_from(call_id: str, first: int) -> None:
    st.session_state[f"turns-from:{call_id}"] = first


def _seek_from_link(call_id: str) -> None:
    """A search hit links to ``?call=ID&at=SECONDS``: start the player there, once."""
    at = st.query_params.get("at")
    if at and st.session_state.get(f"linked:{call_id}") != at:
        st.session_state[f"linked:{call_id}"] = at
        _seek(call_id, float(at) if at.replace(".", "", 1).isdigit() else 0.0)


def _seek(call_id: str, start_s: float, *, window_from: int | None = None) -> None:
    """Start the player at a turn; a new nonce re-keys it even for the same spot twice. The
    exact start is kept (the player gets whole seconds) so the turn window can find the turn;
    ``window_from`` pins the window, None lets it follow the player."""
    _, nonce = st.session_state.get(f"seek:{call_id}", (0.0, 0))
    st.session_state[f"seek:{call_id}"] = (start_s, nonce + 1)
    st.session_state[f"turns-from:{call_id}"] = window_from


def _coaching(detail: CallDetail, viewer: Viewer) -> None:
    from storage.annotations import SCORECARD, add_note, add_score, notes_of, scores_of

    storage, call = state.storage(), detail.call
    st.subheader("Coaching")
    try:
        notes, scores = notes_of(storage, viewer, call.id), scores_of(storage, viewer, call.id)
    except CallrecError as error:
        st.caption(str(error))
        return
    for note in notes:
        st.markdown(f"**{state.clock(note.at_s)}** {note.author}: {note.text}")
    for score in scores:
        total = sum(score.scorecard.values())
        st.markdown(f"Scorecard by {score.author}: {total}/{5 * len(score.scorecard)}")
    if viewer.role is not Role.TEAM_LEAD:
        return
    seek, _ = st.session_state.get(f"seek:{call.id}", (0, 0))
    with st.form(f"note:{call.id}", clear_on_submit=True):
        at = st.number_input("At second", 0, int(call.duration_s), value=seek)
        text = st.text_area("Note")
        if st.form_submit_button("Add note"):
            _attempt(
                lambda: add_note(storage, viewer, call.id, at_s=at, text=text, now=state.now())
            )
    with st.form(f"score:{call.id}"):
        marks = {c: st.slider(label, 1, 5, 3, key=f"{call.id}:{c}") for c, label in SCORECARD}
        comment = st.text_input("Comment")
        if st.form_submit_button("Save scorecard"):
            _attempt(
                lambda: add_score(
                    storage, viewer, call.id, scorecard=marks, comment=comment or None,
                    now=state.now(),
                )
            )  # fmt: skip


def _dispute(detail: CallDetail, viewer: Viewer) -> None:
    from storage.calls import export_call
    from storage.holds import active_hold, place_hold, release_hold

    storage, call = state.storage(), detail.call
    st.subheader("Dispute")
    held = active_hold(storage, viewer, call.id)
    if held is not None:
        st.warning(
            f"On hold since {state.local(held.created_at)} by {held.created_by}: {held.reason} "
            f"(review {state.local(held.review_at, '%Y-%m-%d')})"
        )
    left, right = st.columns(2)
    with left.form(f"hold:{call.id}", clear_on_submit=True):
        reason = st.text_input("Reason (a ticket number, no names)")
        if held is None:
            zone = storage.settings.zone
            review = st.date_input("Review on", value=state.now().date() + timedelta(days=30))
            if st.form_submit_button("Put on hold"):
                review_at = datetime.combine(review, time(9), zone)
                _attempt(lambda: place_hold(
                    storage, call.id, reason=reason, review_at=review_at, viewer=viewer,
                    now=state.now(),
                ))  # fmt: skip
        elif st.form_submit_button("Release hold"):
            _attempt(lambda: release_hold(
                storage, call.id, reason=reason, viewer=viewer, now=state.now()
            ))  # fmt: skip
    with right.form(f"export:{call.id}"):
        why = st.text_input("Export reason")
        if st.form_submit_button("Export"):
            result = _attempt(
                lambda: export_call(storage, viewer, call.id, reason=why, now=state.now()),
                rerun=False,
            )
            if result is not None:
                st.success(f"Export ready until {state.local(result.expires_at)}")
                st.link_button("Download", result.url)


def _attempt(action: Callable[[], T], *, rerun: bool = True) -> T | None:
    """Run a change; a refusal is one line on the page, not a traceback."""
    try:
        result = action()
    except CallrecError as error:
        st.error(str(error))
        return None
    if rerun:
        st.session_state.pop(f"opened:{st.query_params.get('call', '')}", None)
        st.rerun()
    return result
