"""Set-at-a-time statements for the ingest hot path (events, rollup upserts), one strategy per dialect.

SQLAlchemy's per-row parameter handling costs more than the database work for 1000-row batches, so these
go to the driver directly (``exec_driver_sql``) with SQL generated once from the table definitions:

- SQLite runs multi-row ``INSERT ... VALUES (...), (...)`` statements with ``ON CONFLICT DO NOTHING``;
  the rows it really inserted are those whose rowid is above the previous maximum, which is exact because
  the caller holds SQLite's single write lock (``BEGIN IMMEDIATE``). Not ``executemany``: it takes the GIL
  back for every row, and with another request thread running Python each of those waits a whole switch
  interval (a 1000-row batch then takes seconds). One statement per chunk runs its rows in C without the
  GIL, so another request validates meanwhile. Chunks have fixed sizes (a full 1000-row batch, then
  512, 256, ...), so every statement text repeats and stays prepared in the driver's statement cache.
- PostgreSQL sends each column as one array and inserts ``FROM unnest(...)`` with
  ``ON CONFLICT DO NOTHING RETURNING``, which stays exact under concurrent writers. Rows go in sorted key
  order so concurrent transactions lock index entries in the same order (no deadlocks).
"""

from __future__ import annotations

from functools import cache
from itertools import chain
from typing import Any, Dict, Iterator, List, Sequence, Set, Tuple

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from bearlumen.server.money import LIMB
from bearlumen.server.schema import ROLLUP_MEASURES, ROLLUP_SUMS, usage_events

__all__ = ["EVENT_COLUMNS", "existing_event_ids", "insert_new_events", "upsert_rollup"]

EVENT_COLUMNS = (
    "public_id",
    "tenant_id",
    "key_hash",
    "idempotency_key",
    "event_type",
    "metric_name",
    "quantity_micro",
    "cost_pico",
    "agent_id",
    "workflow_id",
    "subscription_id",
    "end_user_id",
    "model",
    "ts_us",
    "received_us",
    "metadata",
)
_KEY_HASH = EVENT_COLUMNS.index("key_hash")
# A full batch is one statement (1000 rows x 16 columns stays under SQLite's 32766 params): every statement
# gives up the GIL and must win it back, which can wait a whole switch interval while another request runs
# Python, and this runs under the write lock.
_CHUNKS = (1000, 512, 256, 128, 64, 32, 16, 8, 4, 2, 1)
_CHUNK = 900  # SQLite's default limit on host parameters is 32766; stay far from it


def _pg_type(table: Table, column: str) -> str:
    sql_type = table.c[column].type
    name = type(sql_type).__name__.lower()
    if "biginteger" in name:
        return "bigint"
    if "integer" in name:
        return "integer"
    if "binary" in name:
        return "bytea"
    return "text"


@cache
def _insert_sql(dialect: str) -> str:
    columns = ", ".join(EVENT_COLUMNS)
    if dialect == "sqlite":
        return f"INSERT INTO usage_events ({columns})"
    # usage_events is partitioned (no unique key across partitions): the keys table decides which rows
    # are new, in the same statement, and only those reach usage_events (schema.usage_event_keys).
    arrays = ", ".join(f"%b::{_pg_type(usage_events, c)}[]" for c in EVENT_COLUMNS)
    return (
        f"WITH input AS (SELECT * FROM unnest({arrays}) AS t({columns})), "
        "new_keys AS (INSERT INTO usage_event_keys (tenant_id, key_hash, public_id, ts_us) "
        "SELECT tenant_id, key_hash, public_id, ts_us FROM input "
        "ON CONFLICT (tenant_id, key_hash) DO NOTHING RETURNING key_hash) "
        f"INSERT INTO usage_events ({columns}) SELECT input.* FROM input JOIN new_keys USING (key_hash) "
        "RETURNING key_hash"
    )


def existing_event_ids(conn: Connection, tenant_id: int, digests: Sequence[bytes]) -> Dict[bytes, str]:
    """Stored events among ``digests``: digest -> public id (pruned events' keys included)."""
    found: Dict[bytes, str] = {}
    sqlite = conn.dialect.name == "sqlite"
    for start in range(0, len(digests), _CHUNK):
        chunk = list(digests[start : start + _CHUNK])
        if sqlite:
            marks = ", ".join("?" * len(chunk))
            sql = (
                f"SELECT key_hash, public_id FROM usage_events WHERE tenant_id = ? AND key_hash IN ({marks}) "
                f"UNION ALL SELECT key_hash, public_id FROM usage_event_keys "
                f"WHERE tenant_id = ? AND key_hash IN ({marks})"
            )
            params: Any = (tenant_id, *chunk, tenant_id, *chunk)
        else:
            sql = (
                "SELECT key_hash, public_id FROM usage_event_keys WHERE tenant_id = %s AND key_hash = ANY(%s)"
            )
            params = (tenant_id, chunk)
        for digest, public_id in conn.exec_driver_sql(sql, params):
            found[bytes(digest)] = public_id
    return found


def insert_new_events(conn: Connection, tenant_id: int, rows: List[Tuple[Any, ...]]) -> Set[bytes]:
    """Insert the rows whose key is not stored yet; return the digests of the rows actually inserted."""
    if conn.dialect.name == "sqlite":
        return _insert_sqlite(conn, tenant_id, rows)
    rows = sorted(rows, key=lambda row: row[_KEY_HASH])
    columns = [list(column) for column in zip(*rows)]
    result = conn.exec_driver_sql(_insert_sql("postgresql"), tuple(columns))
    return {bytes(digest) for (digest,) in result}


def _insert_sqlite(conn: Connection, tenant_id: int, rows: List[Tuple[Any, ...]]) -> Set[bytes]:
    rows = _without_pruned_keys(conn, tenant_id, rows)
    if not rows:
        return set()
    before = conn.exec_driver_sql("SELECT max(id) FROM usage_events").scalar() or 0
    ignore_duplicates = "ON CONFLICT (tenant_id, key_hash) DO NOTHING"
    inserted = _sqlite_values(conn, _insert_sql("sqlite"), ignore_duplicates, rows)
    if inserted == len(rows):  # the common case: no duplicate, no lookup
        return {row[_KEY_HASH] for row in rows}
    new = conn.exec_driver_sql("SELECT key_hash FROM usage_events WHERE id > ?", (before,))
    return {bytes(digest) for (digest,) in new}


def _without_pruned_keys(
    conn: Connection, tenant_id: int, rows: List[Tuple[Any, ...]]
) -> List[Tuple[Any, ...]]:
    """The rows whose key is not one of a pruned event (SQLite keeps those in usage_event_keys, which is
    empty until a prune: then one indexed probe per batch)."""
    probe = "SELECT 1 FROM usage_event_keys WHERE tenant_id = ? LIMIT 1"
    if conn.exec_driver_sql(probe, (tenant_id,)).first():
        pruned = existing_event_ids(conn, tenant_id, [row[_KEY_HASH] for row in rows])
        return [row for row in rows if row[_KEY_HASH] not in pruned]
    return rows


def _additions(table: str, modulo: str) -> str:
    """The SET clause adding ``excluded`` into a row: counts add; each sum adds its low part modulo LIMB
    and carries into its ``_hi`` column. Both databases evaluate every SET expression on the old row, and
    two low parts below LIMB (10**18) add up below 2**63, so no step can overflow."""
    parts = [f"{m} = {table}.{m} + excluded.{m}" for m in ROLLUP_MEASURES if m not in _SUM_COLUMNS]
    for m in ROLLUP_SUMS:
        low = f"({table}.{m} + excluded.{m})"
        parts.append(f"{m} = {low} {modulo} {LIMB}")
        parts.append(f"{m}_hi = {table}.{m}_hi + excluded.{m}_hi + {low} / {LIMB}")
    return ", ".join(parts)


_SUM_COLUMNS = {*ROLLUP_SUMS, *(f"{m}_hi" for m in ROLLUP_SUMS)}


@cache
def _upsert_sql(table: Table, dialect: str) -> Tuple[str, str]:
    """(statement head, conflict clause) of a rollup upsert."""
    keys = [c.name for c in table.primary_key.columns]
    head = f"INSERT INTO {table.name} ({', '.join([*keys, *ROLLUP_MEASURES])})"
    modulo = "%" if dialect == "sqlite" else "%%"  # psycopg's parameter marker is %
    conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {_additions(table.name, modulo)}"
    if dialect == "sqlite":
        return head, conflict
    arrays = ", ".join(f"%b::{_pg_type(table, c)}[]" for c in [*keys, *ROLLUP_MEASURES])
    return f"{head} SELECT * FROM unnest({arrays})", conflict


def upsert_rollup(conn: Connection, table: Table, rows: List[Tuple[Any, ...]]) -> None:
    """Add ``rows`` (primary key values, then ROLLUP_MEASURES, sums split by LIMB) into ``table``'s
    buckets."""
    if not rows:
        return
    rows.sort()  # one lock order for every writer (PostgreSQL); harmless on SQLite
    head, conflict = _upsert_sql(table, conn.dialect.name)
    if conn.dialect.name == "sqlite":
        _sqlite_values(conn, head, conflict, rows)
    else:
        conn.exec_driver_sql(f"{head} {conflict}", tuple(list(c) for c in zip(*rows)))


def _chunks(rows: List[Tuple[Any, ...]]) -> Iterator[Tuple[int, List[Tuple[Any, ...]]]]:
    start = 0
    for size in _CHUNKS:
        while len(rows) - start >= size:
            yield size, rows[start : start + size]
            start += size


@cache
def _values_sql(head: str, width: int, count: int, tail: str) -> str:
    row = f"({', '.join('?' * width)})"
    return f"{head} VALUES {', '.join([row] * count)} {tail}"


def _sqlite_values(conn: Connection, head: str, tail: str, rows: List[Tuple[Any, ...]]) -> int:
    """``head VALUES (row), (row), ... tail`` over all ``rows``; returns the number of rows changed."""
    changed = 0
    for count, chunk in _chunks(rows):
        sql = _values_sql(head, len(chunk[0]), count, tail)
        changed += conn.exec_driver_sql(sql, tuple(chain.from_iterable(chunk))).rowcount
    return changed
