"""Monthly range partitions of ``usage_events`` on PostgreSQL (SQLite stays one table).

Each calendar month (UTC) of ``ts_us`` is one partition named ``usage_events_pYYYYMM``; a default partition
``usage_events_pdefault`` takes any event outside them (a timestamp years away), so an insert is never
rejected. ``ensure_partitions`` creates the months around now ahead of time: the service runs it at start
and every hour, the migration runs it too, and it is idempotent and safe when several replicas run it at
once (a transaction-level advisory lock). A month whose rows already sit in the default partition is
created detached, the rows are moved into it, then it is attached, all in one transaction.

Why partitions: ``bearlumen prune`` drops a whole month in O(1) instead of deleting millions of rows, and
a time-bounded query only touches the months it covers.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import List, Optional, Tuple

import anyio.to_thread
from sqlalchemy.engine import Connection

from bearlumen.server.db import Database
from bearlumen.server.schema import PARTITION_PREFIX
from bearlumen.server.timefmt import now_us

__all__ = [
    "AHEAD",
    "DEFAULT_PARTITION",
    "Month",
    "bounds",
    "ensure_partitions",
    "is_partitioned",
    "keep_partitions",
    "maintain",
    "month_of",
    "month_partitions",
    "partition_name",
    "shift_month",
]

AHEAD = 3  # months created ahead of the current one (and the previous one is kept created)
DEFAULT_PARTITION = f"{PARTITION_PREFIX}default"
_log = logging.getLogger("bearlumen.server")
_LOCK_ID = 0x62656173  # advisory lock id for partition maintenance ("beas")
_US = 1_000_000

Month = Tuple[int, int]  # (year, month)


def month_of(ts_us: int) -> Month:
    moment = datetime.fromtimestamp(ts_us // _US, tz=timezone.utc)
    return moment.year, moment.month


def shift_month(month: Month, by: int) -> Month:
    index = month[0] * 12 + month[1] - 1 + by
    return index // 12, index % 12 + 1


def bounds(month: Month) -> Tuple[int, int]:
    """[start, end) of the month in microseconds since the epoch."""
    start = datetime(month[0], month[1], 1, tzinfo=timezone.utc)
    following = shift_month(month, 1)
    end = datetime(following[0], following[1], 1, tzinfo=timezone.utc)
    return int(start.timestamp()) * _US, int(end.timestamp()) * _US


def partition_name(month: Month) -> str:
    return f"{PARTITION_PREFIX}{month[0]:04d}{month[1]:02d}"


def is_partitioned(conn: Connection) -> bool:
    if conn.dialect.name != "postgresql":
        return False
    kind = conn.exec_driver_sql(
        "SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass('usage_events')"
    ).scalar()
    return kind == "p"


def month_partitions(conn: Connection) -> List[Tuple[str, Month]]:
    """The monthly partitions that exist, oldest first (the default partition is not listed)."""
    rows = conn.exec_driver_sql(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = to_regclass('usage_events')"
    )
    found = []
    for (name,) in rows:
        suffix = name[len(PARTITION_PREFIX) :]
        if name.startswith(PARTITION_PREFIX) and suffix.isdigit() and len(suffix) == 6:
            found.append((name, (int(suffix[:4]), int(suffix[4:]))))
    return sorted(found, key=lambda item: item[1])


def ensure_partitions(
    conn: Connection, *, now: Optional[int] = None, extra: Tuple[Month, ...] = ()
) -> List[str]:
    """Create the default partition and the months from last month to AHEAD months ahead (plus ``extra``)
    that are missing; return the names created. A no-op on SQLite or an unpartitioned table."""
    if not is_partitioned(conn):
        return []
    current = month_of(now_us() if now is None else now)
    wanted = {shift_month(current, by) for by in range(-1, AHEAD + 1)} | set(extra)
    have = {month for _, month in month_partitions(conn)}
    has_default = conn.exec_driver_sql(f"SELECT to_regclass('{DEFAULT_PARTITION}')").scalar() is not None
    if wanted <= have and has_default:
        return []  # the usual case: no lock, no DDL
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_ID})")
    have = {month for _, month in month_partitions(conn)}  # another replica may have just made them
    created = []
    if conn.exec_driver_sql(f"SELECT to_regclass('{DEFAULT_PARTITION}')").scalar() is None:
        conn.exec_driver_sql(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF usage_events DEFAULT")
        created.append(DEFAULT_PARTITION)
    for month in sorted(wanted - have):
        _create_month(conn, month)
        created.append(partition_name(month))
    return created


def _create_month(conn: Connection, month: Month) -> None:
    name = partition_name(month)
    start, end = bounds(month)
    in_range = f"ts_us >= {start} AND ts_us < {end}"
    stranded = conn.exec_driver_sql(f"SELECT 1 FROM {DEFAULT_PARTITION} WHERE {in_range} LIMIT 1").first()
    if stranded is None:
        conn.exec_driver_sql(
            f"CREATE TABLE {name} PARTITION OF usage_events FOR VALUES FROM ({start}) TO ({end})"
        )
        return
    # Rows of this month landed in the default partition (it was not created in time): move them.
    conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE usage_events INCLUDING DEFAULTS)")
    conn.exec_driver_sql(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE {in_range} RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved"
    )
    conn.exec_driver_sql(
        f"ALTER TABLE usage_events ATTACH PARTITION {name} FOR VALUES FROM ({start}) TO ({end})"
    )


def maintain(db: Database) -> List[str]:
    """``ensure_partitions`` in its own transaction (a no-op on SQLite)."""
    if db.is_sqlite:
        return []
    return db.write(lambda conn: ensure_partitions(conn))


async def keep_partitions(db: Database, every_s: float = 3600.0) -> None:
    """Create upcoming months while the service runs (the service's lifespan runs this as a task). A
    failure is logged and retried next time: inserts never depend on it (the default partition)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            await anyio.to_thread.run_sync(maintain, db)
        except Exception:  # the service keeps serving; the next round retries
            _log.exception("Creating usage_events partitions failed; retrying in %s s.", every_s)
