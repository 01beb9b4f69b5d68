"""The review app's entry page. Today it shows the installation's status; the calls, search,
disputes, analytics and admin pages join it as the pipeline grows."""

from __future__ import annotations

import atexit
import contextlib
from datetime import UTC, datetime

import streamlit as st

from settings import load_settings
from storage.connect import Storage, open_storage
from storage.status import collect_status


@st.cache_resource
def _storage() -> Storage:
    """One connection per app process; released (and the embedded S3 server with it, if this
    was its last user) when the process exits."""
    stack = contextlib.ExitStack()
    storage = stack.enter_context(open_storage(load_settings()))
    atexit.register(stack.close)
    return storage


st.set_page_config(page_title="callrec", layout="wide")
st.title("callrec")
status = collect_status(_storage(), now=datetime.now(UTC)).to_dict()
st.subheader("Calls by state")
st.table({state: [count] for state, count in status["calls"]["by_state"].items()})
st.subheader("Transcription jobs by state")
st.table({state: [count] for state, count in status["jobs"]["by_state"].items()})
st.metric("Quarantined recordings", status["quarantine"])
st.metric("Calls on hold", status["holds"])
