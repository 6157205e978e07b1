"""What a provider response is, read from its shape: the facts `bearlumen.track()` records.

A response is an SDK object or its JSON body as a dict. Each provider's usage is mapped into the shared
token buckets by that provider's reader (`_openai_usage`, `anthropic`, `_gemini_usage`); this module only
recognises the shape and picks the reader. An unrecognised shape is `None` (recorded by nobody).
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any, Callable, Dict, List, Optional

from bearlumen.metering.record import TokenUsage

from ._gemini_usage import field, gemini_tier, gemini_usage
from ._openai_usage import chat_usage, responses_usage, served_tier, with_web_searches


@dataclass
class Facts:
    """One billable call as a response tells it."""

    provider: str
    operation: str
    model: Optional[str]
    response_id: Optional[str]
    usage: Optional[TokenUsage]
    tier: Optional[str] = None
    extra: Dict[str, Any] = dataclass_field(default_factory=dict)


def get(obj: Any, name: str) -> Any:
    """`obj.name`, or `obj[name]` for a decoded JSON body; None when absent."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


# Model name prefixes of Mistral's own models: a chat-completion shape with one of them is Mistral's.
_MISTRAL_PREFIXES = ("mistral", "open-mistral", "codestral", "ministral", "pixtral", "magistral", "devstral")


def _chat_vendor(response: Any, model: Optional[str]) -> str:
    module = type(response).__module__
    if module.startswith("mistralai") or (model or "").startswith(_MISTRAL_PREFIXES):
        return "mistral"
    return "openai"


def _openai_chat(response: Any) -> Optional[Facts]:
    kind = get(response, "object")
    usage = get(response, "usage")
    if kind not in ("chat.completion", "text_completion", "list") and (
        get(usage, "prompt_tokens") is None or get(response, "choices") is None
    ):
        return None
    if kind == "list" and get(response, "data") is None:
        return None
    model = _text(get(response, "model"))
    operation = {"list": "embeddings", "text_completion": "completions"}.get(str(kind), "chat.completions")
    return Facts(
        _chat_vendor(response, model),
        operation,
        model,
        _text(get(response, "id")),
        chat_usage(_readable(usage)),
        served_tier(get(response, "service_tier")),
    )


def _openai_responses(response: Any) -> Optional[Facts]:
    if get(response, "object") != "response":
        return None
    usage = get(response, "usage")
    buckets = responses_usage(_readable(usage))
    if buckets is not None:
        buckets = with_web_searches(buckets, _Json(response) if isinstance(response, dict) else response)
    return Facts(
        "openai",
        "responses",
        _text(get(response, "model")),
        _text(get(response, "id")),
        buckets,
        served_tier(get(response, "service_tier")),
    )


def _anthropic(response: Any) -> Optional[Facts]:
    if get(response, "type") != "message" or get(response, "usage") is None:
        return None
    from .anthropic import _counts_from, _extra

    usage = get(response, "usage")
    counts = _counts_from(usage)
    return Facts(
        "anthropic",
        "messages",
        _text(get(response, "model")),
        _text(get(response, "id")),
        counts.usage() if counts is not None else None,
        counts.tier() if counts is not None else None,
        _extra(usage) or {},
    )


def _gemini(response: Any) -> Optional[Facts]:
    metadata = field(response, "usage_metadata", "usageMetadata")
    if metadata is None:
        return None
    return Facts(
        "google",
        "generate_content",
        _text(field(response, "model_version", "modelVersion")),
        _text(field(response, "response_id", "responseId")),
        gemini_usage(metadata),
        gemini_tier(metadata),
    )


def converse_facts(response: Any) -> Optional[Facts]:
    usage = get(response, "usage")
    if not isinstance(usage, dict) or "inputTokens" not in usage:
        return None
    metadata = get(response, "ResponseMetadata")
    # Bedrock's inputTokens exclude cache reads and writes (as Anthropic's own do).
    buckets = TokenUsage(
        input_tokens=_int(usage.get("inputTokens")),
        cache_read_tokens=_int(usage.get("cacheReadInputTokens")),
        cache_write_tokens=_int(usage.get("cacheWriteInputTokens")),
        output_tokens=_int(usage.get("outputTokens")),
    )
    request_id = _text(get(metadata, "RequestId"))
    return Facts("aws", "converse", None, request_id, buckets)


def _ollama(response: Any) -> Optional[Facts]:
    if get(response, "done") is not True and get(response, "embeddings") is None:
        return None
    from .ollama import ollama_usage

    usage = ollama_usage(response)
    if usage is None:
        return None
    operation = "embed" if get(response, "embeddings") is not None else "chat"
    if operation == "chat" and get(response, "message") is None:
        operation = "generate"
    # Ollama responses carry no id: each report is its own call.
    return Facts("ollama", operation, _text(get(response, "model")), None, usage)


def _int(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


def _readable(usage: Any) -> Any:
    """A usage object or JSON body readable by attribute, nested dicts included (mistralai keeps its
    `prompt_tokens_details` as a plain dict extra field)."""
    if usage is None:
        return None
    return _Json(usage) if isinstance(usage, dict) else _Attrs(usage)


class _Attrs:
    """Attribute access over an object whose nested fields may be dicts."""

    __slots__ = ("_obj",)

    def __init__(self, obj: Any) -> None:
        self._obj = obj

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._obj, name, None)
        return _Json(value) if isinstance(value, dict) else value


class _Json:
    """Attribute access over a JSON object (the openai usage readers read attributes)."""

    __slots__ = ("_data",)

    def __init__(self, data: Dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        if isinstance(value, dict):
            return _Json(value)
        if isinstance(value, list):
            return [_Json(item) if isinstance(item, dict) else item for item in value]
        return value


# Tried in order: the first reader that recognises the shape wins.
READERS: List[Callable[[Any], Optional[Facts]]] = [
    _openai_responses,
    _anthropic,
    _gemini,
    converse_facts,
    _ollama,
    _openai_chat,
]


def describe(response: Any) -> Optional[Facts]:
    """The facts of `response`, or None when no reader knows its shape."""
    for reader in READERS:
        facts = reader(response)
        if facts is not None:
            return facts
    return None


class StreamState:
    """Accumulates what a stream's items tell about its call, whatever the provider.

    Usage in streams is cumulative or final (OpenAI's last chunk, the Responses API's `response.completed`,
    Gemini's last chunk, Ollama's `done` item, Bedrock's `metadata` event), so the last usage seen wins;
    Anthropic's events split it (input at `message_start`, output at `message_delta`) and are merged.
    """

    __slots__ = ("anthropic", "complete", "facts")

    def __init__(self) -> None:
        self.facts: Optional[Facts] = None
        self.anthropic: Any = None  # anthropic's _Counts, for anthropic events
        self.complete = False  # an item said the call is over (its usage is final)

    def add(self, item: Any) -> None:
        kind = get(item, "type")
        if isinstance(kind, str) and kind.startswith("message_"):
            self._anthropic_event(kind, item)
            return
        if kind in ("response.completed", "response.incomplete", "response.failed"):
            self._take(describe(get(item, "response")), final=True)
            return
        data = get(item, "data")  # a mistralai CompletionEvent wraps its chunk
        if data is not None and get(data, "object") == "chat.completion.chunk":
            item = data
        if get(item, "object") == "chat.completion.chunk":
            self._chat_chunk(item)
            return
        metadata = get(item, "metadata")  # a Bedrock converse_stream event
        if isinstance(metadata, dict) and "usage" in metadata:
            self._take(converse_facts(metadata), final=True)
            return
        self._take(describe(item), final=get(item, "done") is True)

    def _take(self, facts: Optional[Facts], final: bool) -> None:
        if facts is None:
            return
        previous = self.facts
        if previous is not None:
            facts.model = facts.model or previous.model
            facts.response_id = facts.response_id or previous.response_id
            if facts.usage is None:
                facts.usage = previous.usage
        self.facts = facts
        self.complete = self.complete or final

    def _chat_chunk(self, chunk: Any) -> None:
        model = _text(get(chunk, "model"))
        usage = get(chunk, "usage")
        if usage is None:  # Groq reports stream usage in `x_groq.usage` instead
            usage = get(get(chunk, "x_groq"), "usage")
        buckets = chat_usage(_readable(usage))
        facts = Facts(
            _chat_vendor(chunk, model),
            "chat.completions",
            model,
            _text(get(chunk, "id")),
            buckets,
            served_tier(get(chunk, "service_tier")),
        )
        self._take(facts, final=buckets is not None)

    def _anthropic_event(self, kind: str, event: Any) -> None:
        from .anthropic import _Counts

        if self.anthropic is None:
            self.anthropic = _Counts()
        if kind == "message_start":
            message = get(event, "message")
            usage = get(message, "usage")
            if usage is not None:
                self.anthropic.overwrite_from(usage)
            facts = Facts(
                "anthropic", "messages", _text(get(message, "model")), _text(get(message, "id")), None
            )
            self._take(facts, final=False)
        elif kind == "message_delta" and get(event, "usage") is not None:
            self.anthropic.overwrite_from(get(event, "usage"))
        elif kind == "message_stop":
            self.complete = True
        if self.facts is not None:
            self.facts.usage = self.anthropic.usage()
            self.facts.tier = self.anthropic.tier()
