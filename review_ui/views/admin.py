"""The admin and privacy officer's pages: users, the audit trail, retention, quarantine and
failed jobs. Each checks the role itself as well (``require_role``), not only the menu."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import streamlit as st
from sqlmodel import col, select

from errors import CallrecError
from review_ui import state
from storage.access import Role, Viewer, require_role
from storage.catalogue import AuditEvent


def _admin() -> Viewer:
    viewer = state.viewer()
    assert viewer is not None
    require_role(viewer, Role.ADMIN, what="the admin pages")
    return viewer


def users() -> None:
    from storage.users import add_user, disable_user, list_users, set_password

    viewer = _admin()
    catalogue = state.storage().catalogue
    st.header("Users")
    st.dataframe(
        [
            {
                "user": u.username, "role": u.role, "teams": ", ".join(u.teams),
                "disabled": u.disabled, "created": state.local(u.created_at),
            }
            for u in list_users(catalogue)
        ],
        hide_index=True,
    )  # fmt: skip
    with st.form("add-user", clear_on_submit=True):
        st.subheader("Add a user")
        username = st.text_input("Username")
        role = st.selectbox("Role", [r.value for r in Role])
        teams = st.text_input("Teams (team leads; comma-separated)")
        if st.form_submit_button("Add"):
            try:
                _, password = add_user(
                    catalogue, username, role=Role(role),
                    teams=[t.strip() for t in teams.split(",") if t.strip()],
                    actor=viewer.name, now=state.now(),
                )  # fmt: skip
            except CallrecError as error:
                st.error(str(error))
            else:
                st.success(f"{username} added; their password (shown once): {password}")
    with st.form("manage-user"):
        st.subheader("Disable or reset")
        username = st.text_input("Username", key="manage-username")
        left, right = st.columns(2)
        disable = left.form_submit_button("Disable")
        reset = right.form_submit_button("New password")
        try:
            if disable:
                disable_user(catalogue, username, actor=viewer.name, now=state.now())
                st.success(f"{username} disabled")
            if reset:
                password = set_password(catalogue, username, actor=viewer.name, now=state.now())
                st.success(f"new password for {username} (shown once): {password}")
        except CallrecError as error:
            st.error(str(error))


def audit() -> None:
    _admin()
    storage = state.storage()
    zone = storage.settings.zone
    st.header("Audit trail")
    left, middle, right = st.columns(3)
    actor = left.text_input("Who")
    action = middle.text_input("What (e.g. view, playback, search, purge, hold)")
    call_id = right.text_input("Call")
    today = state.now().astimezone(zone).date()
    period = left.date_input("Between", value=(today - timedelta(days=30), today))
    query = select(AuditEvent)
    for column, value in ((AuditEvent.actor, actor), (AuditEvent.action, action),
                          (AuditEvent.call_id, call_id)):  # fmt: skip
        if value.strip():
            query = query.where(column == value.strip())
    if isinstance(period, tuple) and len(period) == 2:
        query = query.where(
            col(AuditEvent.at) >= datetime.combine(period[0], time(), zone),
            col(AuditEvent.at) < datetime.combine(period[1] + timedelta(days=1), time(), zone),
        )
    with storage.catalogue.session() as session:
        rows = session.exec(query.order_by(col(AuditEvent.id).desc()).limit(1000)).all()
    st.dataframe(
        [
            {
                "when": state.local(e.at, "%Y-%m-%d %H:%M:%S"), "who": e.actor,
                "what": e.action, "call": e.call_id, "details": e.details,
            }
            for e in rows
        ],
        hide_index=True,
    )  # fmt: skip


def retention() -> None:
    from scheduler import last_runs
    from storage.holds import holds_due_for_review
    from storage.status import collect_status

    _admin()
    storage = state.storage()
    settings = storage.settings
    st.header("Retention")
    status = collect_status(storage, now=state.now()).to_dict()
    runs = last_runs(storage)
    purged, verified = runs.get("purge"), runs.get("verify")
    left, middle, right = st.columns(3)
    left.metric("Retention", f"{settings.retention_days} days")
    if purged is not None:
        next_purge = purged.started_at + timedelta(seconds=settings.purge_interval_s)
        middle.metric(
            "Last purge", state.local(purged.started_at), _outcome(purged.ok, purged.error)
        )
        right.metric("Next purge", state.local(next_purge))
    else:
        middle.metric("Last purge", "not yet")
    if verified is None or verified.ok is None:
        st.info("Verify has not run yet (the scheduler runs it daily).")
    elif verified.result.get("ok"):
        st.success(
            f"Verify: all buckets and the catalogue agree ({state.local(verified.started_at)})"
        )
    else:
        st.error(
            f"Verify found problems ({state.local(verified.started_at)}): run `callrec verify`"
        )
        st.json(verified.result, expanded=False)
    st.metric("Oldest call", f"{status['oldest_call_age_days']} days")
    st.subheader("Holds due for review")
    due = holds_due_for_review(storage, state.now())
    st.dataframe(
        [
            {"call": h.call_id, "review": state.local(h.review_at), "by": h.created_by,
             "reason": h.reason}
            for h in due
        ],
        hide_index=True,
    )  # fmt: skip


def _outcome(ok: bool | None, error: str | None) -> str:
    return "running" if ok is None else "ok" if ok else f"FAILED: {error}"


def quarantine() -> None:
    from storage.status import collect_status
    from transcribe.jobs import retry

    _admin()
    storage = state.storage()
    st.header("Quarantine and failed jobs")
    status = collect_status(storage, now=state.now(), quarantine_limit=200).to_dict()
    st.subheader(f"Quarantine ({status['quarantine']})")
    st.dataframe(status["quarantine_recent"], hide_index=True)
    st.subheader("Failed transcription jobs")
    for job in status["failed_jobs"]:
        left, right = st.columns([5, 1])
        left.markdown(f"job {job['job']} · call `{job['call_id']}` · {job['attempts']} attempts  \n"
                      f"{job['error']}")  # fmt: skip
        if right.button("Retry", key=f"retry-{job['job']}"):
            retry(storage.catalogue, job_id=job["job"], all_failed=False, now=state.now())
            st.rerun()
    if not status["failed_jobs"]:
        st.caption("none")
