"""``POST /v1/traces``: the spans of one OTLP export request -> usage events, stored like REST events.

Runs in a worker thread. The request is decoded whole first: a malformed one answers 400 and stores nothing.
Each model-call span then becomes one event through the SDK's own event builder and price book
(``bearlumen.metering.event.build_event``), is validated by the REST API's validator and recorded by its
ingest path (``bearlumen.server.usage.ingest.record_events``: one transaction, idempotent). A model-call
span that cannot be billed (a bad token count, an attribution value too long, an end user id of another
shape) is refused alone and counted in ``partial_success``; the other spans of the request are recorded.

Idempotency key (docs/api.md, "OpenTelemetry"): a span with ``gen_ai.response.id`` gets the key the SDK gives
the same provider response (``llm_<sha256(vendor:response_id)>``), so an app that sends both OTel spans and
SDK events is billed once for each call, whichever arrives first; a span without a response id gets
``otel_<trace id><span id>``, stable across exporter retries.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Set, Tuple

from bearlumen.metering.event import build_event, idempotency_key
from bearlumen.metering.pricing import PriceBook
from bearlumen.server.db import Database
from bearlumen.server.errors import FieldError
from bearlumen.server.otlp import spans
from bearlumen.server.otlp.wire import Answer, Malformed, decode, error_answer, success_answer
from bearlumen.server.timefmt import now_us
from bearlumen.server.usage.autoregister import register_end_users, registrable
from bearlumen.server.usage.ingest import record_events, resolve_end_users
from bearlumen.server.usage.pricing import price_book
from bearlumen.server.usage.validate import EventIn, validate_event

__all__ = ["Result", "export"]

logger = logging.getLogger("bearlumen.server")


class Result:
    """What one request did: events recorded / already stored, spans refused (and the first reason)."""

    def __init__(self) -> None:
        self.recorded = 0
        self.duplicates = 0
        self.rejected = 0
        self.reason = ""

    def refuse(self, reason: str) -> None:
        self.rejected += 1
        self.reason = self.reason or reason


def export(
    db: Database, tenant_id: int, body: bytes, kind: Optional[str], encoding: Optional[str]
) -> Tuple[Answer, Result]:
    result = Result()
    try:
        request = decode(body, kind, encoding)
    except Malformed as exc:
        return error_answer(kind, exc.status, str(exc)), result
    events = _events(request, result)
    if events:
        events = _resolve_end_users(db, tenant_id, events, result)
    if events:
        outcomes = record_events(db, tenant_id, events)
        result.recorded = sum(1 for o in outcomes if o.recorded)
        result.duplicates = len(outcomes) - result.recorded
    message = f"{result.rejected} spans were refused: {result.reason}" if result.rejected else ""
    return success_answer(kind, result.rejected, message), result


def _events(request: Any, result: Result) -> List[EventIn]:
    prices = price_book()
    now = now_us()
    events: List[EventIn] = []
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes, resource=True)
        service_name = resource.get("service.name")
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                attributes = _attributes(span.attributes)
                if not spans.is_model_call(attributes):
                    continue  # the common case, decided from a handful of attribute names
                try:
                    event = _event(span, attributes, resource, service_name, scope, prices, now)
                except (spans.NotBillable, FieldError) as exc:
                    result.refuse(str(exc))
                    continue
                except Exception:  # an input no rule foresaw refuses its span, never the request (no 5xx)
                    logger.debug("bearlumen: unreadable model-call span", exc_info=True)
                    result.refuse("a span could not be read")
                    continue
                if event is not None:
                    events.append(event)
    return events


def _event(
    span: Any,
    attributes: Dict[str, Any],
    resource: Dict[str, Any],
    service_name: Any,
    scope: str,
    prices: PriceBook,
    now: int,
) -> Optional[EventIn]:
    trace_id, span_id = span.trace_id.hex(), span.span_id.hex()
    extra: Dict[str, Any] = {"otel_trace_id": trace_id, "otel_span_id": span_id}
    if scope:
        extra["otel_scope"] = scope
    if isinstance(service_name, str) and service_name:
        extra["service_name"] = service_name
    call, response_id = spans.llm_call(attributes, resource, span.end_time_unix_nano, extra)
    if call is None:
        return None
    if response_id:
        key = idempotency_key(call)
    elif len(trace_id) == 32 and len(span_id) == 16:
        key = f"otel_{trace_id}{span_id}"
    else:
        raise spans.NotBillable("a span needs a 16-byte trace id and an 8-byte span id")
    return validate_event(build_event(call, prices, key), now)


_RESOURCE_WANTED = spans.WANTED | {"service.name"}


def _attributes(pairs: Any, *, resource: bool = False) -> Dict[str, Any]:
    """The attributes the mapper reads, as plain values (the others are not decoded at all)."""
    found: Dict[str, Any] = {}
    wanted = _RESOURCE_WANTED if resource else spans.WANTED
    for pair in pairs:
        key = pair.key
        if key in wanted:
            value = pair.value
            kind = value.WhichOneof("value")
            if kind in ("string_value", "int_value", "double_value", "bool_value"):
                found[key] = getattr(value, kind)
    return found


def _resolve_end_users(db: Database, tenant_id: int, events: List[EventIn], result: Result) -> List[EventIn]:
    """Events with their end-user reference resolved (registered on first use, as REST events are); an
    event naming an unknown end user that cannot be registered is refused."""
    refs: Set[str] = {e.end_user_id for e in events if e.end_user_id is not None}
    if not refs:
        return events
    resolved = db.read(lambda conn: resolve_end_users(conn, tenant_id, refs))
    unknown = {ref for ref in refs - set(resolved) if registrable(ref)}
    if unknown:
        resolved.update(register_end_users(db, tenant_id, unknown))
    kept = []
    for event in events:
        if event.end_user_id is None:
            kept.append(event)
        elif event.end_user_id in resolved:
            kept.append(event._replace(end_user_id=resolved[event.end_user_id]))
        else:
            result.refuse("No such end user.")
    return kept
