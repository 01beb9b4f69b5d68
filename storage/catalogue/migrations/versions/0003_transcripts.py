"""Transcripts: model, options, layout, language and call metrics per call.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "transcripts",
        sa.Column("call_id", sa.String(length=128), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("options", _json(), nullable=False),
        sa.Column("layout", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("expected_language", sa.String(length=8), nullable=False),
        sa.Column("language_mismatch", sa.Boolean(), nullable=False),
        sa.Column("language_probability", sa.Float(), nullable=False),
        sa.Column("metrics", _json(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["call_id"], ["calls.id"], name=op.f("fk_transcripts_call_id_calls"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_transcripts")),
    )


def downgrade() -> None:
    op.drop_table("transcripts")
