"""What every page of the app shares: the stores, the clock, and who is signed in.

The signed-in :class:`~storage.access.Viewer` lives in the session only; every read goes through
a storage function that takes it and applies the role rules itself, so what a page shows can
never be more than what that function returns.
"""

from __future__ import annotations

import atexit
import contextlib
from datetime import UTC, datetime
from urllib.parse import urlsplit

import streamlit as st
from streamlit.navigation.page import StreamlitPage

from settings import load_settings
from storage.access import Viewer
from storage.connect import Storage, open_storage

VIEWER = "viewer"
REQUESTED = "requested-page"
USERNAME, PASSWORD, REFUSED = "sign-in:username", "sign-in:password", "sign-in:refused"
PAGES = "pages"  # the pages registered for this session's role, by url_path (set by app.py)


def register(pages: list[StreamlitPage]) -> None:
    st.session_state[PAGES] = {page.url_path: page for page in pages}


def pages() -> dict[str, StreamlitPage]:
    registered: dict[str, StreamlitPage] = st.session_state.get(PAGES, {})
    return registered


def go(name: str, **query: str) -> None:
    """Open page ``name`` (its url_path) with ``query`` in the URL, e.g. go("call", call=ID)."""
    st.switch_page(pages()[name], query_params=query)


def link(name: str, label: str, **query: str) -> None:
    """A link to page ``name`` with ``query``: navigates in the app, keeping the session."""
    st.page_link(pages()[name], label=label, query_params=query)


@st.cache_resource
def storage() -> Storage:
    """One connection per app process; released (and the embedded S3 server with it, if this
    was its last user) when the process exits."""
    stack = contextlib.ExitStack()
    opened = stack.enter_context(open_storage(load_settings()))
    atexit.register(stack.close)
    return opened


def now() -> datetime:
    return datetime.now(UTC)


def viewer() -> Viewer | None:
    found = st.session_state.get(VIEWER)
    return found if isinstance(found, Viewer) else None


def sign_in_pages(addresses: list[str]) -> list[StreamlitPage]:
    """The sign-in form at every page's address: a link to ``/call?call=ID`` keeps its path
    through sign-in, so the run that signs in already draws that page (no switch, no extra run
    and round trip). The bare address is a page of its own, so signing in there lands on the
    role's first page, as a role's page it may not use does."""
    return [
        st.Page(sign_in_form, title="Sign in", url_path="sign-in", default=True),
        *(st.Page(sign_in_form, title="Sign in", url_path=address) for address in addresses),
    ]


def sign_in_form() -> None:
    """The only thing a visitor who is not signed in can see."""
    st.title("callrec")
    with st.form("sign-in"):
        st.text_input("Username", key=USERNAME)
        st.text_input("Password", type="password", key=PASSWORD)
        st.form_submit_button("Sign in", on_click=_sign_in)
    if st.session_state.get(REFUSED):
        st.error("Wrong username or password, or the account is disabled.")


def _sign_in() -> None:
    """Check the form before the run it starts, so that run already draws the app: signing in
    costs one script run, not a refusal-free run and then a rerun. The password is not kept."""
    from storage.users import authenticate

    password = st.session_state.pop(PASSWORD, "")
    signed_in = authenticate(storage().catalogue, st.session_state[USERNAME], password, now=now())
    st.session_state[REFUSED] = signed_in is None
    if signed_in is not None:
        st.session_state[VIEWER] = signed_in


def remember_requested_page() -> None:
    """Keep the page and query a visitor asked for (a colleague's link to a call, say): before
    sign-in no page is registered, so Streamlit drops the path from the URL."""
    if REQUESTED not in st.session_state:
        path = urlsplit(st.context.url or "").path.strip("/").rsplit("/", 1)[-1]
        st.session_state[REQUESTED] = (path, dict(st.query_params))


def open_requested_page(selected: StreamlitPage) -> None:
    """After sign-in, go where the visitor asked to; a page their role does not have shows
    that it is not available, and nothing of it."""
    requested = st.session_state.pop(REQUESTED, None)
    if not requested or not requested[0] or requested[0] == selected.url_path:
        return
    path, query = requested
    if path in pages():
        st.switch_page(pages()[path], query_params=query)
    st.warning(f"The page '{path}' is not available to your role.")


def sign_out() -> None:
    st.session_state.clear()
    st.rerun()


def customer_number(text: str) -> str | None:
    """A typed customer number in E.164 (as calls are stored), or None when left empty."""
    if not text.strip():
        return None
    from storage.subject_requests import customer_number as e164

    return e164(text, storage().settings)


def local(instant: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An instant in the installation's zone, as people there read it."""
    return instant.astimezone(storage().settings.zone).strftime(fmt)


def clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes:02d}:{rest:02d}"
