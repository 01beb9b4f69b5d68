"""Calls: a filterable table of the calls the signed-in role may see; a row opens the call."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import streamlit as st

from review_ui import state
from storage.calls import CallFilters, find_calls

STATES = ["", "ingested", "transcribing", "transcribed", "failed"]


def render() -> None:
    viewer = state.viewer()
    assert viewer is not None
    st.header("Calls")
    zone = state.storage().settings.zone
    today = state.now().astimezone(zone).date()
    with st.expander("Filters", expanded=True):
        left, middle, right = st.columns(3)
        period = left.date_input("Started between", value=(today - timedelta(days=180), today))
        agent = middle.text_input("Agent")
        team = right.text_input("Team")
        queue = left.text_input("Queue")
        direction = middle.selectbox("Direction", ["", "inbound", "outbound"])
        status = right.selectbox("Transcription", STATES)
        min_minutes, max_minutes = left.slider("Duration (minutes)", 0, 120, (0, 120))
        held = middle.selectbox("Hold", ["any", "on hold", "not on hold"])
        customer = right.text_input("Customer number") if viewer.sees_personal_data else ""
    since = until = None
    if isinstance(period, tuple) and len(period) == 2:
        since = datetime.combine(period[0], time(), zone)
        until = datetime.combine(period[1] + timedelta(days=1), time(), zone)
    filters = CallFilters(
        since=since, until=until, agent=agent or None, team=team or None, queue=queue or None,
        direction=direction or None, state=status or None,
        min_duration_s=min_minutes * 60 or None,
        max_duration_s=max_minutes * 60 if max_minutes < 120 else None,
        held={"any": None, "on hold": True, "not on hold": False}[held],
        customer_number=state.customer_number(customer),
    )  # fmt: skip
    rows = find_calls(state.storage(), viewer, filters, now=state.now())
    if not rows:
        st.info("No calls match.")
        return
    table = [
        {
            "call": row.call_id,
            "started": state.local(row.started_at),
            "duration": state.clock(row.duration_s),
            "agent": row.agent_id,
            "team": row.team,
            "queue": row.queue,
            "direction": row.direction,
            "transcription": row.state,
            "days left": row.days_left,
            "deleted on": row.deleted_on.isoformat(),
            "hold": "on hold" if row.held else "",
        }
        for row in rows
    ]
    chosen = st.dataframe(
        table, hide_index=True, on_select="rerun", selection_mode="single-row", key="calls"
    )
    picked = chosen.selection.rows if chosen else []
    if picked:
        state.go("call", call=str(table[picked[0]]["call"]))
