"""Engine and session factory; the caller (request dependency or job context) owns each transaction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from upstack.storage import dialect


class Database:
    def __init__(self, url: str):
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        self.engine: Engine = create_engine(url, **dialect.engine_kwargs(url))
        dialect.configure(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if dialect.is_sqlite(url):
            self.read_engine: Engine = create_engine(url, **dialect.engine_kwargs(url))
            dialect.configure(self.read_engine, read_only=True)
        else:
            self.read_engine = self.engine
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """One unit of work: commits on success, rolls back on any exception."""
        s = self._sessions()
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise
        finally:
            s.close()

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A unit of work that only reads (GET routes): never waits for SQLite's writer."""
        s = self._read_sessions()
        try:
            yield s
        finally:
            s.rollback()
            s.close()

    def is_usable(self) -> bool:
        try:
            with self.engine.connect() as c:
                c.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def dispose(self) -> None:
        self.engine.dispose()
        self.read_engine.dispose()
