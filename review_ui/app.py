"""The review app's entry point: sign-in, then the pages the signed-in role may use.

A page a role may not use is not registered at all, so typing its URL shows nothing of it
(Streamlit falls back to the role's first page); and the storage functions behind every page
check the role again, so a registration mistake cannot leak data either. Before sign-in every
address shows the sign-in form (``state.sign_in_pages``), so a link keeps its page through it.
"""

from __future__ import annotations

import streamlit as st

from review_ui import state
from review_ui.views import admin, analytics, call, calls, search
from storage.access import Role

st.set_page_config(page_title="callrec", layout="wide")

CALLS = st.Page(calls.render, title="Calls", url_path="calls", icon=":material/call:")
CALL = st.Page(call.render, title="Call", url_path="call", visibility="hidden")
SEARCH = st.Page(search.render, title="Search", url_path="search", icon=":material/search:")
ANALYTICS = st.Page(
    analytics.render, title="Analytics", url_path="analytics", icon=":material/monitoring:"
)
ADMIN = [
    st.Page(admin.users, title="Users", url_path="users", icon=":material/group:"),
    st.Page(admin.audit, title="Audit trail", url_path="audit", icon=":material/policy:"),
    st.Page(admin.retention, title="Retention", url_path="retention", icon=":material/delete:"),
    st.Page(admin.quarantine, title="Quarantine and jobs", url_path="quarantine"),
]
PAGES = {
    Role.TEAM_LEAD: [CALLS, CALL, SEARCH, ANALYTICS],
    Role.COMPLAINT_HANDLER: [CALLS, CALL, SEARCH],
    Role.ANALYST: [SEARCH, ANALYTICS, CALLS, CALL],
    Role.ADMIN: [CALLS, CALL, SEARCH, ANALYTICS, *ADMIN],
}

viewer = state.viewer()
if viewer is None:
    state.remember_requested_page()
    addresses = list(dict.fromkeys(page.url_path for pages in PAGES.values() for page in pages))
    st.navigation(state.sign_in_pages(addresses), position="hidden").run()
    st.stop()

state.register(PAGES[viewer.role])
with st.sidebar:
    teams = f" ({', '.join(viewer.teams)})" if viewer.teams else ""
    st.caption(f"Signed in as **{viewer.name}**, {viewer.role.replace('_', ' ')}{teams}")
    if st.button("Sign out"):
        state.sign_out()
selected = st.navigation(PAGES[viewer.role])
state.open_requested_page(selected)
selected.run()
