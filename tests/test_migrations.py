"""The migrations, on real SQLite and real PostgreSQL: they keep data, they are idempotent, they
are safe to race, and they make exactly the schema the models describe."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory

from storage.catalogue import (
    Call,
    CallState,
    Catalogue,
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    metadata,
    upgrade,
)
from storage.catalogue.types import JSONValue, UTCDateTime
from storage.search.index import FTS5_SHADOW_TABLES, INDEX_TABLE

STARTED = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
SCRIPTS = ScriptDirectory.from_config(alembic_config())
UPGRADES: list[Script] = [s for s in SCRIPTS.walk_revisions() if s.down_revision is not None]

# Rows that fit the schema *at* a revision, written before upgrading past it. A new revision
# needs an entry for the revision it revises; the test says so when it is missing.
SEED_ROWS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "0001": [
        (
            "calls",
            {
                "id": "call-1",
                "started_at": STARTED,
                "duration_s": 12.5,
                "channels": 2,
                "sample_rate": 8000,
                "codec": "pcm_s16le",
                "agent_id": "agent-7",
                "team": "claims",
                "customer_number": "+31201234567",
                "agent_channel": "left",
                "sha256": "ab" * 32,
                "original_key": "originals/call-1.wav",
                "extra": {"trunk": "T2"},
                "state": "transcribed",
                "created_at": STARTED,
            },
        ),
        (
            "jobs",
            {
                "call_id": "call-1",
                "kind": "transcribe",
                "state": "done",
                "attempts": 1,
                "created_at": STARTED,
                "updated_at": STARTED,
            },
        ),
        (
            "users",
            {
                "username": "lead",
                "role": "team_lead",
                "teams": ["claims"],
                "password_hash": "x",
                "disabled": False,
                "created_at": STARTED,
            },
        ),
        (
            "audit_events",
            {
                "at": STARTED,
                "actor": "lead",
                "action": "call.read",
                "call_id": "call-1",
                "details": {},
            },
        ),
        (
            "tombstones",
            {
                "call_id": "old-1",
                "call_date": date(2025, 6, 1),
                "deleted_at": STARTED,
                "reason": "retention",
            },
        ),
        (
            "holds",
            {
                "call_id": "call-1",
                "reason": "dispute",
                "review_at": STARTED,
                "created_by": "handler",
                "created_at": STARTED,
            },
        ),
        (
            "checkpoints",
            {"name": "ingest.incoming", "value": "2026/01/02/x.wav", "updated_at": STARTED},
        ),
        (
            "quarantine_items",
            {
                "object_key": "q/1",
                "source_key": "in/1.wav",
                "reason": "bad audio",
                "received_at": STARTED,
            },
        ),
    ],
}


SEED_ROWS["0002"] = [
    *SEED_ROWS["0001"],
    (
        "segments",
        {
            "call_id": "call-1",
            "speaker": "agent",
            "start_s": 1.5,
            "end_s": 3.0,
            "text": "goedemorgen",
            "redacted_text": "goedemorgen",
            "confidence": 0.9,
            "words": [],
            "model": "whisper-base",
        },
    ),
]


SEED_ROWS["0003"] = [
    *SEED_ROWS["0002"],
    (
        "transcripts",
        {
            "call_id": "call-1",
            "model": "whisper-base",
            "options": {},
            "layout": "stereo",
            "language": "nl",
            "expected_language": "nl",
            "language_mismatch": False,
            "language_probability": 1.0,
            "metrics": {"talk_s": {"agent": 6.0}},
            "created_at": STARTED,
        },
    ),
]


SEED_ROWS["0004"] = [
    *SEED_ROWS["0003"],
    (
        "segments",
        {
            "call_id": "call-1",
            "speaker": "customer",
            "start_s": 3.5,
            "end_s": 5.0,
            "text": "de afspraken over de werkdagen",
            "redacted_text": "de afspraken over de werkdagen",
            "confidence": 0.8,
            "words": [],
            "model": "whisper-base",
        },
    ),
]


# 0005 added only the search index (filled from segments by code): the rows of 0004 fit it.
SEED_ROWS["0005"] = [*SEED_ROWS["0004"]]


def _bind(key: str, value: Any) -> sa.BindParameter[Any]:
    if isinstance(value, datetime):
        return sa.bindparam(key, value, type_=UTCDateTime())
    if isinstance(value, dict | list):
        return sa.bindparam(key, value, type_=JSONValue)
    return sa.bindparam(key, value)


def _insert(connection: sa.Connection, table: str, values: dict[str, Any]) -> None:
    columns = ", ".join(values)
    placeholders = ", ".join(f":{key}" for key in values)
    statement = sa.text(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})")
    connection.execute(statement.bindparams(*(_bind(k, v) for k, v in values.items())))


@contextmanager
def _connect(url: str) -> Iterator[sa.Connection]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


# The search index is made by raw SQL (an FTS5 virtual table has no model): not in the metadata.
SEARCH_INDEX = {INDEX_TABLE, *FTS5_SHADOW_TABLES}


def _tables(url: str) -> set[str]:
    with _connect(url) as connection:
        return set(sa.inspect(connection).get_table_names()) - {"alembic_version"} - SEARCH_INDEX


def test_the_migrations_form_one_numbered_line_of_revisions() -> None:
    revisions = [s.revision for s in reversed(list(SCRIPTS.walk_revisions()))]
    assert revisions == [f"{n:04d}" for n in range(1, len(revisions) + 1)]
    assert SCRIPTS.get_heads() == [revisions[-1]] == [head_revision()]


@pytest.mark.parametrize("script", UPGRADES, ids=[s.revision for s in UPGRADES])
def test_upgrading_past_a_revision_keeps_existing_rows_and_adds_its_tables(
    catalogue_url: str, script: Script
) -> None:
    previous = str(script.down_revision)
    assert previous in SEED_ROWS, f"add SEED_ROWS[{previous!r}]: rows that fit schema {previous}"
    upgrade(catalogue_url, previous)
    tables_before = _tables(catalogue_url)
    with _connect(catalogue_url) as connection:
        for table, values in SEED_ROWS[previous]:
            _insert(connection, table, values)
        connection.commit()

    upgrade(catalogue_url)

    assert current_revision(catalogue_url) == head_revision()
    assert _tables(catalogue_url) == tables_before | set(metadata.tables)
    expected: dict[str, int] = {}
    for table, _ in SEED_ROWS[previous]:
        expected[table] = expected.get(table, 0) + 1
    with _connect(catalogue_url) as connection:
        for table, count in expected.items():
            found = connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
            assert found == count, table
    with Catalogue.open(catalogue_url) as catalogue, catalogue.session() as session:
        call = session.get_one(Call, "call-1")
        assert (call.started_at, call.state, call.extra) == (
            STARTED,
            CallState.TRANSCRIBED,
            {"trunk": "T2"},
        )


def test_upgrading_a_database_already_at_head_changes_nothing(catalogue_url: str) -> None:
    upgrade(catalogue_url)
    with _connect(catalogue_url) as connection:
        _insert(connection, *SEED_ROWS["0001"][0])
        connection.commit()
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        upgrade(catalogue_url)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)

    changes = [
        s
        for s in statements
        if s.lstrip().split(None, 1)[0].upper()
        in {"CREATE", "ALTER", "DROP", "INSERT", "UPDATE", "DELETE"}
    ]
    assert changes == []
    assert current_revision(catalogue_url) == head_revision()
    with _connect(catalogue_url) as connection:
        assert connection.execute(sa.text("SELECT count(*) FROM calls")).scalar_one() == 1


def test_the_models_match_the_migrated_schema(catalogue_url: str) -> None:
    upgrade(catalogue_url)
    with _connect(catalogue_url) as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "include_name": lambda name, kind, _: (
                    not (kind == "table" and name in SEARCH_INDEX)
                ),
            },
        )
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_downgrading_to_base_empties_the_database_and_upgrading_rebuilds_it(
    catalogue_url: str,
) -> None:
    upgrade(catalogue_url)
    downgrade(catalogue_url, "base")
    assert _tables(catalogue_url) == set()
    assert current_revision(catalogue_url) is None

    upgrade(catalogue_url)
    assert _tables(catalogue_url) == set(metadata.tables)


def test_processes_opening_a_fresh_catalogue_at_once_all_succeed(catalogue_url: str) -> None:
    opened: list[str | None] = []
    failures: list[BaseException] = []
    start = threading.Barrier(4)

    def open_catalogue() -> None:
        try:
            start.wait()
            with Catalogue.open(catalogue_url) as catalogue, catalogue.engine.connect() as c:
                opened.append(MigrationContext.configure(c).get_current_revision())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_catalogue) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert opened == [head_revision()] * 4
