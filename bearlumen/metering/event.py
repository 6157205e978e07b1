"""An :class:`LLMCall` becomes a usage event (the body of one item of `usage.record_batch`).

Runs on the exporter's thread, never on the caller's: pricing costs tens of microseconds.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, Optional

from bearlumen.metering.pricing import Price, PriceBook
from bearlumen.metering.record import LLMCall

EVENT_TYPE = "token_usage"
METRIC_NAME = "llm_tokens"
# The pricing status of a cost the caller stated (bearlumen.track(..., cost_usd=...)).
PRICED_BY_CALLER = "caller_price"

# Providers that answer with the same response ids: an Azure or Bedrock response id is still the
# vendor's, and a LangChain callback reports the vendor's id too.
_VENDOR = {"azure": "openai", "aws": "anthropic", "bedrock": "anthropic", "vertex": "anthropic"}


def idempotency_key(call: LLMCall) -> str:
    """Stable for one provider response, so reporting it twice records it once; random without an id."""
    if call.response_id:
        vendor = _VENDOR.get(call.provider, call.provider)
        digest = hashlib.sha256(f"{vendor}:{call.response_id}".encode()).hexdigest()
        return f"llm_{digest[:40]}"
    return f"llm_{uuid.uuid4().hex}"


def build_event(call: LLMCall, prices: PriceBook, key: str) -> Dict[str, Any]:
    """The usage event for `call`, priced with `prices`, with idempotency key `key`.

    The key is passed in (not derived here) because it must be fixed when the call is first accepted,
    before any attempt to deliver it.
    """
    model = billed_model(call.provider, call.model, call.model_requested)
    facts = price_facts(call)
    if call.cost_usd is not None:
        price = Price(call.cost_usd, PRICED_BY_CALLER, "caller", model)
    else:
        price = prices.price(call.provider, model, call.usage, call.timestamp, **facts)
    metadata: Dict[str, Any] = dict(call.attribution.metadata)
    metadata.update(call.extra)
    metadata.update(
        {
            "integration": call.integration,
            "provider": call.provider,
            "operation": call.operation,
            "model": model,
            "model_requested": call.model_requested,
            "streamed": call.streamed,
            "usage_source": call.usage_source,
            "pricing_status": price.status,
            "pricing_source": price.source,
            "pricing_model": price.model_ref,
        }
    )
    if call.model and call.model != model:
        metadata["model_returned"] = call.model
    if call.tier is not None:
        metadata["tier"] = call.tier
    if call.api_url is not None:
        metadata["api_url"] = call.api_url
    provider_id = getattr(price, "provider_id", None)
    if provider_id is not None:
        metadata["pricing_provider"] = provider_id
    if call.latency_ms is not None:
        metadata["latency_ms"] = round(call.latency_ms, 3)
    if call.response_id:
        metadata["response_id"] = call.response_id
    if call.usage is not None:
        metadata.update(call.usage.as_metadata())
    if price.cost_usd is not None:
        metadata["provider_cost_usd"] = _plain(price.cost_usd)
    event: Dict[str, Any] = {
        "event_type": EVENT_TYPE,
        "metric_name": METRIC_NAME,
        "quantity": call.usage.total_tokens if call.usage is not None else 0,
        "idempotency_key": key,
        "timestamp": datetime.fromtimestamp(call.timestamp, tz=timezone.utc).isoformat(),
        "metadata": metadata,
    }
    attribution = call.attribution
    for name in ("agent_id", "workflow_id", "end_user_id", "subscription_id"):
        value = getattr(attribution, name)
        if value is not None:
            event[name] = value
    return event


def price_facts(call: LLMCall) -> Dict[str, Any]:
    """The keyword facts of `PriceBook.price` that `call` has. Only those are passed: a price book of
    another shape (the exporter's fallback) still prices the common call."""
    facts: Dict[str, Any] = {}
    if call.tier is not None:
        facts["tier"] = call.tier
    if call.api_url is not None:
        facts["api_url"] = call.api_url
    return facts


def billed_model(provider: str, model: Optional[str], model_requested: Optional[str]) -> Optional[str]:
    """The model the provider bills for, which is the one priced and reported as `model`.

    Bedrock bills the model id (or inference profile) the request named: `global.` / `us.` / `eu.` /
    `apac.` profiles have their own prices, and the response body names only the underlying model. An
    ARN is billed as its last path segment (a system profile id; an application profile's id is unknown
    to any price list and needs a pricing alias). Everyone else bills the model the response names (a
    dated snapshot, the model behind an Azure deployment), else the requested one.
    """
    if provider in ("aws", "bedrock") and model_requested:
        return model_requested.rsplit("/", 1)[-1] if model_requested.startswith("arn:") else model_requested
    return model or model_requested


def _plain(amount: Any) -> str:
    """A Decimal as a plain decimal string ("0.00030735"), exact, never in exponent notation."""
    text = format(amount, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
