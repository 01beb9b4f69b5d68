"""Analytics: a term's hits over time and coaching metrics per agent or team, with CSV."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, time, timedelta
from typing import Literal

import streamlit as st

from errors import CallrecError
from review_ui import state
from storage.search.analytics import StatsRow, TrendRow, call_stats, term_trend, write_csv
from storage.search.service import Filters


def render() -> None:
    viewer = state.viewer()
    assert viewer is not None
    storage = state.storage()
    zone = storage.settings.zone
    st.header("Analytics")
    today = state.now().astimezone(zone).date()
    left, right = st.columns(2)
    period = left.date_input("Calls started between", value=(today - timedelta(days=180), today))
    team = right.text_input("Team", key="analytics-team")
    since = until = None
    if isinstance(period, tuple) and len(period) == 2:
        since = datetime.combine(period[0], time(), zone)
        until = datetime.combine(period[1] + timedelta(days=1), time(), zone)
    filters = Filters(since=since, until=until, team=team or None)

    st.subheader("A term over time")
    term, per = st.columns([3, 1])
    text = term.text_input("Query", key="trend-query")
    bucket: Literal["day", "week"] = per.selectbox("Per", ["week", "day"])
    if text.strip():
        try:
            trend = term_trend(
                storage, text, viewer=viewer, filters=filters, per=bucket, now=state.now()
            )
        except CallrecError as error:
            st.error(str(error))
        else:
            periods = [row.period.isoformat() for row in trend]
            st.bar_chart({"period": periods, "calls": [row.calls for row in trend]}, x="period")
            _download("trend.csv", trend, TrendRow)

    st.subheader("Coaching metrics")
    by: Literal["agent", "team"] = st.radio("Per", ["agent", "team"], horizontal=True)
    rows = call_stats(storage, viewer=viewer, filters=filters, by=by, now=state.now())
    st.dataframe([asdict(row) for row in rows], hide_index=True)
    _download(f"metrics-per-{by}.csv", rows, StatsRow)


def _download(
    name: str, rows: Sequence[TrendRow] | Sequence[StatsRow], of: type[TrendRow | StatsRow]
) -> None:
    buffer = io.StringIO()
    write_csv(rows, buffer, of=of)
    st.download_button(f"Download {name}", buffer.getvalue(), file_name=name, mime="text/csv")
