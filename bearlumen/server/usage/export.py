"""``bearlumen export``: raw usage events as CSV, JSON Lines or Parquet, streamed in constant memory.

Rows come from one read transaction (a consistent snapshot) through a streaming cursor (a server-side
cursor on PostgreSQL), ordered by tenant, timestamp and id, and are written as they arrive: Parquet in row
groups of ``BATCH`` rows, so memory stays flat whatever the size of the export.

Money and quantities are exact decimal strings (``"0.000123"``), never floats: a warehouse casts them to
its DECIMAL type. An unpriced event has an empty cost (CSV) or null (JSON Lines, Parquet), never 0.
Timestamps are ISO 8601 UTC strings as in the API; ``metadata`` is the stored JSON text.
"""

from __future__ import annotations

import csv
from typing import IO, Any, Dict, Iterator, List, Optional, Tuple

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from bearlumen.server.db import Database
from bearlumen.server.money import format_money, format_quantity
from bearlumen.server.schema import tenants, usage_events
from bearlumen.server.timefmt import format_ts

__all__ = ["BATCH", "COLUMNS", "FORMATS", "MissingParquetSupport", "check_format", "export_events"]

FORMATS = ("csv", "jsonl", "parquet")
COLUMNS = (
    "id",
    "tenant",
    "timestamp",
    "receivedAt",
    "eventType",
    "metricName",
    "quantity",
    "providerCostUsd",
    "model",
    "agentId",
    "workflowId",
    "subscriptionId",
    "endUserId",
    "idempotencyKey",
    "metadata",
)
BATCH = 10_000

Row = Tuple[Optional[str], ...]


class MissingParquetSupport(RuntimeError):
    """Parquet needs pyarrow, which ``pip install 'bearlumen[export]'`` brings."""


def _rows(conn: Connection, start_us: int, end_us: int, tenant: Optional[str]) -> Iterator[Row]:
    names: Dict[int, str] = dict(conn.execute(select(tenants.c.id, tenants.c.name)).tuples().all())
    ev = usage_events.c
    query = select(
        ev.public_id,
        ev.tenant_id,
        ev.ts_us,
        ev.received_us,
        ev.event_type,
        ev.metric_name,
        ev.quantity_micro,
        ev.cost_pico,
        ev.model,
        ev.agent_id,
        ev.workflow_id,
        ev.subscription_id,
        ev.end_user_id,
        ev.idempotency_key,
        ev.metadata,
    ).where(ev.ts_us >= start_us, ev.ts_us < end_us)
    if tenant is not None:
        ids = [tid for tid, name in names.items() if name == tenant]
        if not ids:
            raise LookupError(f"No tenant named {tenant!r}.")
        query = query.where(ev.tenant_id == ids[0])
    result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(
        query.order_by(ev.tenant_id, ev.ts_us, ev.id)
    )
    for r in result:
        yield (
            r.public_id,
            names[r.tenant_id],
            format_ts(r.ts_us),
            format_ts(r.received_us),
            r.event_type,
            r.metric_name,
            format_quantity(r.quantity_micro),
            None if r.cost_pico is None else format_money(r.cost_pico),
            r.model,
            r.agent_id,
            r.workflow_id,
            r.subscription_id,
            r.end_user_id,
            r.idempotency_key,
            r.metadata,
        )


def export_events(
    db: Database,
    out: IO[Any],
    fmt: str,
    start_us: int,
    end_us: int,
    *,
    tenant: Optional[str] = None,
) -> int:
    """Write the events with ``start_us <= ts < end_us`` to ``out`` (text for csv/jsonl, binary for
    parquet); return how many. LookupError for an unknown tenant; MissingParquetSupport without pyarrow."""
    check_format(fmt)
    writer = _parquet_writer(out) if fmt == "parquet" else None

    def run(conn: Connection) -> int:
        rows = _rows(conn, start_us, end_us, tenant)
        if writer is not None:
            return int(writer(rows))
        if fmt == "csv":
            return _csv(out, rows)
        return _jsonl(out, rows)

    return db.read(run)


def _csv(out: IO[str], rows: Iterator[Row]) -> int:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(row)  # None -> empty field
        count += 1
    return count


def _jsonl(out: IO[str], rows: Iterator[Row]) -> int:
    metadata = COLUMNS.index("metadata")
    count = 0
    for row in rows:
        item: Dict[str, Any] = dict(zip(COLUMNS, row))
        item["metadata"] = orjson.Fragment(row[metadata] or "{}")  # already JSON: no re-parse
        out.write(orjson.dumps(item).decode())
        out.write("\n")
        count += 1
    return count


def check_format(fmt: str) -> None:
    """ValueError for an unknown format; MissingParquetSupport for parquet without pyarrow."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of: {', '.join(FORMATS)}")
    if fmt == "parquet":
        _pyarrow()


def _pyarrow() -> Tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingParquetSupport(
            "Parquet export needs pyarrow: pip install 'bearlumen[export]' (or export csv or jsonl)."
        ) from None
    return pa, pq


def _parquet_writer(out: IO[bytes]) -> Any:
    pa, pq = _pyarrow()
    schema = pa.schema([pa.field(name, pa.string(), nullable=name != "id") for name in COLUMNS])

    def write(rows: Iterator[Row]) -> int:
        count = 0
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            batch: List[Row] = []
            for row in rows:
                batch.append(row)
                if len(batch) == BATCH:
                    count += _flush(pa, writer, schema, batch)
            count += _flush(pa, writer, schema, batch)
        return count

    return write


def _flush(pa: Any, writer: Any, schema: Any, batch: List[Row]) -> int:
    if not batch:
        return 0
    columns = [pa.array(list(column), type=pa.string()) for column in zip(*batch)]
    writer.write_batch(pa.RecordBatch.from_arrays(columns, schema=schema))
    size = len(batch)
    batch.clear()
    return size
