"""One OTLP span -> the :class:`LLMCall` it describes, or None when it is not a billable model call.

The attribute names of every convention are data (the tables below), first match wins, so that the
OpenTelemetry GenAI semantic conventions, OpenLLMetry (Traceloop) and OpenInference (Arize) spans all
read the same way. The call is then priced and turned into an event by the very code the Python SDK
uses (``bearlumen.metering.event.build_event``).

Token buckets. Every convention here counts cached tokens *inside* its input count (the GenAI conventions
say so; OpenLLMetry and OpenInference add Anthropic's cache reads and writes to the prompt count), and
reasoning tokens inside the output count, so: uncached input = input - cache reads - cache writes, and
reasoning is the part of output billed as output. An input count smaller than its cache parts can only
exclude them (an instrumentation passing Anthropic's own ``input_tokens`` through), and is read that way;
likewise an output count smaller than its reasoning part.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from bearlumen.metering.record import LLMCall, TokenUsage
from bearlumen.scopes import Attribution

__all__ = ["ATTRIBUTION", "BILLABLE_OPERATIONS", "WANTED", "NotBillable", "Span", "is_model_call", "llm_call"]


class NotBillable(Exception):
    """A model-call span whose usage cannot be billed (a negative or non-integer token count)."""


# The operation that makes a span a model call, per convention: (attribute, values that are model calls).
# Agent and tool spans (invoke_agent, execute_tool, OpenInference AGENT / CHAIN) are never billed: their
# usage, when they carry one, is the sum of the model calls below them, which are billed themselves.
BILLABLE_OPERATIONS: Tuple[Tuple[str, frozenset[str]], ...] = (
    (
        "gen_ai.operation.name",
        frozenset({"chat", "text_completion", "generate_content", "embeddings", "completion", "responses"}),
    ),
    ("llm.request.type", frozenset({"chat", "completion", "embedding"})),  # OpenLLMetry before gen_ai.*
    ("openinference.span.kind", frozenset({"LLM", "EMBEDDING"})),
)

PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
RESPONSE_MODEL = ("gen_ai.response.model", "llm.response.model", "llm.model_name")
REQUEST_MODEL = ("gen_ai.request.model", "llm.request.model")
RESPONSE_ID = ("gen_ai.response.id",)
SERVICE_TIER = ("openai.response.service_tier", "gen_ai.openai.response.service_tier")
STREAMED = ("gen_ai.request.stream", "gen_ai.is_streaming", "llm.is_streaming")

# Token counts: (bucket, attribute names in order of preference).
TOKENS: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    (
        "input",
        (
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.prompt_tokens",  # GenAI conventions before 1.27, OpenLLMetry before 0.40
            "llm.usage.prompt_tokens",
            "llm.token_count.prompt",  # OpenInference
        ),
    ),
    (
        "output",
        (
            "gen_ai.usage.output_tokens",
            "gen_ai.usage.completion_tokens",
            "llm.usage.completion_tokens",
            "llm.token_count.completion",
        ),
    ),
    (
        "cache_read",
        (
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",  # OpenLLMetry
            "llm.usage.cache_read_input_tokens",
            "llm.token_count.prompt_details.cache_read",
        ),
    ),
    (
        "cache_write",
        (
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_write.input_tokens",  # opentelemetry-util-genai
            "gen_ai.usage.cache_creation_input_tokens",  # OpenLLMetry
            "llm.usage.cache_creation_input_tokens",
            "llm.token_count.prompt_details.cache_write",
        ),
    ),
    (
        "reasoning",
        (
            "gen_ai.usage.reasoning.output_tokens",
            "gen_ai.usage.reasoning_tokens",  # OpenLLMetry
            "llm.usage.reasoning_tokens",
            "llm.token_count.completion_details.reasoning",
        ),
    ),
)

# Attribution: event field -> attributes, looked up on the span (where a BaggageSpanProcessor copies
# baggage entries), then on the resource.
ATTRIBUTION: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ("agent_id", ("bearlumen.agent_id", "gen_ai.agent.name")),
    ("workflow_id", ("bearlumen.workflow_id", "gen_ai.workflow.name", "traceloop.workflow.name")),
    ("end_user_id", ("bearlumen.end_user_id", "enduser.id", "user.id")),
    ("subscription_id", ("bearlumen.subscription_id",)),
)

# The GenAI conventions' provider names -> the SDK's (bearlumen.metering.pricing._PROVIDER_IDS), so that a
# span and an SDK event price alike and derive the same idempotency key.
_PROVIDERS = {
    "azure.ai.openai": "azure",
    "az.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "aws.bedrock": "aws",
    "bedrock": "aws",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "vertexai": "google",
    "gemini": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
}

# Every attribute the mapper reads: the others are skipped without decoding their value.
WANTED: frozenset[str] = frozenset(
    [name for name, _ in BILLABLE_OPERATIONS]
    + list(PROVIDER + RESPONSE_MODEL + REQUEST_MODEL + RESPONSE_ID + SERVICE_TIER + STREAMED)
    + [name for _, names in TOKENS for name in names]
    + [name for _, names in ATTRIBUTION for name in names]
)


Span = Mapping[str, Any]  # attribute name -> plain value (str, int, float, bool)


def is_model_call(attributes: Span) -> bool:
    for name, values in BILLABLE_OPERATIONS:
        value = attributes.get(name)
        if isinstance(value, str) and value in values:
            return True
    return False


def llm_call(
    attributes: Span, resource: Span, end_ns: int, extra: Dict[str, Any]
) -> Tuple[Optional[LLMCall], Optional[str]]:
    """(the call, its response id) for a model-call span with usage; (None, None) for any other span.

    Raises NotBillable for a model call whose token counts are unusable.
    """
    if not is_model_call(attributes):
        return None, None
    counts = {bucket: _count(attributes, names) for bucket, names in TOKENS}
    if counts["input"] is None and counts["output"] is None:
        return None, None  # a failed call, or a stream without usage: nothing was reported to bill
    usage = _usage({bucket: value or 0 for bucket, value in counts.items()})
    provider = _first_str(attributes, PROVIDER) or _first_str(resource, PROVIDER) or "unknown"
    provider = _PROVIDERS.get(provider.lower(), provider.lower())
    response_id = _first_str(attributes, RESPONSE_ID)
    tier = _first_str(attributes, SERVICE_TIER)
    call = LLMCall(
        integration="otlp",
        provider=provider,
        operation=str(_first(attributes, [name for name, _ in BILLABLE_OPERATIONS])),
        model_requested=_first_str(attributes, REQUEST_MODEL),
        model=_first_str(attributes, RESPONSE_MODEL),
        usage=usage,
        streamed=_first(attributes, STREAMED) is True,
        response_id=response_id,
        attribution=_attribution(attributes, resource),
        timestamp=end_ns / 1e9 if end_ns > 0 else time.time(),
        extra=extra,
        tier=None if tier in (None, "default", "auto", "standard") else tier,
    )
    return call, response_id


def _usage(counts: Dict[str, int]) -> TokenUsage:
    cached = counts["cache_read"] + counts["cache_write"]
    uncached = counts["input"] - cached if counts["input"] >= cached else counts["input"]
    output = counts["output"]
    if output < counts["reasoning"]:
        output += counts["reasoning"]
    return TokenUsage(
        input_tokens=uncached,
        cache_read_tokens=counts["cache_read"],
        cache_write_tokens=counts["cache_write"],
        output_tokens=output,
        reasoning_tokens=counts["reasoning"],
    )


def _count(attributes: Span, names: Iterable[str]) -> Optional[int]:
    value = _first(attributes, names)
    if value is None:
        return None
    if (type(value) is float and value.is_integer()) or (type(value) is str and value.isdigit()):
        value = int(value)
    if type(value) is not int or value < 0:
        raise NotBillable(f"token counts must be whole numbers >= 0, not {value!r}")
    return value


def _first(attributes: Span, names: Iterable[str]) -> Any:
    for name in names:
        value = attributes.get(name)
        if value is not None:
            return value
    return None


def _first_str(attributes: Span, names: Iterable[str]) -> Optional[str]:
    value = _first(attributes, names)
    return value if isinstance(value, str) and value else None


def _attribution(attributes: Span, resource: Span) -> Attribution:
    found: Dict[str, Any] = {}
    for field_name, names in ATTRIBUTION:
        value = _first_str(attributes, names) or _first_str(resource, names)
        if value is not None:
            found[field_name] = value
    return Attribution(**found)
