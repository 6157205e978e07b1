"""Engines and transactions for SQLite and PostgreSQL.

Every unit of work is a function run inside one transaction: ``db.read(fn)`` or ``db.write(fn)``.

SQLite: WAL journal, ``synchronous=NORMAL`` (a commit survives a process crash; the OS may lose the last
commits on power loss), and one writer at a time. Writers go through one dedicated connection under an
in-process lock and start with ``BEGIN IMMEDIATE``: the lock avoids SQLite's sleep-based busy handler between
our own threads, the dedicated connection keeps its page cache warm (a connection drops its cache whenever
another connection wrote), and ``BEGIN IMMEDIATE`` takes the write lock up front so a transaction that read
first can never fail to upgrade. Other processes (the CLI) wait on ``busy_timeout``. Writers of several
``bearlumen serve`` worker processes on one file queue on an advisory file lock (``<db>-writer.lock``,
``fcntl.flock``) before ``BEGIN IMMEDIATE``: a blocked ``flock`` wakes the moment the lock is free, where
SQLite's busy handler sleeps 1, 2, 5, 10... ms between retries (which halved throughput with 2 workers).

Statements and commits run in C without the GIL, so while one request writes, the next one validates.
Between two statements the writer needs the GIL back while holding the write lock; the ingest path's Python
loops yield it every few dozen events (``usage/ingest.py``) so it does not wait out a whole switch interval.

PostgreSQL: READ COMMITTED; a deadlock or serialization failure is retried with a fresh transaction.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Optional, TypeVar

from sqlalchemy import Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

from bearlumen.server.dburl import normalize_database_url, sqlite_path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite's busy handler alone queues the writers
    fcntl = None  # type: ignore[assignment]

__all__ = ["Database", "dialect_insert"]

T = TypeVar("T")

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA cache_size=-16384",  # 16 MiB per reader (reads also go through mmap); the writer gets more
    "PRAGMA temp_store=MEMORY",
    "PRAGMA mmap_size=268435456",
    # Checkpoint every ~80 MB of WAL instead of every 4 MB: random idempotency keys dirty about one index page
    # per event, and a checkpoint copies each distinct page once however many commits touched it.
    "PRAGMA wal_autocheckpoint=20000",
    "PRAGMA journal_size_limit=134217728",
)
_PG_RETRYABLE = {"40001", "40P01"}  # serialization_failure, deadlock_detected
_WRITE = "bearlumen_write"


class Database:
    """One database: an engine plus the transaction discipline above."""

    def __init__(self, url: str) -> None:
        self.url = normalize_database_url(url)
        self.engine = _create_engine(self.url)
        self.dialect = self.engine.dialect.name
        self.is_sqlite = self.dialect == "sqlite"
        self._write_lock = threading.Lock()
        self._writer: Optional[Connection] = None
        self._closed = False
        self._lock_fd = _open_lock_file(self.url)

    # -- units of work -------------------------------------------------------------------------------
    def read(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a read transaction (a consistent snapshot on SQLite)."""
        if self.is_sqlite and self._memory:
            return self.write(fn)  # one shared connection: serialize everything
        with self.engine.connect() as conn, conn.begin():
            return fn(conn)

    def write(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in a write transaction; it commits when ``fn`` returns and rolls back if it raises."""
        return self._sqlite_write(fn) if self.is_sqlite else self._pg_write(fn)

    def _sqlite_write(self, fn: Callable[[Connection], T]) -> T:
        with self._write_lock, self._process_lock():
            conn = self._writer_connection()
            try:
                with conn.begin():
                    return fn(conn)
            except DBAPIError as exc:
                if exc.connection_invalidated:
                    self._drop_writer()
                raise

    def _pg_write(self, fn: Callable[[Connection], T]) -> T:
        for attempt in range(5):
            try:
                with self.engine.connect() as conn, conn.begin():
                    return fn(conn)
            except DBAPIError as exc:
                code = getattr(exc.orig, "sqlstate", None)
                if code not in _PG_RETRYABLE or attempt == 4:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _process_lock(self) -> Iterator[None]:
        """The writer queue shared with other processes on the same SQLite file (see the module doc)."""
        if self._lock_fd is None:
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)  # blocks without the GIL
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A plain connection for callers that manage their own transactions (migrations)."""
        with self.engine.connect() as conn:
            yield conn

    # -- lifecycle -----------------------------------------------------------------------------------
    def close(self) -> None:
        """Dispose of every connection (idempotent)."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._drop_writer()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
        self.engine.dispose()

    @property
    def _memory(self) -> bool:
        return self.is_sqlite and sqlite_path(self.url) is None

    def _writer_connection(self) -> Connection:
        if self._closed:
            raise RuntimeError("The database has been closed.")
        if self._writer is None:
            writer = self.engine.connect().execution_options(**{_WRITE: True})
            # 128 MiB: the dedup index of a few million events stays in the writer's cache.
            writer.exec_driver_sql("PRAGMA cache_size=-131072")
            writer.commit()
            self._writer = writer
        return self._writer

    def _drop_writer(self) -> None:
        if self._writer is not None:
            try:
                self._writer.close()
            finally:
                self._writer = None


def _open_lock_file(url: str) -> Optional[int]:
    """The descriptor of a SQLite file's writer lock file; None for memory, PostgreSQL, or no fcntl."""
    path = sqlite_path(url) if url.startswith("sqlite") else None
    if path is None or fcntl is None:
        return None
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.open(f"{path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)


def dialect_insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT construct (it has ``on_conflict_do_nothing`` / ``on_conflict_do_update``)."""
    if conn.dialect.name == "sqlite":
        return sqlite_insert(table)
    return pg_insert(table)


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, hide_parameters=True, pool_pre_ping=True, pool_size=8, max_overflow=16)


def _sqlite_engine(url: str) -> Engine:
    path = sqlite_path(url)
    if path is None:  # in-memory: one connection shared by every thread
        engine = create_engine(
            url, hide_parameters=True, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # usage data is private
        engine = create_engine(
            url,
            hide_parameters=True,
            pool_size=8,
            max_overflow=16,
            connect_args={"check_same_thread": False, "timeout": 30},
        )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module so BEGIN is ours (and DDL is transactional).
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
