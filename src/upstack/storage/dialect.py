"""Every difference between SQLite and PostgreSQL lives here: connection setup, the row-lock clause, NUL in text."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.engine import Engine


def is_sqlite(engine_or_url) -> bool:
    url = getattr(engine_or_url, "url", engine_or_url)
    return str(url).startswith("sqlite")


def engine_kwargs(url: str) -> dict:
    # hide_parameters: a database error's text never carries the statement's values (tokens, record
    # values), so nothing that logs the error can leak them.
    if url.startswith("sqlite"):
        # One file shared by API threads, worker threads and other processes: long busy timeout, no
        # same-thread check (the pool hands connections across threads, one at a time).
        return {"connect_args": {"check_same_thread": False, "timeout": 30}, "pool_size": 16, "max_overflow": 16,
                "hide_parameters": True}
    # connect_timeout: an unreachable server answers 503 within seconds instead of hanging a request.
    return {"pool_pre_ping": True, "pool_size": 10, "max_overflow": 20, "hide_parameters": True,
            "connect_args": {"connect_timeout": 5}}


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


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None) or exc
    return getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)


def is_disk_full(exc: BaseException) -> bool:
    """The database could not write for lack of space (SQLite SQLITE_FULL, PostgreSQL 53100)."""
    if _sqlstate(exc) == "53100":
        return True
    return "database or disk is full" in str(getattr(exc, "orig", None) or exc)


def is_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached (or is locked) right now: the request itself may well be fine.

    Wrapped SQLAlchemy errors and the raw driver errors of the fast path (raw DB-API cursors) both count.
    """
    import sqlite3

    from sqlalchemy import exc as sa_exc

    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):  # pool exhausted, connection lost
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return True
        exc = exc.orig or exc
    if isinstance(exc, sqlite3.OperationalError):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    # Class 08 (connection exceptions), 53 (insufficient resources), 57P (operator intervention: shutdown).
    state = _sqlstate(exc) or ""
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and (
        not state or state.startswith(("08", "53", "57P")))


def storable(*texts: str) -> bool:
    """Whether these texts can be stored: PostgreSQL text cannot hold NUL (its driver refuses to even send one),
    SQLite's can. Lookups by a key that cannot be stored match nothing, on both databases alike: repositories
    answer "not found" for them instead of letting the driver fail (a 500) on PostgreSQL only."""
    return not any(isinstance(t, str) and "\x00" in t for t in texts)
