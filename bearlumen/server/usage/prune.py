"""Retention: ``bearlumen prune --before DATE`` removes raw events older than DATE, in one transaction.

- PostgreSQL: a month partition entirely before DATE (and no ``--tenant``) is dropped whole, which takes
  milliseconds whatever it holds; the remaining rows before DATE (a partial month, the default
  partition, or one tenant's events) are deleted.
- SQLite: the rows are deleted.
- Rollups are kept by default, so reports over whole pruned hours stay exactly as before (they read the
  rollups). ``keep_rollups=False`` also deletes the rollup hours before DATE (reports then show nothing
  there).
- Idempotency keys are kept, always: a late retry of a pruned event is recognised (``recorded: false``)
  and never counted twice. PostgreSQL keeps every key in ``usage_event_keys`` already; SQLite copies the
  pruned events' keys there before deleting them. A key costs ~70 bytes, against ~300 for an event.

DATE must fall on a whole hour (a date is midnight UTC) so a rollup hour is either wholly pruned or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from sqlalchemy import select
from sqlalchemy.engine import Connection

from bearlumen.server.db import Database
from bearlumen.server.schema import tenants
from bearlumen.server.timefmt import HOUR_US
from bearlumen.server.usage.partitions import bounds, is_partitioned, month_partitions
from bearlumen.server.usage.rollups import ROLLUPS

__all__ = ["PruneResult", "prune"]


@dataclass
class PruneResult:
    """What a prune removed (or, with ``dry_run``, would remove)."""

    events: int = 0  # raw events removed, dropped partitions included
    dropped_partitions: List[str] = field(default_factory=list)
    rollup_rows: int = 0  # rollup rows removed (0 when keeping rollups)
    keys_kept: int = 0  # idempotency keys of the removed events, kept in usage_event_keys
    dry_run: bool = False


def prune(
    db: Database,
    before_us: int,
    *,
    tenant: Optional[str] = None,
    keep_rollups: bool = True,
    dry_run: bool = False,
) -> PruneResult:
    """Remove the events with ``ts_us < before_us`` (one tenant's, by name, or every tenant's)."""
    if before_us % HOUR_US:
        raise ValueError("The cut-off must fall on a whole hour (UTC), e.g. a date.")

    def run(conn: Connection) -> PruneResult:
        tenant_id = _tenant_id(conn, tenant)
        result = PruneResult(dry_run=dry_run)
        scope = "" if tenant_id is None else f" AND tenant_id = {tenant_id}"
        if not keep_rollups:
            for rollup in ROLLUPS:
                where = f"WHERE hour < {before_us // HOUR_US}{scope}"
                verb = "SELECT count(*) FROM" if dry_run else "DELETE FROM"
                counted = conn.exec_driver_sql(f"{verb} {rollup.table.name} {where}")
                result.rollup_rows += int(counted.scalar() or 0) if dry_run else counted.rowcount
        if is_partitioned(conn) and tenant_id is None:
            for name, month in month_partitions(conn):
                if bounds(month)[1] <= before_us:
                    result.events += int(conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar() or 0)
                    result.dropped_partitions.append(name)
                    if not dry_run:
                        conn.exec_driver_sql(f"DROP TABLE {name}")
        where = f"WHERE ts_us < {before_us}{scope}"
        if dry_run:
            every = int(conn.exec_driver_sql(f"SELECT count(*) FROM usage_events {where}").scalar() or 0)
            rest = every - result.events  # the partitions counted above are still there
        else:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(
                    "INSERT INTO usage_event_keys (tenant_id, key_hash, public_id, ts_us) "
                    f"SELECT tenant_id, key_hash, public_id, ts_us FROM usage_events {where} "
                    "ON CONFLICT DO NOTHING"
                )
            rest = conn.exec_driver_sql(f"DELETE FROM usage_events {where}").rowcount
        result.events += rest
        result.keys_kept = result.events
        return result

    return db.write(run)


def _tenant_id(conn: Connection, name: Optional[str]) -> Optional[int]:
    if name is None:
        return None
    tenant_id = conn.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar()
    if tenant_id is None:
        raise LookupError(f"No tenant named {name!r}.")
    return int(tenant_id)
