"""A picture of a call: who spoke when, where both talked at once, where nobody did.

Built from the transcript's turns (speaker, start, end), so it matches what the page lists;
overtalk is where an agent turn and a customer turn overlap, silence where no turn is running.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy  # noqa: F401  (see below)
import pandas  # noqa: F401
import streamlit as st

from storage.calls import CallDetail

# numpy and pandas are imported here, at the app's first run, on purpose: Streamlit's charts
# import them lazily, and two reruns of a session drawing charts at once (a click during a
# render) then import them concurrently, one of them getting a half-initialised module.

LANES = ["agent", "customer", "unknown", "overtalk", "silence"]
COLOURS = ["#1f77b4", "#ff7f0e", "#7f7f7f", "#d62728", "#d9d9d9"]


@dataclass(frozen=True)
class Stretch:
    lane: str
    start_s: float
    end_s: float


def stretches(turns: list[tuple[str, float, float]], duration_s: float) -> list[Stretch]:
    """Turns as lanes, plus the overtalk and the silence between them."""
    out = [Stretch(speaker, start, end) for speaker, start, end in turns]
    agent = [(s, e) for who, s, e in turns if who == "agent"]
    customer = [(s, e) for who, s, e in turns if who == "customer"]
    for a_start, a_end in agent:
        for c_start, c_end in customer:
            start, end = max(a_start, c_start), min(a_end, c_end)
            if end > start:
                out.append(Stretch("overtalk", start, end))
    cursor = 0.0
    for _, start, end in sorted(turns, key=lambda t: t[1]):
        if start > cursor:
            out.append(Stretch("silence", cursor, start))
        cursor = max(cursor, end)
    if duration_s > cursor:
        out.append(Stretch("silence", cursor, duration_s))
    return out


def timeline_chart(detail: CallDetail) -> None:
    turns = [(s.speaker, s.start_s, s.end_s) for s in detail.segments]
    if not turns:
        return
    rows = [
        {"lane": s.lane, "start": round(s.start_s, 2), "end": round(s.end_s, 2)}
        for s in stretches(turns, detail.call.duration_s)
    ]
    st.vega_lite_chart(rows, chart_spec(), width="stretch")


def chart_spec() -> dict[str, Any]:
    """The time line's Vega-Lite spec, a fresh dict each time (Streamlit edits what it gets).

    Written out rather than built with altair: altair validates a chart against the whole
    Vega-Lite JSON schema, data rows included, which took 0.3 to 0.7 s of every call page of a
    30-minute call (cProfile of the page's script run, bench/review_app.py's call)."""
    return {
        "mark": {"type": "bar"},
        "encoding": {
            "x": {"field": "start", "type": "quantitative", "title": "seconds"},
            "x2": {"field": "end"},
            "y": {
                "field": "lane", "type": "nominal", "sort": LANES, "title": None,
                "axis": {"labelOverlap": False},  # Vega hid every other lane's name
            },
            "color": {
                "field": "lane", "type": "nominal", "legend": None,
                "scale": {"domain": LANES, "range": COLOURS},
            },
        },
        "height": 140,
    }  # fmt: skip
