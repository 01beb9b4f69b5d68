"""The :class:`Catalogue` handle: open (connect and upgrade), sessions, summary, close."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from .engine import connection_lost, create_engine, probe, safe_url
from .migrate import upgrade_engine
from .summary import CatalogueSummary, summarize

__all__ = ["Catalogue"]


class Catalogue:
    """A handle on the catalogue database. Create it with :meth:`open`; it is thread-safe and
    meant to live as long as the process (one per process, sessions per unit of work)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Catalogue:
        """Connect to the database at ``url`` and bring its schema up to date.

        Args:
            url: SQLAlchemy URL; ``sqlite:///file`` (the folder is created) or
                ``postgresql+psycopg://...``. ``sqlite://`` gives a private in-memory database
                on one shared connection (for quick experiments; not for concurrent threads).

        Raises:
            CatalogueError: the database cannot be reached, or it was made by a newer callrec.
        """
        engine = create_engine(url)
        try:
            probe(engine)
            upgrade_engine(engine, "head")
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def url(self) -> str:
        """The database URL with the password hidden."""
        return safe_url(self.engine.url)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits when the block ends, rolls back if it raises.

        Objects stay readable after the block (``expire_on_commit=False``), so a function can
        return the rows it loaded; reload them in a new session to see later changes.

        Raises:
            CatalogueError: The database server went away (restart, crash, network): a one-line
                error callers can treat as an outage, instead of a driver exception.
        """
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException as exc:
                session.rollback()
                lost = isinstance(exc, DBAPIError) and connection_lost(exc, self.engine.url)
                if lost:
                    raise lost from exc
                raise

    def summary(self, now: datetime) -> CatalogueSummary:
        """Counts for ``callrec status``; ``now`` (aware) fixes the oldest call's age."""
        with self.session() as session:
            return summarize(session, now)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Catalogue({self.url!r})"
