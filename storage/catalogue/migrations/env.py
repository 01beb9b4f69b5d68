"""Alembic environment for the catalogue, driven from Python rather than an ``alembic.ini``.

``storage.catalogue.migrate`` builds the :class:`alembic.config.Config` and passes, in
``config.attributes``, either ``"connection"`` (an open connection that already holds the
schema lock and the transaction; the normal path) or ``"url"``. A ``sqlalchemy.url`` main
option also works, for ad-hoc use. To write the next revision against a scratch database::

    from alembic import command
    from storage.catalogue import alembic_config
    command.revision(alembic_config(url="sqlite:////tmp/scratch.db"), "what changed",
                     autogenerate=True, rev_id="0003")

(upgrade the scratch database to head first; then review and tidy the generated file).
"""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, create_engine, pool
from sqlmodel.sql.sqltypes import AutoString

from storage.catalogue.models import metadata
from storage.catalogue.types import UTCDateTime

config = context.config


def _url() -> str:
    url = config.attributes.get("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database: pass config.attributes['connection'] or ['url']")
    return str(url)


def _render_item(kind: str, obj: Any, autogen: AutogenContext) -> str | Literal[False]:
    """Render callrec's column types as plain SQLAlchemy, so a revision never imports app code
    (a revision is a frozen record of the schema, the app's types may change later)."""
    if kind != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, sa.Enum) and not obj.native_enum:
        return f"sa.String(length={obj.length})"
    if isinstance(obj, sa.JSON) and "postgresql" in obj._variant_mapping:
        autogen.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    if isinstance(obj, AutoString):
        length = getattr(obj.impl, "length", None)
        return f"sa.String(length={length})" if length else "sa.String()"
    return False


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_item=_render_item,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=_url(),
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=_url().startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _configure(connection)
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
