"""Coaching: team leads' notes at moments of a call, and their scorecards of it. Both are call
data and go with the call by cascade.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _call_id(table: str) -> list[sa.schema.SchemaItem]:
    """The column and foreign key every row of a call has: erased with the call."""
    return [
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f(f"fk_{table}_call_id_calls"), ondelete="CASCADE"
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "notes",
        sa.Column("id", sa.Integer(), nullable=False),
        *_call_id("notes"),
        sa.Column("at_s", sa.Float(), nullable=False),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notes")),
    )
    op.create_index(op.f("ix_notes_call_id"), "notes", ["call_id"])
    op.create_table(
        "scores",
        sa.Column("id", sa.Integer(), nullable=False),
        *_call_id("scores"),
        sa.Column("author", sa.String(length=64), nullable=False),
        sa.Column(
            "scorecard", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scores")),
    )
    op.create_index(op.f("ix_scores_call_id"), "scores", ["call_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_scores_call_id"), table_name="scores")
    op.drop_table("scores")
    op.drop_index(op.f("ix_notes_call_id"), table_name="notes")
    op.drop_table("notes")
