"""Every difference between SQLite and PostgreSQL lives here: connection setup, the row-lock clause, NUL in text."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine


def is_sqlite(engine_or_url) -> bool:
    url = getattr(engine_or_url, "url", engine_or_url)
    return str(url).startswith("sqlite")


def engine_kwargs(url: str) -> dict:
    if url.startswith("sqlite"):
        # One file shared by API threads, worker threads and other processes: long busy timeout, no
        # same-thread check (the pool hands connections across threads, one at a time).
        return {"connect_args": {"check_same_thread": False, "timeout": 30}, "pool_size": 16, "max_overflow": 16}
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20}


def configure(engine: Engine, *, read_only: bool = False) -> None:
    """`read_only` engines serve reads that never write: on SQLite they begin DEFERRED transactions, which
    read a WAL snapshot without waiting for (or blocking) the single writer."""
    if not is_sqlite(engine):
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):  # pragma: no cover - exercised by every SQLite test
        # pysqlite's own transaction handling defers BEGIN until the first write, which turns a read
        # transaction into a write one half-way and deadlocks under concurrency. Take control of BEGIN.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if read_only:
            cur.execute("PRAGMA query_only=ON")  # a write through the read engine fails loudly
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # pragma: no cover
        # IMMEDIATE takes the write lock up front: a transaction never has to upgrade a read lock (which
        # is where SQLite answers "database is locked" at once instead of waiting busy_timeout).
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def skip_locked(engine: Engine) -> str:
    """The claim query's lock clause: SQLite has one writer at a time, so it needs none."""
    return "" if is_sqlite(engine) else "FOR UPDATE SKIP LOCKED"


def storable(*texts: str) -> bool:
    """Whether these texts can be stored: PostgreSQL text cannot hold NUL (its driver refuses to even send one),
    SQLite's can. Lookups by a key that cannot be stored match nothing, on both databases alike: repositories
    answer "not found" for them instead of letting the driver fail (a 500) on PostgreSQL only."""
    return not any(isinstance(t, str) and "\x00" in t for t in texts)
