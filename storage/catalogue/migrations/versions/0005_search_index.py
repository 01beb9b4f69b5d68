"""Search: a segment-level full-text index, SQLite FTS5 or PostgreSQL ``dutch`` tsvectors.

The index is not described by the models (an FTS5 virtual table has no SQLAlchemy equivalent):
``storage.search.index`` reads and writes it, and keeps it in step with ``segments``.

- SQLite: ``segment_index``, an FTS5 table whose rowid is the segment id; its columns hold the
  Dutch stems of the full and the redacted text (stemmed in Python: SQLite has no Dutch
  stemmer). A trigger removes a segment's entry whenever the segment row goes (re-transcription,
  purge by cascade), so no code path can leave an entry behind.
- PostgreSQL: ``segment_index`` with ``to_tsvector('dutch', …)`` of the accent-folded texts,
  GIN-indexed, and foreign keys that cascade from the segment and the call.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_table(
            "segment_index",
            sa.Column("segment_id", sa.Integer(), nullable=False),
            sa.Column("call_id", sa.String(length=128), nullable=False),
            sa.Column("body", postgresql.TSVECTOR(), nullable=False),
            sa.Column("redacted", postgresql.TSVECTOR(), nullable=False),
            sa.ForeignKeyConstraint(
                ["segment_id"], ["segments.id"], name="fk_segment_index_segment_id_segments",
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["call_id"], ["calls.id"], name="fk_segment_index_call_id_calls",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("segment_id", name="pk_segment_index"),
        )  # fmt: skip
        op.create_index("ix_segment_index_call_id", "segment_index", ["call_id"])
        for column in ("body", "redacted"):
            op.create_index(
                f"ix_segment_index_{column}", "segment_index", [column], postgresql_using="gin"
            )
    else:
        op.execute(
            "CREATE VIRTUAL TABLE segment_index USING fts5("
            "body, redacted, tokenize = 'unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER segment_index_follows_segments AFTER DELETE ON segments "
            "BEGIN DELETE FROM segment_index WHERE rowid = old.id; END"
        )
    # Segments transcribed before the index existed get their entries now (the stemming lives
    # in Python, so the revision calls the index module, as it was when this revision was made).
    from storage.search.index import reindex_all

    reindex_all(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER segment_index_follows_segments")
    op.drop_table("segment_index")
