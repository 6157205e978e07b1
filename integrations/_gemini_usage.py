"""Gemini usage as billed: token buckets from a `usage_metadata` (google-genai) or `usageMetadata` (REST).

Gemini's counts overlap differently from OpenAI's, so they are mapped here once for the integration and for
`bearlumen.track()`:

- `prompt_token_count` includes `cached_content_token_count` (read from the context cache): the uncached
  input is their difference.
- `tool_use_prompt_token_count` (what grounding / code execution fed back to the model) is billed as input
  but is not part of `prompt_token_count`: it is added to the uncached input.
- `thoughts_token_count` is billed as output but is not part of `candidates_token_count`: output is their
  sum and the thoughts are its reasoning part.
- The modality details (TEXT / IMAGE / AUDIO / VIDEO) give the audio and image parts, which some models
  bill at their own rates.

So `total_token_count` = input + cache reads + output, as Google reports it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from bearlumen.metering.record import TokenUsage


def field(obj: Any, snake: str, camel: str) -> Any:
    """`obj.snake` on an SDK object, `obj[camel]` (or `obj[snake]`) on a decoded JSON body; else None."""
    if isinstance(obj, dict):
        value = obj.get(camel)
        return obj.get(snake) if value is None else value
    return getattr(obj, snake, None)


def _count(value: Any) -> int:
    if type(value) is int and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return 0


def _modalities(details: Any) -> Dict[str, int]:
    """MODALITY -> tokens of a `*_tokens_details` list (modality an enum on SDK objects, a str in JSON)."""
    counts: Dict[str, int] = {}
    if not isinstance(details, list):
        return counts
    for item in details:
        modality = field(item, "modality", "modality")
        name = getattr(modality, "value", modality)
        if isinstance(name, str):
            counts[name.upper()] = counts.get(name.upper(), 0) + _count(
                field(item, "token_count", "tokenCount")
            )
    return counts


def gemini_usage(metadata: Any) -> Optional[TokenUsage]:
    """The buckets of one `usage_metadata`, or None when it reports neither prompt nor candidates."""
    if metadata is None:
        return None
    prompt = field(metadata, "prompt_token_count", "promptTokenCount")
    candidates = field(metadata, "candidates_token_count", "candidatesTokenCount")
    if prompt is None and candidates is None:
        return None
    prompt_tokens = _count(prompt)
    cached = min(
        _count(field(metadata, "cached_content_token_count", "cachedContentTokenCount")), prompt_tokens
    )
    tool_prompt = _count(field(metadata, "tool_use_prompt_token_count", "toolUsePromptTokenCount"))
    thoughts = _count(field(metadata, "thoughts_token_count", "thoughtsTokenCount"))
    output = _count(candidates) + thoughts
    given = _modalities(field(metadata, "prompt_tokens_details", "promptTokensDetails"))
    tools = _modalities(field(metadata, "tool_use_prompt_tokens_details", "toolUsePromptTokensDetails"))
    cache = _modalities(field(metadata, "cache_tokens_details", "cacheTokensDetails"))
    out = _modalities(field(metadata, "candidates_tokens_details", "candidatesTokensDetails"))
    input_total = prompt_tokens + tool_prompt
    return TokenUsage(
        input_tokens=prompt_tokens - cached + tool_prompt,
        cache_read_tokens=cached,
        output_tokens=output,
        reasoning_tokens=thoughts,
        input_audio_tokens=min(given.get("AUDIO", 0) + tools.get("AUDIO", 0), input_total),
        cache_audio_read_tokens=min(cache.get("AUDIO", 0), cached),
        input_image_tokens=min(given.get("IMAGE", 0) + tools.get("IMAGE", 0), input_total),
        cache_image_read_tokens=min(cache.get("IMAGE", 0), cached),
        output_audio_tokens=min(out.get("AUDIO", 0), output),
        output_image_tokens=min(out.get("IMAGE", 0), output),
    )


def gemini_tier(metadata: Any) -> Optional[str]:
    """The served tier that selects the price ("flex", "priority", "batch"); None for the standard one."""
    tier = field(metadata, "service_tier", "serviceTier")
    name = getattr(tier, "value", tier)
    if not isinstance(name, str):
        return None
    name = name.lower()
    return name if name in ("flex", "priority", "batch") else None
