"""The segment index: one full-text entry per transcript segment, in step with ``segments``.

Two backends behind these functions (the table is made by migration 0005):

- SQLite: an FTS5 table ``segment_index`` whose rowid is the segment id and whose columns hold
  the Dutch stems of the full text (``body``) and the redacted text (``redacted``), stemmed here
  with :func:`index_text` because SQLite has no Dutch stemmer. A trigger deletes a segment's
  entry when the segment row goes, so a re-transcription or a purge (by cascade) cannot leave
  one behind.
- PostgreSQL: a table ``segment_index`` of ``to_tsvector('dutch', …)`` over the accent-folded
  words (:func:`tsvector_text`), GIN-indexed, cascading from the segment and the call.

Entries are written in the transaction that stores the segments, so a reader never finds a
segment without its entry or the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from storage.search.text import index_text, tsvector_text

INDEX_TABLE = "segment_index"
# The tables SQLite's FTS5 keeps behind the virtual table (its own storage of the entries).
FTS5_SHADOW_TABLES = tuple(
    f"{INDEX_TABLE}_{part}" for part in ("data", "idx", "content", "docsize", "config")
)


def index_call(connection: sa.Connection, call_id: str) -> int:
    """(Re)write the index entries of one call's segments; returns how many were written."""
    rows = connection.execute(
        sa.text("SELECT id, text, redacted_text FROM segments WHERE call_id = :call"),
        {"call": call_id},
    ).all()
    return _write(connection, [(row.id, call_id, row.text, row.redacted_text) for row in rows])


def reindex_all(connection: sa.Connection, *, batch: int = 5000) -> int:
    """Rebuild the entries of every segment (after the migration that adds the index, or to
    repair it); returns how many were written."""
    written = 0
    last_id = 0
    while True:
        rows = connection.execute(
            sa.text(
                "SELECT id, call_id, text, redacted_text FROM segments WHERE id > :after "
                "ORDER BY id LIMIT :batch"
            ),
            {"after": last_id, "batch": batch},
        ).all()
        if not rows:
            return written
        written += _write(connection, [(r.id, r.call_id, r.text, r.redacted_text) for r in rows])
        last_id = rows[-1].id


def _write(connection: sa.Connection, segments: Iterable[tuple[int, str, str, str]]) -> int:
    segments = list(segments)
    if not segments:
        return 0
    ids = [segment_id for segment_id, *_ in segments]
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text(f"DELETE FROM {INDEX_TABLE} WHERE segment_id = ANY(:ids)"), {"ids": ids}
        )
        connection.execute(
            sa.text(
                f"INSERT INTO {INDEX_TABLE} (segment_id, call_id, body, redacted) VALUES "
                "(:id, :call, to_tsvector('dutch', :body), to_tsvector('dutch', :redacted))"
            ),
            [
                {"id": i, "call": c, "body": tsvector_text(t), "redacted": tsvector_text(r)}
                for i, c, t, r in segments
            ],
        )
    else:
        connection.execute(
            sa.text(f"DELETE FROM {INDEX_TABLE} WHERE rowid IN ({','.join(map(str, ids))})")
        )
        connection.execute(
            sa.text(
                f"INSERT INTO {INDEX_TABLE} (rowid, body, redacted) VALUES (:id, :body, :redacted)"
            ),
            [
                {"id": i, "body": index_text(t), "redacted": index_text(r)}
                for i, _, t, r in segments
            ],
        )
    return len(segments)


def entries_of(connection: sa.Connection, call_id: str) -> int:
    """How many index entries a call has (for tests and verification)."""
    if connection.dialect.name == "postgresql":
        statement = f"SELECT count(*) FROM {INDEX_TABLE} WHERE call_id = :call"
    else:
        statement = (
            f"SELECT count(*) FROM {INDEX_TABLE} WHERE rowid IN "
            "(SELECT id FROM segments WHERE call_id = :call)"
        )
    return int(connection.execute(sa.text(statement), {"call": call_id}).scalar_one())
