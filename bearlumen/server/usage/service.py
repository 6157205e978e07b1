"""The usage and cost-attribution operations behind the HTTP routes (run in worker threads)."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from bearlumen.server.db import Database
from bearlumen.server.errors import FieldError, invalid
from bearlumen.server.fields import check_fields, range_us, text
from bearlumen.server.ids import key_digest
from bearlumen.server.jsonio import loads_body
from bearlumen.server.timefmt import now_us
from bearlumen.server.usage import reports
from bearlumen.server.usage.autoregister import register_end_users, registrable
from bearlumen.server.usage.events import fetch_event, query_events
from bearlumen.server.usage.ingest import record_events, resolve_end_users, validate_batch
from bearlumen.server.usage.totals import DIMENSIONS, GROUPS
from bearlumen.server.usage.validate import InexactNumber, validate_event

__all__ = [
    "FILTERS",
    "aggregation",
    "attribution",
    "attribution_values",
    "query",
    "record_batch",
    "record_one",
    "summary",
]

FILTERS = ("subscription_id", "end_user_id", "metric_name", "event_type", "agent_id", "workflow_id")
Params = Mapping[str, Optional[str]]


def record_one(db: Database, tenant_id: int, raw: bytes) -> Dict[str, Any]:
    try:
        event = validate_event(loads_body(raw), now_us())
    except InexactNumber:
        event = validate_event(loads_body(raw, exact=True), now_us())
    if event.end_user_id is not None:
        resolved = db.read(lambda conn: resolve_end_users(conn, tenant_id, {event.end_user_id or ""}))
        if event.end_user_id not in resolved and registrable(event.end_user_id):  # autoregister.py
            resolved = register_end_users(db, tenant_id, {event.end_user_id})
        if event.end_user_id not in resolved:
            raise FieldError("not_found", "No such end user.", "end_user_id", 404)
        event = event._replace(end_user_id=resolved[event.end_user_id])
    outcome = record_events(db, tenant_id, [event])[0]
    stored = db.read(lambda conn: fetch_event(conn, tenant_id, key_digest(event.idempotency_key)))
    return {"recorded": outcome.recorded, "idempotencyKey": outcome.idempotency_key, "event": stored}


def record_batch(db: Database, tenant_id: int, raw: bytes) -> Dict[str, Any]:
    body = loads_body(raw)
    check_fields(body, ("events",))
    try:
        events = validate_batch(body.get("events"), db, tenant_id)
    except InexactNumber:
        events = validate_batch(loads_body(raw, exact=True).get("events"), db, tenant_id)
    outcomes = record_events(db, tenant_id, events)
    recorded = sum(1 for o in outcomes if o.recorded)
    return {
        "recorded_count": recorded,
        "skipped_count": len(outcomes) - recorded,
        "results": [
            {"index": i, "idempotencyKey": o.idempotency_key, "recorded": o.recorded, "id": o.public_id}
            for i, o in enumerate(outcomes)
        ],
    }


def _filters(db: Database, tenant_id: int, params: Params) -> Dict[str, str]:
    filters = {name: text(params[name], name) for name in FILTERS if params.get(name) is not None}
    ref = filters.get("end_user_id")
    if ref is not None:  # an external id works as a filter too; an unknown one simply matches nothing
        filters["end_user_id"] = db.read(lambda conn: resolve_end_users(conn, tenant_id, {ref})).get(ref, ref)
    return filters


def query(
    db: Database, tenant_id: int, params: Params, limit: int, offset: int, cursor: Optional[str] = None
) -> Dict[str, Any]:
    span = range_us(params.get("start_date"), params.get("end_date"))
    filters = _filters(db, tenant_id, params)
    return db.read(
        lambda conn: query_events(
            conn,
            tenant_id,
            filters=filters,
            start_us=span[0],
            end_us=span[1],
            limit=limit,
            offset=offset,
            cursor=cursor,
        )
    )


def aggregation(db: Database, tenant_id: int, params: Params) -> Dict[str, Any]:
    span = range_us(params.get("start_date"), params.get("end_date"))
    group_by = params.get("group_by") or "metric_name"
    if group_by not in GROUPS:
        raise invalid(f"group_by must be one of: {', '.join(GROUPS)}.", "group_by")
    filters = _filters(db, tenant_id, params)
    return db.read(lambda conn: reports.aggregation(conn, tenant_id, filters, span, group_by))


def summary(db: Database, tenant_id: int, params: Params) -> Dict[str, Any]:
    span = range_us(params.get("start_date"), params.get("end_date"))
    filters = _filters(db, tenant_id, params)
    return db.read(lambda conn: reports.summary(conn, tenant_id, filters, span))


def _required_span(params: Params) -> tuple[int, int]:
    start, end = range_us(params.get("start_date"), params.get("end_date"), required=True)
    assert start is not None and end is not None
    return start, end


def attribution(db: Database, tenant_id: int, dimension: str, params: Params) -> Dict[str, Any]:
    span = _required_span(params)
    return db.read(lambda conn: reports.attribution(conn, tenant_id, dimension, span))


def attribution_values(db: Database, tenant_id: int, dimension: str, params: Params) -> Dict[str, Any]:
    span = _required_span(params)
    return {"values": db.read(lambda conn: reports.attribution_values(conn, tenant_id, dimension, span))}


assert set(FILTERS) <= set(DIMENSIONS)
