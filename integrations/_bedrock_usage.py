"""Token usage of Bedrock InvokeModel / InvokeModelWithResponseStream, mapped into the shared buckets.

What Bedrock bills is what Bedrock itself counted: the `X-Amzn-Bedrock-*-Token-Count` response headers of
InvokeModel and the `amazon-bedrock-invocationMetrics` object on the last chunk of a response stream. Both
are sent for every model family, also where the model's own body has no usage (Cohere Command, Mistral)
or an incomplete one (a guardrail rewrote a Nova body: `inputTokens` only). They are read first.

Where two Claude 3.5 Sonnet tool-use streams disagree (`message_delta` says 134 / 130 output tokens,
invocationMetrics 90 / 98), invocationMetrics is taken: it is Bedrock's metering, the figure CloudWatch's
`OutputTokenCount` and the bill report, while `message_delta` is the model's own running count.

The model's native body (its stream chunks) is the fallback, per family, for a stream that ended before
its invocationMetrics chunk:

- Anthropic: `usage{input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens}`,
  in a stream `message_start.message.usage` then `message_delta.usage` (cumulative: overwritten).
- Amazon Nova: `usage{inputTokens, outputTokens, cacheReadInputTokenCount, cacheWriteInputTokenCount}`
  (a stream's `metadata.usage`). Titan: `inputTextTokenCount`, `totalOutputTextTokenCount` (floats such
  as 28.0 when a guardrail intervened).
- Meta: `prompt_token_count`, `generation_token_count`. Imported models: OpenAI-style `usage`.

Input counts exclude cache reads and writes in every source (header 4 + cache-write 18131 for a body
saying `input_tokens=4`), as the `input_tokens` bucket does.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from bearlumen.metering.record import TokenUsage

HEADER_PREFIX = "x-amzn-bedrock-"
INVOCATION_METRICS = "amazon-bedrock-invocationMetrics"

# bucket -> Bedrock's own count names (invocationMetrics keys / header names)
_METRICS = {
    "input": ("inputTokenCount", "input-token-count"),
    "output": ("outputTokenCount", "output-token-count"),
    "cache_read": ("cacheReadInputTokenCount", "cache-read-input-token-count"),
    "cache_write": ("cacheWriteInputTokenCount", "cache-write-input-token-count"),
}

# bucket -> the field names a model family's native body uses for it, tried in order
_NATIVE = {
    "input": ("input_tokens", "inputTokens", "inputTextTokenCount", "prompt_token_count", "prompt_tokens"),
    "output": (
        "output_tokens",
        "outputTokens",
        "totalOutputTextTokenCount",
        "generation_token_count",
        "completion_tokens",
    ),
    "cache_read": ("cache_read_input_tokens", "cacheReadInputTokenCount", "cacheReadInputTokens"),
    "cache_write": ("cache_creation_input_tokens", "cacheWriteInputTokenCount", "cacheWriteInputTokens"),
}


def _count(value: Any) -> Optional[int]:
    """A non-negative integral count (headers are strings, Titan sends 28.0), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit():
            return None
        return int(value)
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value >= 0 and value.is_integer():
        return int(value)
    return None


def _buckets(counts: Mapping[str, int]) -> Optional[TokenUsage]:
    if "input" not in counts and "output" not in counts:
        return None
    return TokenUsage(
        input_tokens=counts.get("input", 0),
        cache_read_tokens=counts.get("cache_read", 0),
        cache_write_tokens=counts.get("cache_write", 0),
        output_tokens=counts.get("output", 0),
    )


def header_usage(headers: Any) -> Optional[TokenUsage]:
    """Usage from InvokeModel's `x-amzn-bedrock-*-token-count` headers (botocore lower-cases them)."""
    if not isinstance(headers, Mapping):
        return None
    counts: Dict[str, int] = {}
    for bucket, (_, name) in _METRICS.items():
        value = _count(headers.get(HEADER_PREFIX + name))
        if value is not None:
            counts[bucket] = value
    return _buckets(counts)


def metrics_usage(metrics: Any) -> Optional[TokenUsage]:
    """Usage from a stream's `amazon-bedrock-invocationMetrics` object."""
    if not isinstance(metrics, Mapping):
        return None
    counts: Dict[str, int] = {}
    for bucket, (name, _) in _METRICS.items():
        value = _count(metrics.get(name))
        if value is not None:
            counts[bucket] = value
    return _buckets(counts)


def _native_object(body: Mapping[str, Any]) -> Optional[Mapping[str, Any]]:
    """Where a family's native chunk keeps its counts: `usage`, `message.usage`, `metadata.usage`, or
    the top level (Meta, Titan)."""
    for outer in ("message", "metadata"):
        inner = body.get(outer)
        if isinstance(inner, Mapping) and isinstance(inner.get("usage"), Mapping):
            return inner["usage"]  # type: ignore[no-any-return]
    usage = body.get("usage")
    if isinstance(usage, Mapping):
        return usage
    return body


def native_counts(body: Any) -> Dict[str, int]:
    """The counts one native body or stream chunk states, by bucket (absent buckets left out)."""
    if not isinstance(body, Mapping):
        return {}
    source = _native_object(body)
    if source is None:
        return {}
    counts: Dict[str, int] = {}
    for bucket, names in _NATIVE.items():
        for name in names:
            value = _count(source.get(name))
            if value is not None:
                counts[bucket] = value
                break
    return counts


class StreamUsage:
    """Accumulates a response stream's usage: invocationMetrics when it comes, else the native counts
    (each chunk's counts overwrite the earlier ones: every family reports running totals)."""

    __slots__ = ("metrics", "native")

    def __init__(self) -> None:
        self.metrics: Optional[TokenUsage] = None
        self.native: Dict[str, int] = {}

    def add(self, chunk: Any) -> None:
        if not isinstance(chunk, Mapping):
            return
        metrics = metrics_usage(chunk.get(INVOCATION_METRICS))
        if metrics is not None:
            self.metrics = metrics
        self.native.update(native_counts(chunk))

    def usage(self) -> Optional[TokenUsage]:
        return self.metrics if self.metrics is not None else _buckets(self.native)


__all__ = ["INVOCATION_METRICS", "StreamUsage", "header_usage", "metrics_usage", "native_counts"]
