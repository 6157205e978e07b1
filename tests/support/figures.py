"""What the integration tests read off a recorded call: its four main token buckets and its cost."""

from __future__ import annotations

from decimal import Decimal
from typing import Optional, Tuple

from bearlumen.metering.event import build_event
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall


def buckets(call: LLMCall) -> Tuple[int, int, int, int]:
    """(uncached input, cache read, cache write, output)."""
    assert call.usage is not None
    usage = call.usage
    return usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens


def cost(call: LLMCall) -> Optional[Decimal]:
    """The event's provider cost as the exporter prices it (None: unpriced)."""
    value = build_event(call, PriceBook(), "key")["metadata"].get("provider_cost_usd")
    return None if value is None else Decimal(value)
