"""openai usage as billed: token buckets from chat / Responses usage objects, the served tier, searches.

Every field may be missing or None (responses are built without validation), and a dict (a body read as
JSON, an unknown extra field such as Groq's `x_groq`) is read through :class:`_Fields`. See the README's
"Exact cost" table for what each field is billed as.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Dict, Optional, Tuple

from bearlumen.metering.record import TokenUsage


class _Fields:
    """Attribute access over a JSON object, so that one reader serves models and raw bodies."""

    __slots__ = ("_data",)

    def __init__(self, data: Dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        return _Fields(value) if isinstance(value, dict) else value


def _fields(value: Any) -> Any:
    return _Fields(value) if isinstance(value, dict) else value


def _count(value: Any) -> Optional[int]:
    return value if type(value) is int and value >= 0 else None


def _str(value: Any) -> Optional[str]:
    return value if type(value) is str and value else None


# Where each API family puts the same four facts (its input count includes cached tokens in both).
_CHAT_FIELDS = ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")
_RESPONSES_FIELDS = ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")


def chat_usage(usage: Any) -> Optional[TokenUsage]:
    """Chat / legacy completions / embeddings usage: `prompt_tokens` include cached tokens."""
    return _usage(usage, _CHAT_FIELDS)


def responses_usage(usage: Any) -> Optional[TokenUsage]:
    """Responses API usage: `input_tokens` include cached tokens."""
    return _usage(usage, _RESPONSES_FIELDS)


def _usage(usage: Any, fields: Tuple[str, str, str, str]) -> Optional[TokenUsage]:
    if usage is None:
        return None
    input_name, output_name, input_details_name, output_details_name = fields
    given = _count(getattr(usage, input_name, None))
    output = _count(getattr(usage, output_name, None))
    if given is None and output is None:
        return None
    given, output = given or 0, output or 0
    parts: Dict[str, int] = {}
    cached = cache_write = reasoning = 0
    details = getattr(usage, input_details_name, None)
    if details is not None:
        cached = _count(getattr(details, "cached_tokens", None)) or 0
        cache_write = _count(getattr(details, "cache_write_tokens", None)) or 0
        parts["input_audio_tokens"] = _count(getattr(details, "audio_tokens", None)) or 0
        parts["input_image_tokens"] = _count(getattr(details, "image_tokens", None)) or 0
    if not cached:  # DeepSeek's own field (newer responses also fill `prompt_tokens_details`)
        cached = _count(getattr(usage, "prompt_cache_hit_tokens", None)) or 0
    details = getattr(usage, output_details_name, None)
    if details is not None:
        reasoning = _count(getattr(details, "reasoning_tokens", None)) or 0
        parts["output_audio_tokens"] = _count(getattr(details, "audio_tokens", None)) or 0
        parts["output_image_tokens"] = _count(getattr(details, "image_tokens", None)) or 0
    # Tokens the total counts beyond prompt + completion are reasoning billed as output, left out of
    # `completion_tokens`: Gemini's OpenAI-compatible endpoint (its thinking, not reported elsewhere) and
    # xAI (which reports them as `reasoning_tokens` too: counted once). OpenAI's totals add up.
    hidden = (_count(getattr(usage, "total_tokens", None)) or 0) - given - output
    if hidden > 0:
        output += hidden
        reasoning = max(reasoning, hidden)
    return _buckets(given, cached, cache_write, output, reasoning, parts)


def _buckets(
    given: int, cached: int, cache_write: int, output: int, reasoning: int, parts: Dict[str, int]
) -> TokenUsage:
    # Clamp nonsense (cache larger than the prompt) rather than produce negative buckets.
    cached = min(cached, given)
    cache_write = min(cache_write, given - cached)
    return TokenUsage(
        input_tokens=given - cached - cache_write,
        cache_read_tokens=cached,
        cache_write_tokens=cache_write,
        output_tokens=output,
        reasoning_tokens=min(reasoning, output),
        input_audio_tokens=min(parts.get("input_audio_tokens", 0), given),
        input_image_tokens=min(parts.get("input_image_tokens", 0), given),
        output_audio_tokens=min(parts.get("output_audio_tokens", 0), output),
        output_image_tokens=min(parts.get("output_image_tokens", 0), output),
    )


def served_tier(service_tier: Any) -> Optional[str]:
    """The tier to price from the response's `service_tier`: None for the standard one.

    The response says what was served: a request for "auto" answers "default" (or "flex" / "priority"
    when the project is set so); the request's own value is never used.
    """
    if type(service_tier) is not str or service_tier in ("default", "auto", "standard", ""):
        return None
    return service_tier


def with_web_searches(usage: TokenUsage, response: Any) -> TokenUsage:
    """Responses API: each `web_search_call` output item is one search, billed per call."""
    output = getattr(response, "output", None)
    if not isinstance(output, list):
        return usage
    searches = sum(1 for item in output if _item_type(item) == "web_search_call")
    return replace(usage, web_searches=searches) if searches else usage


def _item_type(item: Any) -> Any:
    return item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
