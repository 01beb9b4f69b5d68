"""Column types shared by every catalogue table.

Retention is computed from timestamps (``started_at + retention_days``), so a timestamp that
silently shifts by a time-zone offset would delete a call early or keep it too long. Every
datetime column therefore goes through :class:`UTCDateTime`: it refuses naive values, stores UTC
and always hands back an aware UTC datetime, on SQLite (which has no time-zone type) and on
PostgreSQL alike.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["JSONValue", "StrEnumType", "UTCDateTime", "utc_now"]


def utc_now() -> datetime:
    """The current instant as an aware UTC datetime (the default of every ``*_at`` column)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An instant in time: aware in, aware UTC out, stored as UTC.

    Naive input raises ``ValueError`` instead of being guessed at: a naive value is a bug at the
    caller (which zone did it mean?), and guessing wrong moves a deletion deadline.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} refused — pass an aware datetime "
                "(e.g. datetime.now(UTC) or value.replace(tzinfo=ZoneInfo(...)))"
            )
        value = value.astimezone(UTC)
        # SQLite stores the wall-clock text only; keep that text in UTC.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def StrEnumType(enum_class: type[enum.Enum]) -> sa.Enum:
    """A string column holding an enum's *values* (not its member names).

    Stored as plain ``VARCHAR(32)`` without a native PostgreSQL enum or CHECK constraint, so
    adding a state later is a code change, not a schema migration; rows come back as members.
    """
    return sa.Enum(
        enum_class,
        native_enum=False,
        create_constraint=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


# JSON everywhere; JSONB on PostgreSQL so containment queries (e.g. a user's teams) can be indexed.
JSONValue = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
