"""Service-side pricing: an event that asks for it (`metadata.pricing_status: "pending"`) is priced on ingest.

Clients without a price list (the Node SDK) send the facts a cost is computed from, in the Python SDK's
metadata layout (``bearlumen/metering/event.py``): the token buckets, ``provider``, the billed ``model``, the
served ``tier``, an OpenAI-compatible host's ``api_url``, and the call's ``timestamp``, which is the price
date. The service prices them with the very price book the Python SDK and the OTLP endpoint use
(``PriceBook.from_config()``: genai-prices with the operator's ``$BEARLUMEN_PRICING_FILE`` over it), so the
stored cost and pricing fields are the ones the Python SDK would have sent, to the last digit. A model
without a price is stored ``unpriced`` with the reason, never at 0.

Opt-in on purpose: an event without ``"pending"`` is stored exactly as before, and costs nothing here; an
event with an explicit ``provider_cost_usd`` is never priced (validate.py does not call this for it).
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Optional, Tuple

from bearlumen.metering.event import _plain
from bearlumen.metering.pricing import UNPRICED, Price, PriceBook
from bearlumen.metering.record import BUCKETS, PART_BUCKETS, TokenUsage
from bearlumen.server.errors import invalid
from bearlumen.server.money import MAX_COST_USD, MAX_QUANTITY, parse_cost

__all__ = ["PENDING", "price_book", "price_pending"]

PENDING = "pending"  # metadata.pricing_status of an event the client asks the service to price

_prices: Optional[PriceBook] = None
_prices_lock = threading.Lock()


def price_book() -> PriceBook:
    """The service's price book: genai-prices with the operator's ``$BEARLUMEN_PRICING_FILE`` laid over it
    (aliases, negotiated prices), as the SDK builds it. One per process, so its cached rates (per model,
    tier and date: ``bearlumen/metering/rates.py``) serve every request."""
    global _prices
    if _prices is None:
        with _prices_lock:
            if _prices is None:
                _prices = PriceBook.from_config()
    return _prices


def price_pending(metadata: Dict[str, Any], ts_us: int) -> Tuple[Dict[str, Any], Optional[int]]:
    """(the metadata with the pricing fields the Python SDK sets, the cost in pico-dollars or None).

    Raises a FieldError (400) for facts no client can mean: a token count that is not a whole number from
    0 to 1e12, a ``provider`` / ``tier`` / ``api_url`` that is not a string, or a cost past the maximum.
    """
    usage = _usage(metadata)
    facts: Dict[str, Any] = {}
    for name in ("provider", "tier", "api_url"):
        value = metadata.get(name)
        if value is not None and type(value) is not str:
            raise invalid(f"metadata.{name} must be a string.", f"metadata.{name}")
        if value is not None and name != "provider":
            facts[name] = value
    provider = metadata.get("provider") or "unknown"
    model = metadata.get("model")  # checked by validate.py (a string of 1..255 characters, or absent)
    try:
        price = price_book().price(provider, model, usage, ts_us / 1_000_000, **facts)
    except Exception:  # the engine failing on one event must not lose it, nor answer 5xx
        price = Price(None, UNPRICED, "pricing error", model)
    priced = dict(metadata)
    priced.update(pricing_status=price.status, pricing_source=price.source, pricing_model=price.model_ref)
    if price.provider_id is not None:
        priced["pricing_provider"] = price.provider_id
    if price.cost_usd is None:
        return priced, None
    cost = _plain(price.cost_usd)
    pico = parse_cost(cost)
    if pico is None:
        raise invalid(
            f"The priced cost {cost} USD is past the maximum of {MAX_COST_USD}: check the token counts.",
            "metadata.provider_cost_usd",
        )
    priced["provider_cost_usd"] = cost
    return priced, pico


def _usage(metadata: Dict[str, Any]) -> Optional[TokenUsage]:
    """The buckets, each a whole number from 0 to 1e12 (None: the event has none, so it is unpriced)."""
    values: Dict[str, int] = {}
    for name in BUCKETS + PART_BUCKETS:
        value = metadata.get(name)
        if value is None:
            continue
        if type(value) is not int or not 0 <= value <= MAX_QUANTITY:
            raise invalid(
                f"metadata.{name} must be a whole number from 0 to {MAX_QUANTITY:.0e}.", f"metadata.{name}"
            )
        values[name] = value
    if not any(name in values for name in BUCKETS):
        return None
    return TokenUsage(**values)
