"""The durable spool: built events in a SQLite file (WAL) until the service acknowledges them.

Location (``spool=True``): ``$BEARLUMEN_SPOOL_DIR/<name>.db``, else ``~/.bearlumen/spool/<name>.db``, where
``<name>`` is a hash of the service URL and the key's display prefix (never the key itself). ``spool="path"``
picks the file; ``spool=False`` keeps events in memory only. The directory is created ``0700``, the file
``0600``.

Every event is one row with its idempotency key (unique) and JSON body, written before its first send and
deleted only once the service acknowledged it (recorded or duplicate). So after a crash, a ``kill -9`` or
a long outage, the next process that opens the same file sends what was left, with the same keys: the
service records each event exactly once.

Several processes may share one file. A sender *claims* rows with a lease (owner = host, pid and a random
token; ``lease_until`` in wall-clock seconds) inside an immediate transaction, so two live processes never
send the same rows at once. A lease is renewed before every attempt but the first (the claim is a
moment old); rows of an owner whose lease expired, or whose pid is gone from this host (``kill -9``), are
claimed again by the next sender.

Size cap: ``max_events`` rows and ``max_bytes`` of JSON; beyond it new events are refused (drop-newest:
the events already spooled, older, are the ones the service is most likely to still accept), which the
exporter counts as ``dropped_spool_full``.

Quarantine: an event the service refused as invalid, or one that alone keeps failing with a server error
while the rest is delivered, is moved to the ``rejected`` table (the quarantine) with the reason, and
kept there until someone decides: ``bearlumen spool list / retry / drop`` (``bearlumen/delivery/cli.py``).
Nothing leaves the quarantine by itself.

Space: a spool created by this version uses ``auto_vacuum = INCREMENTAL``; once the queue is drained
(:meth:`Spool.reclaim`, called by the sender) the free pages go back to the file system and the WAL is
truncated, so a spool that grew during a long outage shrinks again. An older spool is vacuumed once when
it is empty (which converts it).

Durability: WAL with ``synchronous=FULL`` by default (a committed event survives a power loss);
``NORMAL`` survives a process crash but may lose the last commits on an OS crash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sqlite3
import threading
import time
import uuid
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from bearlumen.delivery.store import AppendResult, Row

ENV_SPOOL_DIR = "BEARLUMEN_SPOOL_DIR"
DEFAULT_MAX_EVENTS = 1_000_000
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_LEASE_SECONDS = 60.0
RECLAIM_FREE_PAGES = 64  # free pages (4 KiB each) worth giving back once the spool is empty
_CHUNK = 500  # ids per IN (...) list, under SQLite's oldest parameter limit (999)

# Connections inherited through fork() must never be used or closed by the child (SQLite's rule): they
# are parked here so that their finalizer never runs.
_ABANDONED: List[sqlite3.Connection] = []

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at REAL NOT NULL,
    owner TEXT,
    owner_pid INTEGER,
    owner_host TEXT,
    lease_until REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS events_leased ON events(owner) WHERE lease_until > 0;
CREATE TABLE IF NOT EXISTS totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n INTEGER NOT NULL,
    bytes INTEGER NOT NULL
);
INSERT OR IGNORE INTO totals (id, n, bytes) VALUES (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS events_counted_in AFTER INSERT ON events BEGIN
    UPDATE totals SET n = n + 1, bytes = bytes + NEW.bytes WHERE id = 1;
END;
CREATE TRIGGER IF NOT EXISTS events_counted_out AFTER DELETE ON events BEGIN
    UPDATE totals SET n = n - 1, bytes = bytes - OLD.bytes WHERE id = 1;
END;
CREATE TABLE IF NOT EXISTS rejected (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    body TEXT NOT NULL,
    code TEXT,
    message TEXT,
    rejected_at REAL NOT NULL
);
"""


_INSERT = (
    "INSERT OR IGNORE INTO events (key, body, bytes, created_at, owner, owner_pid, owner_host, lease_until)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def default_spool_dir() -> str:
    configured = os.environ.get(ENV_SPOOL_DIR)
    if configured:
        return os.path.expanduser(configured)
    return os.path.join(os.path.expanduser("~"), ".bearlumen", "spool")


def default_spool_path(base_url: str, api_key: str, directory: Optional[str] = None) -> str:
    """``<dir>/<sha256(base_url, key display prefix)[:16]>.db``: one spool per service and key."""
    digest = hashlib.sha256(f"{base_url}\0{api_key[:12]}".encode()).hexdigest()[:16]
    return os.path.join(directory or default_spool_dir(), f"{digest}.db")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (signal 0 tests, sends nothing)."""
    if os.name == "nt":  # os.kill would terminate it there: rely on lease expiry instead
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, it is just not ours
        return True
    return True


def _chunks(rows: Sequence[Row]) -> Iterator[List[int]]:
    for start in range(0, len(rows), _CHUNK):
        yield [row.id for row in rows[start : start + _CHUNK]]


def _marks(ids: Sequence[Any]) -> str:
    return ",".join("?" * len(ids))


def _key_filter(keys: Optional[Sequence[str]]) -> Tuple[str, Tuple[Any, ...]]:
    if keys is None:
        return "", ()
    if not keys:
        return "WHERE 0", ()
    return f"WHERE key IN ({_marks(keys)})", tuple(keys)


class Spool:
    """A SQLite spool file shared by the threads of one process (and by other processes, via leases).

    Thread-safe: one connection, every operation under ``self.lock`` (which the fork handler holds
    across ``fork()`` so that a child never inherits SQLite mid-operation).
    """

    def __init__(
        self,
        path: str,
        *,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        synchronous: str = "FULL",
        connect: bool = True,
    ) -> None:
        if synchronous.upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"spool_synchronous must be FULL, NORMAL or EXTRA, got {synchronous!r}")
        self._path = os.path.abspath(os.path.expanduser(path))
        self._max_events = max_events
        self._max_bytes = max_bytes
        self._lease = lease_seconds
        self._synchronous = synchronous.upper()
        self.lock = threading.Lock()
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._owner = f"{self._host}:{self._pid}:{uuid.uuid4().hex[:12]}"
        self._conn: Optional[sqlite3.Connection] = None
        self._inode: Optional[int] = None
        if connect:  # at once, so that a bad path is reported where the spool is configured
            with self.lock:
                self._connect()

    # ------------------------------------------------------------------------------------ plumbing

    @property
    def path(self) -> Optional[str]:
        return self._path

    @property
    def owner(self) -> str:
        return self._owner

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        directory = os.path.dirname(self._path)
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        if not os.path.exists(self._path):
            os.close(os.open(self._path, os.O_CREAT | os.O_RDWR, 0o600))
        conn = sqlite3.connect(self._path, timeout=30.0, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")  # takes effect on a new file (or VACUUM)
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            try:
                conn.executescript("BEGIN IMMEDIATE;" + _SCHEMA + "COMMIT;")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        try:
            self._inode = os.stat(self._path).st_ino
        except OSError:
            self._inode = None
        return conn

    def usable(self) -> bool:
        """False once the spool file is gone or replaced (deleted, moved): SQLite would go on writing to
        the unlinked file, and everything written there would vanish with this process."""
        if self._conn is None:
            return True
        try:
            return os.stat(self._path).st_ino == self._inode
        except OSError:
            return False

    def _write(self) -> _Txn:
        return _Txn(self._connect())

    # ------------------------------------------------------------------------------------ the queue

    def append(self, items: Sequence[Tuple[str, str]], *, claim: bool = False) -> AppendResult:
        stored: List[Row] = []
        dropped = 0
        if not items:
            return AppendResult(stored, 0)
        now = time.time()
        owner: Any = self._owner if claim else None
        pid: Any = self._pid if claim else None
        host: Any = self._host if claim else None
        lease_until = now + self._lease if claim else 0.0
        with self.lock, self._write() as conn:
            count, size = conn.execute("SELECT n, bytes FROM totals WHERE id = 1").fetchone()
            if (
                count + len(items) <= self._max_events
                and size + sum(len(b) for _, b in items) <= self._max_bytes
            ):
                return AppendResult(self._insert_all(conn, items, now, owner, pid, host, lease_until), 0)
            for key, body in items:
                nbytes = len(body)
                if count + 1 > self._max_events or size + nbytes > self._max_bytes:
                    dropped += 1
                    continue
                cursor = conn.execute(_INSERT, (key, body, nbytes, now, owner, pid, host, lease_until))
                if cursor.rowcount == 1 and cursor.lastrowid is not None:
                    stored.append(Row(cursor.lastrowid, key, body))
                    count += 1
                    size += nbytes
        return AppendResult(stored, dropped)

    @staticmethod
    def _insert_all(
        conn: sqlite3.Connection, items: Sequence[Tuple[str, str]], now: float, *lease: Any
    ) -> List[Row]:
        """All of `items` fit under the caps: one statement for the whole group commit. The ids they got
        are those above the sequence as it was (this transaction holds the write lock; a key already
        queued is ignored and takes no id)."""
        found = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        before = int(found[0]) if found else 0
        conn.executemany(_INSERT, [(key, body, len(body), now, *lease) for key, body in items])
        bodies: dict[str, str] = {}
        for key, body in items:
            bodies.setdefault(key, body)  # a key twice in one group: the first is the one stored
        stored = conn.execute("SELECT id, key FROM events WHERE id > ? ORDER BY id", (before,))
        return [Row(int(i), str(k), bodies[k]) for i, k in stored.fetchall()]

    def claim(self, limit: int) -> List[Row]:
        now = time.time()
        with self.lock:
            # an idle sender polls: an empty spool costs one read, not a write transaction
            if self._connect().execute("SELECT 1 FROM events LIMIT 1").fetchone() is None:
                return []
        with self.lock, self._write() as conn:
            owners = conn.execute(
                "SELECT DISTINCT owner, owner_pid, owner_host FROM events WHERE lease_until > 0"
            ).fetchall()
            for owner, pid, host in owners:
                if owner != self._owner and host == self._host and not pid_alive(int(pid or 0)):
                    conn.execute(
                        "UPDATE events SET lease_until = 0, owner = NULL WHERE owner = ? AND lease_until > 0",
                        (owner,),
                    )
            found = conn.execute(
                "SELECT id, key, body FROM events WHERE lease_until <= ? ORDER BY id LIMIT ?", (now, limit)
            ).fetchall()
            if not found:
                return []
            conn.execute(
                "UPDATE events SET owner = ?, owner_pid = ?, owner_host = ?, lease_until = ?,"
                " attempts = attempts + 1 WHERE id BETWEEN ? AND ? AND lease_until <= ?",
                (self._owner, self._pid, self._host, now + self._lease, found[0][0], found[-1][0], now),
            )
        return [Row(int(i), k, b) for i, k, b in found]

    def renew(self, rows: Sequence[Row], extra: float = 0.0) -> List[Row]:
        until = time.time() + self._lease + max(0.0, extra)
        kept: set[int] = set()
        with self.lock, self._write() as conn:
            for ids in _chunks(rows):
                conn.execute(
                    f"UPDATE events SET lease_until = ? WHERE owner = ? AND id IN ({_marks(ids)})",
                    (until, self._owner, *ids),
                )
                found = conn.execute(
                    f"SELECT id FROM events WHERE owner = ? AND id IN ({_marks(ids)})", (self._owner, *ids)
                )
                kept.update(i for (i,) in found)
        return [row for row in rows if row.id in kept]

    def release(self, rows: Sequence[Row]) -> None:
        with self.lock, self._write() as conn:
            for ids in _chunks(rows):
                conn.execute(
                    "UPDATE events SET lease_until = 0, owner = NULL"
                    f" WHERE owner = ? AND id IN ({_marks(ids)})",
                    (self._owner, *ids),
                )

    def release_all(self) -> None:
        """Give back every lease this owner holds (shutdown)."""
        with self.lock, self._write() as conn:
            conn.execute(
                "UPDATE events SET lease_until = 0, owner = NULL WHERE owner = ? AND lease_until > 0",
                (self._owner,),
            )

    def ack(self, rows: Sequence[Row]) -> None:
        with self.lock, self._write() as conn:
            for ids in _chunks(rows):
                conn.execute(f"DELETE FROM events WHERE id IN ({_marks(ids)})", ids)

    def reject(self, rows: Sequence[Row], code: str, message: str) -> None:
        """Move ``rows`` from the queue to the quarantine, with the reason."""
        now = time.time()
        with self.lock, self._write() as conn:
            for ids in _chunks(rows):
                conn.execute(
                    "INSERT INTO rejected (key, body, code, message, rejected_at)"
                    f" SELECT key, body, ?, ?, ? FROM events WHERE id IN ({_marks(ids)}) ORDER BY id",
                    (code, message[:500], now, *ids),
                )
                conn.execute(f"DELETE FROM events WHERE id IN ({_marks(ids)})", ids)

    def defer(self, rows: Sequence[Row], seconds: float) -> None:
        """Keep ``rows`` leased to this owner for ``seconds``: nobody sends them before (a per-event
        wait, e.g. an end user the service does not know yet); after this owner's exit or death they
        are anybody's again."""
        until = time.time() + max(0.0, seconds)
        with self.lock, self._write() as conn:
            for ids in _chunks(rows):
                conn.execute(
                    f"UPDATE events SET lease_until = ? WHERE owner = ? AND id IN ({_marks(ids)})",
                    (until, self._owner, *ids),
                )

    # ------------------------------------------------------------------------------------ quarantine

    def quarantined(self, limit: int = 1000) -> List[Tuple[str, str, str, float, str]]:
        """Quarantined events, oldest first: ``(key, code, message, quarantined_at, body)``."""
        with self.lock:
            found = self._connect().execute(
                "SELECT key, code, message, rejected_at, body FROM rejected ORDER BY id LIMIT ?", (limit,)
            )
            return [(str(k), str(c), str(m), float(t), str(b)) for k, c, m, t, b in found.fetchall()]

    def quarantine_count(self) -> int:
        with self.lock:
            (count,) = self._connect().execute("SELECT COUNT(*) FROM rejected").fetchone()
        return int(count)

    def requeue(self, keys: Optional[Sequence[str]] = None) -> int:
        """Put quarantined events (``keys``, or all) back in the queue, same keys; returns how many."""
        now = time.time()
        where, params = _key_filter(keys)
        with self.lock, self._write() as conn:
            found = conn.execute(f"SELECT id, key, body FROM rejected {where} ORDER BY id", params).fetchall()
            for _, key, body in found:
                conn.execute(
                    "INSERT OR IGNORE INTO events (key, body, bytes, created_at) VALUES (?, ?, ?, ?)",
                    (key, body, len(body), now),
                )
            for start in range(0, len(found), _CHUNK):
                ids = [row[0] for row in found[start : start + _CHUNK]]
                conn.execute(f"DELETE FROM rejected WHERE id IN ({_marks(ids)})", ids)
        return len(found)

    def discard(self, keys: Optional[Sequence[str]] = None) -> int:
        """Delete quarantined events (``keys``, or all) for good; returns how many."""
        where, params = _key_filter(keys)
        with self.lock, self._write() as conn:
            return int(conn.execute(f"DELETE FROM rejected {where}", params).rowcount)

    # ------------------------------------------------------------------------------------ space

    def reclaim(self) -> bool:
        """Once the queue is empty, give free pages back and truncate the WAL; True if it shrank."""
        with self.lock:
            conn = self._connect()
            if conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None:
                return False
            (free,) = conn.execute("PRAGMA freelist_count").fetchone()
            if int(free) < RECLAIM_FREE_PAGES:
                return False
            (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
            try:
                if int(mode) == 2:
                    conn.executescript("PRAGMA incremental_vacuum;")  # run to the end (execute: one page)
                else:  # a spool made before auto_vacuum: rewritten once (now incremental)
                    conn.execute("VACUUM")
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:  # another process reading: next time
                return False
        return True

    def dump(self) -> List[Row]:
        """Every queued row (moving the queue elsewhere: the spool became unusable)."""
        with self.lock:
            found = self._connect().execute("SELECT id, key, body FROM events ORDER BY id").fetchall()
        return [Row(int(i), str(k), str(b)) for i, k, b in found]

    # ------------------------------------------------------------------------------------ reading

    def watermark(self) -> int:
        with self.lock:
            (value,) = self._connect().execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        return int(value)

    def pending_upto(self, watermark: int) -> bool:
        with self.lock:
            found = self._connect().execute("SELECT 1 FROM events WHERE id <= ? LIMIT 1", (watermark,))
            return found.fetchone() is not None

    def pending(self) -> int:
        with self.lock:
            (count,) = self._connect().execute("SELECT n FROM totals WHERE id = 1").fetchone()
        return int(count)

    def rejected(self, limit: int = 100) -> List[Tuple[str, str, str]]:
        """The last quarantined events: ``(key, code, message)``, newest first."""
        with self.lock:
            found = self._connect().execute(
                "SELECT key, code, message FROM rejected ORDER BY id DESC LIMIT ?", (limit,)
            )
            return [(str(k), str(c), str(m)) for k, c, m in found.fetchall()]

    # ------------------------------------------------------------------------------------ lifecycle

    def after_fork_in_child(self) -> Spool:
        """A spool on the same file for a forked child: own connection, own owner identity."""
        if self._conn is not None:
            _ABANDONED.append(self._conn)
            self._conn = None
        return Spool(
            self._path,
            max_events=self._max_events,
            max_bytes=self._max_bytes,
            lease_seconds=self._lease,
            synchronous=self._synchronous,
            connect=False,  # lazily: the fork handler does no I/O
        )

    def close(self) -> None:
        with self.lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            if os.getpid() != self._pid:
                _ABANDONED.append(conn)
                return
            conn.close()


class _Txn:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK`` on error): one write transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self._conn.execute("COMMIT")
        else:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("ROLLBACK")
