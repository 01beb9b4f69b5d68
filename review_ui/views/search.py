"""Search: the transcript search of ``storage.search`` as the signed-in role may use it; a hit
opens the call with the player at the hit's moment."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import streamlit as st

from errors import CallrecError
from review_ui import state
from storage.search.service import Filters, search

PAGE = 25


def render() -> None:
    viewer = state.viewer()
    assert viewer is not None
    st.header("Search")
    st.caption('Words, "exact phrases", prefix*, OR, -exclusions; Dutch stems, any case or accent.')
    text = st.text_input("Query", key="query")
    zone = state.storage().settings.zone
    with st.expander("Filters"):
        left, middle, right = st.columns(3)
        period = left.date_input("Started between", value=[])
        speaker = middle.selectbox("Said by", ["", "agent", "customer"])
        team = right.text_input("Team", key="search-team")
        agent = left.text_input("Agent", key="search-agent")
        direction = middle.selectbox("Direction", ["", "inbound", "outbound"], key="search-dir")
        queue = right.text_input("Queue", key="search-queue")
        customer = left.text_input("Customer number") if viewer.sees_personal_data else ""
    if not text.strip():
        return
    since = until = None
    if isinstance(period, tuple) and len(period) == 2:
        since = datetime.combine(period[0], time(), zone)
        until = datetime.combine(period[1] + timedelta(days=1), time(), zone)
    page = st.session_state.get("search-page", 0)
    try:
        filters = Filters(
            since=since, until=until, agent=agent or None, team=team or None,
            queue=queue or None, direction=direction or None, speaker=speaker or None,
            customer_number=state.customer_number(customer),
        )  # fmt: skip
        result = search(
            state.storage(), text, viewer=viewer, filters=filters, limit=PAGE,
            offset=page * PAGE, now=state.now(),
        )  # fmt: skip
    except CallrecError as error:
        st.error(str(error))
        return
    shown = "redacted text" if result.redacted else "full text"
    st.caption(f"{result.query} · {shown} · newest first")
    if not result.hits:
        st.info("No hits.")
    for hit in result.hits:
        left, right = st.columns([5, 1])
        left.markdown(
            f"`{state.local(hit.started_at)}` **{hit.speaker}** at {state.clock(hit.start_s)} "
            f"· agent {hit.agent_id or '-'} · team {hit.team or '-'}  \n{hit.snippet}"
        )
        with right:
            state.link("call", "Open", call=hit.call_id, at=str(int(hit.start_s)))
    previous, following = st.columns(2)
    if page > 0 and previous.button("Previous"):
        st.session_state["search-page"] = page - 1
        st.rerun()
    if result.more and following.button("Next"):
        st.session_state["search-page"] = page + 1
        st.rerun()
