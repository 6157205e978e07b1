"""One usage event as sent by a client -> an ``EventIn`` ready to store, or a FieldError.

Written as straight-line checks rather than a schema library: ingestion validates up to 1000 events per
request and this is on the hot path.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

from bearlumen.server.errors import FieldError, invalid
from bearlumen.server.fields import metadata_json, text
from bearlumen.server.ids import new_id
from bearlumen.server.money import MAX_COST_USD, MAX_QUANTITY, parse_cost, parse_quantity
from bearlumen.server.timefmt import MAX_US, parse_ts
from bearlumen.server.usage.pricing import PENDING, price_pending

__all__ = ["CLIENT_TIMESTAMP", "EVENT_FIELDS", "MAX_FUTURE_US", "EventIn", "InexactNumber", "validate_event"]

EVENT_FIELDS = frozenset(
    {
        "event_type",
        "metric_name",
        "quantity",
        "idempotency_key",
        "agent_id",
        "workflow_id",
        "subscription_id",
        "end_user_id",
        "timestamp",
        "metadata",
    }
)
MAX_FUTURE_US = 5 * 60 * 1_000_000  # clock drift allowance, as Stripe and Orb allow
CLIENT_TIMESTAMP = "client_timestamp"  # metadata key of a re-stamped event's own timestamp


class InexactNumber(Exception):
    """A quantity or cost arrived as a binary float: parse the body again with exact decimals."""


class EventIn(NamedTuple):
    """A validated event. ``end_user_id`` is still the client's reference (id or external id)."""

    idempotency_key: str
    event_type: str
    metric_name: str
    quantity_micro: int
    cost_pico: Optional[int]  # None: unpriced
    agent_id: Optional[str]
    workflow_id: Optional[str]
    subscription_id: Optional[str]
    end_user_id: Optional[str]
    model: Optional[str]
    ts_us: int
    metadata: str  # JSON text as stored


def validate_event(raw: Any, now_us: int) -> EventIn:
    if type(raw) is not dict:
        raise invalid("Each event must be a JSON object.")
    if not EVENT_FIELDS.issuperset(raw):
        unknown = sorted(k for k in raw if k not in EVENT_FIELDS)[0]
        raise invalid(f"Unknown field {unknown!r}.", unknown)
    get = raw.get
    key = get("idempotency_key")
    metadata = get("metadata")
    cost, model, pending = _cost_and_model(metadata)
    ts_us = _timestamp(get("timestamp"), now_us)
    if ts_us is None:  # a client clock ahead: re-stamped, the client's time kept (see _timestamp)
        ts_us = now_us
        if metadata is None or isinstance(metadata, dict):
            metadata = {**(metadata or {}), CLIENT_TIMESTAMP: get("timestamp")}
    if pending and isinstance(metadata, dict):  # priced by the service, at the stored time: pricing.py
        metadata, cost = price_pending(metadata, ts_us)
    return EventIn._make(  # _make skips the generated __new__ (hot path: one call per event)
        (
            new_id("auto") if key is None else _name(key, "idempotency_key", 255),
            _name(get("event_type"), "event_type", 100),
            _name(get("metric_name"), "metric_name", 100),
            _quantity(get("quantity")),
            cost,
            _optional(get("agent_id"), "agent_id"),
            _optional(get("workflow_id"), "workflow_id"),
            _optional(get("subscription_id"), "subscription_id"),
            _optional(get("end_user_id"), "end_user_id"),
            model,
            ts_us,
            metadata_json(metadata),
        )
    )


def _name(value: Any, param: str, max_len: int) -> str:
    # Inline fast path for plain ASCII names; `fields.text` gives the precise error (or accepts Unicode).
    if type(value) is str and 0 < len(value) <= max_len and value.isascii() and "\x00" not in value:
        return value
    return text(value, param, max_len)


def _optional(value: Any, param: str) -> Optional[str]:
    return None if value is None else _name(value, param, 255)


def _quantity(value: Any) -> int:
    if type(value) is float:
        raise InexactNumber
    micro = parse_quantity(value)
    if micro is None:
        raise FieldError(
            "invalid_quantity",
            f"quantity must be a finite number from 0 to {MAX_QUANTITY:.0e} with at most 6 decimal places.",
            "quantity",
        )
    return micro


def _timestamp(value: Any, now_us: int) -> Optional[int]:
    """The event time in µs; None when it is more than ``MAX_FUTURE_US`` ahead of the service's clock.

    Clock tolerance: a client clock that runs behind is harmless (an event may also arrive late after
    an outage), so any time since 1970 is kept as sent. Up to 5 minutes ahead is kept as sent too (clock
    drift, as Stripe and Orb allow). Further ahead the client's clock is wrong, but the call it metered
    happened and is billable: the event is re-stamped with the time the service received it, and the
    client's timestamp is kept in ``metadata.client_timestamp``. Only a malformed time or one before
    1970 is invalid.
    """
    if value is None:
        return now_us
    micros = parse_ts(value) if isinstance(value, str) else None
    if micros is None:
        raise FieldError(
            "invalid_timestamp",
            "timestamp must be an ISO 8601 date-time string (no zone means UTC).",
            "timestamp",
        )
    if micros < 0:
        raise FieldError("invalid_timestamp", "timestamp is before 1970-01-01.", "timestamp")
    if micros > MAX_US:  # no real clock is there: a malformed time, not a fast one
        raise FieldError(
            "invalid_timestamp", "timestamp is after 9999-12-31T23:59:59.999999Z (in UTC).", "timestamp"
        )
    if micros > now_us + MAX_FUTURE_US:
        return None
    return micros


def _cost_and_model(metadata: Any) -> tuple[Optional[int], Optional[str], bool]:
    """The event's cost (None: unpriced), ``metadata.model``, and whether the service is to price it
    (``pricing_status: "pending"`` without a ``provider_cost_usd``); the metadata itself is checked later."""
    if not isinstance(metadata, dict):
        return None, None, False
    cost: Optional[int] = None
    raw_cost = metadata.get("provider_cost_usd")
    if type(raw_cost) is float:
        raise InexactNumber
    if raw_cost is not None:
        cost = parse_cost(raw_cost)
        if cost is None:
            raise invalid(
                f"metadata.provider_cost_usd must be a number or decimal string from 0 to {MAX_COST_USD}.",
                "metadata.provider_cost_usd",
            )
    status = metadata.get("pricing_status")
    if status == "unpriced":
        cost = None
    model = _optional(metadata.get("model"), "metadata.model")
    return cost, model, status == PENDING and raw_cost is None
