"""Foundation: calls, jobs, users, audit trail, tombstones, holds, quarantine, checkpoints.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("sample_rate", sa.Integer(), nullable=False),
        sa.Column("codec", sa.String(length=32), nullable=False),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("team", sa.String(length=64), nullable=True),
        sa.Column("queue", sa.String(length=64), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("customer_number", sa.String(length=32), nullable=True),
        sa.Column("customer_id", sa.String(length=64), nullable=True),
        sa.Column("policy_number", sa.String(length=64), nullable=True),
        sa.Column("agent_channel", sa.String(length=32), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("original_key", sa.String(), nullable=False),
        sa.Column("rendition_key", sa.String(), nullable=True),
        sa.Column("extra", _json(), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calls")),
    )
    for column in (
        "agent_id",
        "customer_id",
        "customer_number",
        "policy_number",
        "started_at",
        "state",
        "team",
    ):
        op.create_index(op.f(f"ix_calls_{column}"), "calls", [column])

    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", _utc(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_jobs_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_call_id"), "jobs", ["call_id"])
    op.create_index("ix_jobs_state_lease_expires_at", "jobs", ["state", "lease_expires_at"])

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("teams", _json(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_index(op.f("ix_users_username"), "users", ["username"], unique=True)

    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", _utc(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=True),
        sa.Column("details", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    for column in ("action", "actor", "at", "call_id"):
        op.create_index(op.f(f"ix_audit_events_{column}"), "audit_events", [column])

    op.create_table(
        "tombstones",
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("call_date", sa.Date(), nullable=False),
        sa.Column("deleted_at", _utc(), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_tombstones")),
    )

    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("review_at", _utc(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("released_at", _utc(), nullable=True),
        sa.Column("released_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_holds_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    op.create_index(op.f("ix_holds_call_id"), "holds", ["call_id"])

    op.create_table(
        "quarantine_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("object_key", sa.String(), nullable=False),
        sa.Column("source_key", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("received_at", _utc(), nullable=False),
        sa.Column("started_at", _utc(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quarantine_items")),
    )
    op.create_index(
        op.f("ix_quarantine_items_object_key"), "quarantine_items", ["object_key"], unique=True
    )
    for column in ("received_at", "started_at"):
        op.create_index(op.f(f"ix_quarantine_items_{column}"), "quarantine_items", [column])

    op.create_table(
        "checkpoints",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_checkpoints")),
    )


def downgrade() -> None:
    # Dropping a table drops its indexes too.
    for table in (
        "checkpoints",
        "quarantine_items",
        "holds",
        "tombstones",
        "audit_events",
        "users",
        "jobs",
        "calls",
    ):
        op.drop_table(table)
