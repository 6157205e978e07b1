"""What one billable LLM call is, and how it leaves the caller's thread.

Integrations build an :class:`LLMCall` and hand it to :func:`emit`. That is all the caller's thread pays
for: pricing, the idempotency key and JSON happen later on the exporter's thread
(:mod:`bearlumen.metering.event`).
"""

from __future__ import annotations

import contextvars
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, Mapping, Optional, Tuple

from typing_extensions import Protocol

from bearlumen.scopes import Attribution, current_attribution

logger = logging.getLogger("bearlumen")

# How usage was learned. Only "response" and "stream" are complete; the others say so on the event.
USAGE_FROM_RESPONSE = "response"
USAGE_FROM_STREAM = "stream"  # a stream that reached its end (or its final usage event)
USAGE_PARTIAL_STREAM = "stream_partial"  # a stream closed early: the usage seen so far
USAGE_UNAVAILABLE = "unavailable"  # the provider reported none (e.g. a stream without include_usage)


@dataclass(frozen=True)
class TokenUsage:
    """Token counts in non-overlapping buckets, so that pricing can never count a token twice.

    The five main buckets do not overlap and add up to `total_tokens`:

    - `input_tokens` is uncached input only: OpenAI's `prompt_tokens` include cached tokens, so the
      OpenAI integration subtracts them; Anthropic's `input_tokens` already exclude cache reads and writes.
    - `cache_read_tokens`: input served from the prompt cache.
    - `cache_write_tokens` are writes at the provider's standard TTL (Anthropic: 5 minutes),
      `cache_write_1h_tokens` writes with a one-hour TTL.
    - `output_tokens`: everything generated and billed as output, hidden reasoning included.

    The other counts are *parts* of those buckets, reported because providers bill them at other rates;
    they are never added to the total again:

    - `reasoning_tokens` (thinking) are part of `output_tokens`.
    - `input_audio_tokens` / `input_image_tokens` are part of the input side (uncached + cache reads +
      writes); `cache_audio_read_tokens` / `cache_image_read_tokens` are the part of those that was read
      from the cache.
    - `output_audio_tokens` / `output_image_tokens` are part of `output_tokens`.

    `web_searches` counts server-side web search calls, billed per call (not tokens).
    """

    input_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    input_audio_tokens: int = 0
    cache_audio_read_tokens: int = 0
    input_image_tokens: int = 0
    cache_image_read_tokens: int = 0
    output_audio_tokens: int = 0
    output_image_tokens: int = 0
    web_searches: int = 0

    @property
    def total_tokens(self) -> int:
        return (
            self.input_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
            + self.cache_write_1h_tokens
            + self.output_tokens
        )

    @property
    def total_input_tokens(self) -> int:
        """Input including cache reads and writes (what OpenAI calls `prompt_tokens`)."""
        cache = self.cache_read_tokens + self.cache_write_tokens + self.cache_write_1h_tokens
        return self.input_tokens + cache

    def as_metadata(self) -> Dict[str, int]:
        """Every bucket, for the event's metadata (the parts only when non-zero, to keep events small)."""
        metadata = {name: getattr(self, name) for name in BUCKETS}
        for name in PART_BUCKETS:
            value = getattr(self, name)
            if value:
                metadata[name] = value
        metadata["total_tokens"] = self.total_tokens
        return metadata

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Optional[TokenUsage]:
        """The buckets an event's metadata carries (see :meth:`as_metadata`), or None if it has none."""
        if not any(name in metadata for name in BUCKETS):
            return None
        values: Dict[str, int] = {}
        for name in BUCKETS + PART_BUCKETS:
            value = metadata.get(name, 0)
            if type(value) is not int or value < 0:
                return None
            values[name] = value
        return cls(**values)


# The non-overlapping buckets, then the parts of them (see TokenUsage).
BUCKETS: Tuple[str, ...] = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)
PART_BUCKETS: Tuple[str, ...] = (
    "input_audio_tokens",
    "cache_audio_read_tokens",
    "input_image_tokens",
    "cache_image_read_tokens",
    "output_audio_tokens",
    "output_image_tokens",
    "web_searches",
)


@dataclass
class LLMCall:
    """One billable model call, as an integration observed it."""

    integration: str  # "openai" | "anthropic" | "langchain"
    provider: str  # the API vendor whose price list applies: "openai", "anthropic", "azure", "aws", ...
    operation: str  # "chat.completions", "responses", "embeddings", "completions", "messages", ...
    model_requested: Optional[str]
    model: Optional[str]  # as the provider returned it (a dated snapshot), else the requested one
    usage: Optional[TokenUsage]
    usage_source: str = USAGE_FROM_RESPONSE
    streamed: bool = False
    latency_ms: Optional[float] = None
    response_id: Optional[str] = None
    attribution: Attribution = field(default_factory=current_attribution)
    timestamp: float = field(default_factory=time.time)
    extra: Dict[str, Any] = field(default_factory=dict)  # integration-specific facts, kept in metadata
    # The tier the provider says it served ("flex", "priority", "fast", "batch"; None = standard): it
    # selects the price variant.
    tier: Optional[str] = None
    # The API base URL of an OpenAI-compatible host, from which the price list is recognised.
    api_url: Optional[str] = None
    # A cost the caller states (`bearlumen.track(..., cost_usd=...)`): recorded as given, never re-priced.
    cost_usd: Optional[Decimal] = None


class Sink(Protocol):
    """Where emitted calls go (the delivery exporter, or a list in tests)."""

    def submit(self, call: LLMCall) -> None: ...


class Collector(Protocol):
    """A framework integration (LangChain) that is running a model call and wants its provider call.

    While a collector is set in the context, :func:`emit` offers it each call first; a collector that
    takes a call (returns True) becomes responsible for emitting it, enriched with what only the
    framework knows (graph node, run metadata). This is how a ChatOpenAI call seen both by the openai
    patch and by the LangChain callback is recorded once, with the richer attribution.
    """

    def offer(self, call: LLMCall) -> bool: ...


_sink: Optional[Sink] = None
active_collector: contextvars.ContextVar[Optional[Collector]] = contextvars.ContextVar(
    "bearlumen_collector", default=None
)


def set_sink(sink: Optional[Sink]) -> Optional[Sink]:
    """Install `sink` as the destination of :func:`emit`; returns the previous one."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def get_sink() -> Optional[Sink]:
    return _sink


def emit(call: LLMCall) -> None:
    """Hand a call to the active collector or sink. Never raises: metering must not break the host app."""
    collector = active_collector.get()
    if collector is not None:
        try:
            if collector.offer(call):
                return
        except Exception:
            logger.debug("bearlumen: collector failed; emitting directly", exc_info=True)
    deliver(call)


def deliver(call: LLMCall, sink: Optional[Sink] = None) -> None:
    """Hand a call to `sink` (default: the installed one), past any collector. Never raises."""
    target = sink if sink is not None else _sink
    if target is None:
        logger.debug("bearlumen: no sink installed; dropping %s call", call.operation)
        return
    try:
        target.submit(call)
    except Exception:
        logger.debug("bearlumen: sink rejected a call", exc_info=True)
