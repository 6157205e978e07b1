"""Reading events back: the Event object of docs/api.md and the paginated query.

Pages follow (timestamp, row id). ``offset`` makes the database walk and discard every skipped row, so a
deep offset costs as much as reading everything before it; a cursor (``nextCursor`` of the previous page,
the position of its last row) starts the next page by a range seek on the (tenant, timestamp, id) index,
as fast at row 10 million as at row 0 (benchmarks/big_history.py).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Dict, List, Mapping, Optional, Tuple

import orjson
from sqlalchemy import select, tuple_
from sqlalchemy.engine import Connection

from bearlumen.server.errors import invalid
from bearlumen.server.money import format_money, quantity_json
from bearlumen.server.schema import usage_event_keys, usage_events
from bearlumen.server.timefmt import format_ts
from bearlumen.server.usage.totals import totals

__all__ = ["decode_cursor", "encode_cursor", "event_json", "fetch_event", "query_events"]

_ev = usage_events.c
_COLUMNS = (
    _ev.id,
    _ev.public_id,
    _ev.event_type,
    _ev.metric_name,
    _ev.quantity_micro,
    _ev.idempotency_key,
    _ev.agent_id,
    _ev.workflow_id,
    _ev.subscription_id,
    _ev.end_user_id,
    _ev.ts_us,
    _ev.received_us,
    _ev.cost_pico,
    _ev.metadata,
)


def event_json(row: Any) -> Dict[str, Any]:  # a Row of _COLUMNS
    return {
        "id": row.public_id,
        "eventType": row.event_type,
        "metricName": row.metric_name,
        "quantity": quantity_json(row.quantity_micro),
        "idempotencyKey": row.idempotency_key,
        "agentId": row.agent_id,
        "workflowId": row.workflow_id,
        "subscriptionId": row.subscription_id,
        "endUserId": row.end_user_id,
        "timestamp": format_ts(row.ts_us),
        "receivedAt": format_ts(row.received_us),
        "providerCostUsd": None if row.cost_pico is None else format_money(row.cost_pico),
        "metadata": orjson.Fragment(row.metadata),  # stored as the JSON we validated: no re-parse
    }


def fetch_event(conn: Connection, tenant_id: int, digest: bytes) -> Optional[Dict[str, Any]]:
    """The stored event with this idempotency-key digest (None once pruned).

    SQLite finds it through the events' unique index; PostgreSQL through usage_event_keys, whose ``ts_us``
    picks the partition and the (tenant, ts_us) index entry."""
    query = select(*_COLUMNS).where(_ev.tenant_id == tenant_id, _ev.key_hash == digest)
    if conn.dialect.name != "sqlite":
        k = usage_event_keys.c
        query = query.join(
            usage_event_keys,
            (k.tenant_id == _ev.tenant_id) & (k.ts_us == _ev.ts_us) & (k.public_id == _ev.public_id),
        ).where(k.tenant_id == tenant_id, k.key_hash == digest)
    row = conn.execute(query).first()
    return None if row is None else event_json(row)


def encode_cursor(ts_us: int, row_id: int) -> str:
    """An opaque position: just after the row (ts_us, row_id)."""
    return base64.urlsafe_b64encode(f"{ts_us}.{row_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Tuple[int, int]:
    """(ts_us, row id) of a cursor from ``encode_cursor``; FieldError ``invalid_request`` otherwise."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        ts_text, id_text = text.split(".")
        if not (ts_text.isdigit() and id_text.isdigit()):
            raise ValueError(text)
        position = int(ts_text), int(id_text)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise invalid("cursor is not a nextCursor this service returned.", "cursor") from None
    if max(position) >= 2**63:
        raise invalid("cursor is not a nextCursor this service returned.", "cursor")
    return position


def query_events(
    conn: Connection,
    tenant_id: int,
    *,
    filters: Mapping[str, str],
    start_us: Optional[int],
    end_us: Optional[int],
    limit: int,
    offset: int,
    cursor: Optional[str] = None,
) -> Dict[str, Any]:
    """A page of events ordered by (timestamp, id), with the total taken from the rollups.

    ``cursor`` starts the page just after that position (``offset`` then counts from there);
    ``nextCursor`` is the position of the page's last event when more events follow, else None."""
    query = select(*_COLUMNS).where(_ev.tenant_id == tenant_id, *[_ev[k] == v for k, v in filters.items()])
    if start_us is not None:
        query = query.where(_ev.ts_us >= start_us)
    if end_us is not None:
        query = query.where(_ev.ts_us < end_us)
    if cursor is not None:
        after_ts, after_id = decode_cursor(cursor)
        # the plain bound lets every planner seek the index; the row comparison is the exact condition
        query = query.where(_ev.ts_us >= after_ts, tuple_(_ev.ts_us, _ev.id) > tuple_(after_ts, after_id))
    rows = conn.execute(query.order_by(_ev.ts_us, _ev.id).limit(limit + 1).offset(offset)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    events: List[Dict[str, Any]] = [event_json(row) for row in rows]
    counted = totals(conn, tenant_id, filters=filters, start_us=start_us, end_us=end_us)
    total = sum(t.event_count for t in counted.values())
    next_cursor = encode_cursor(rows[-1].ts_us, rows[-1].id) if more else None
    return {"events": events, "total": total, "limit": limit, "offset": offset, "nextCursor": next_cursor}
