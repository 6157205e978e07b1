"""Reading events back: the Event object of docs/api.md and the paginated query."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from bearlumen.server.money import format_money, quantity_json
from bearlumen.server.schema import usage_event_keys, usage_events
from bearlumen.server.timefmt import format_ts
from bearlumen.server.usage.totals import totals

__all__ = ["event_json", "fetch_event", "query_events"]

_ev = usage_events.c
_COLUMNS = (
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


def query_events(
    conn: Connection,
    tenant_id: int,
    *,
    filters: Mapping[str, str],
    start_us: Optional[int],
    end_us: Optional[int],
    limit: int,
    offset: int,
) -> Dict[str, Any]:
    """A page of events ordered by (timestamp, id), with the total taken from the rollups."""
    query = select(*_COLUMNS).where(_ev.tenant_id == tenant_id, *[_ev[k] == v for k, v in filters.items()])
    if start_us is not None:
        query = query.where(_ev.ts_us >= start_us)
    if end_us is not None:
        query = query.where(_ev.ts_us < end_us)
    rows = conn.execute(query.order_by(_ev.ts_us, _ev.id).limit(limit).offset(offset))
    events: List[Dict[str, Any]] = [event_json(row) for row in rows]
    counted = totals(conn, tenant_id, filters=filters, start_us=start_us, end_us=end_us)
    total = sum(t.event_count for t in counted.values())
    return {"events": events, "total": total, "limit": limit, "offset": offset}
