"""What an LLM call becomes: token buckets, cost, and the usage event that carries them."""

from bearlumen.metering.record import (
    USAGE_FROM_RESPONSE,
    USAGE_FROM_STREAM,
    USAGE_PARTIAL_STREAM,
    USAGE_UNAVAILABLE,
    Collector,
    LLMCall,
    Sink,
    TokenUsage,
    active_collector,
    emit,
    get_sink,
    set_sink,
)

__all__ = [
    "USAGE_FROM_RESPONSE",
    "USAGE_FROM_STREAM",
    "USAGE_PARTIAL_STREAM",
    "USAGE_UNAVAILABLE",
    "Collector",
    "LLMCall",
    "Sink",
    "TokenUsage",
    "active_collector",
    "emit",
    "get_sink",
    "set_sink",
]
