"""Metering of the `openai` client (openai>=3): every billable call, exactly once, the call untouched.

`bearlumen.instrument()` calls :func:`install`; :func:`uninstall` puts every patched attribute back.
The patches are class-level wrapt wrappers (table :data:`METHODS`), so clients built before
`install()` are covered, and modules openai imports lazily are patched when they load.

What is metered (sync and async alike):

=========================================  =====================  ===================================
call                                       operation              usage read from
=========================================  =====================  ===================================
`chat.completions.create` / `.parse`       `chat.completions`     `response.usage`; streams: the usage
                                                                  chunk (see the stream policy below)
`chat.completions.stream()` helper         `chat.completions`     through `create` (never counted in
                                                                  the helper itself)
`responses.create` / `.parse`,             `responses`            `response.usage`; streams: the
`responses.stream()` helper,                                      `response.completed`, `.incomplete`
`beta.responses.create`                                           or `.failed` event
`responses.compact`                        `responses.compact`    `response.usage`
`embeddings.create`                        `embeddings`           `response.usage` (no response id)
`completions.create` (legacy)              `completions`          as chat
`*.with_raw_response.*`                    as above               the cached `.parse()` (read once,
                                                                  the caller gets the same object)
`*.with_streaming_response.*`              as above               when the caller `.parse()`s it, or at
                                                                  `close()` if the body was read
                                                                  whole; else `usage_source:
                                                                  "unavailable"` (never read for them)
=========================================  =====================  ===================================

A resource whose `with_raw_response` / `with_streaming_response` helper was built before `install()`
(openai caches it per resource, around the then unpatched bound method; LangChain's ChatOpenAI does this
on its first call) is still metered: while installed, a class-level descriptor on the helper classes
hands out the helper rebuilt around the patched method (see `_wrapping.StaleHelperRebind`).

`AzureOpenAI` / `AsyncAzureOpenAI` calls are recorded with provider `"azure"`, `model_requested` = the
deployment name (the client's `azure_deployment`, else the `model` argument) and `model` = the model the
response names, which is what pricing uses (a `pricing={"aliases": ...}` entry maps a deployment name
when a response names no model).

Stream usage policy (chat completions and legacy completions)
    The OpenAI API reports usage on a stream only when asked (`stream_options={"include_usage": True}`),
    as one extra final chunk with `choices == []`. When the caller sets `stream=True` and no
    `stream_options` at all (neither the argument nor `extra_body["stream_options"]`), Bear Lumen adds
    `stream_options={"include_usage": True}` to the request and removes that usage-only chunk from what
    the caller iterates, so the caller sees exactly the chunks it would see without instrumentation.
    An explicit `stream_options` (any value, `include_usage: False` and `None` included) is never
    changed, and the usage chunk stays visible when the caller asked for it. Nothing is added to
    `with_raw_response` / `with_streaming_response` streams (the caller may read the raw bytes) or, by
    default, for servers other than the OpenAI API (`api.openai.com`) and Azure OpenAI (api-version
    2024-09-01 or later), which may reject the field: `set_stream_usage_policy("always" | "never")`
    changes that. When a stream reports no usage, its event says `usage_source: "unavailable"` with
    no token counts (quantity 0, unpriced): nothing is estimated or invented. A stream that ends before
    its usage arrives (`break` then garbage collection, `close()`, an exception, or a stream never
    iterated) is recorded once, when it ends, with the usage seen so far and
    `usage_source: "stream_partial"` (chat and Responses streams report usage only at their end, so
    such an event carries no token counts). Leaving a `.stream()` helper's `with` block early closes
    the HTTP response but not the stream object: the event is recorded when that object is dropped.

Billed dimensions (priced in `bearlumen.metering.pricing`; the README's "Exact cost" table):
- audio / image tokens from `*_tokens_details`, reasoning from `completion_tokens_details` (a part of
  output); tokens `total_tokens` counts beyond prompt + completion are hidden reasoning billed as output
  (Gemini's OpenAI-compatible endpoint).
- the served tier from the response's (or the last chunk's) `service_tier`, never the request's.
- Responses `web_search_call` output items, each one billed search.
- a non-OpenAI `base_url` host is named by :data:`COMPATIBLE_HOSTS` (else "openai-compatible") and its
  URL travels with the call, so its own price list applies.

Other decisions:
- A call that fails (HTTP 4xx/5xx, connection error, timeout) records nothing, and the caller gets the
  very exception object openai raised. Structured-output parsing that raises (`chat.completions.parse` /
  `responses.parse`: pydantic `ValidationError`, `LengthFinishReasonError`,
  `ContentFilterFinishReasonError`) is the exception: the API answered (and billed) the call, so it is
  recorded from the answer the SDK's parser rejected (see `_parse_capture`, :data:`PARSERS`), then the
  very same exception propagates.
- Background responses (`responses.create(background=True)`) are recorded once, when this process sees
  the response finished (a `retrieve()`, `cancel()` or a resumed `responses.stream(response_id=...)`),
  attributed to the scope of the `create()` call. A later `retrieve()` of a response that was already
  recorded (or not created by this process) records nothing. A background response whose end this
  process never observes (only a webhook sees it) is not recorded by the client instrumentation.
- Latency is measured from the call to the response (non-streamed) or to the end of the stream.
- All of this runs guarded: an unexpected shape is logged at debug level and the call proceeds exactly
  as without instrumentation.
"""

from __future__ import annotations

import contextvars
import json
import logging
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Type

from bearlumen import _handoff
from bearlumen.metering.record import (
    USAGE_FROM_RESPONSE,
    USAGE_FROM_STREAM,
    USAGE_PARTIAL_STREAM,
    USAGE_UNAVAILABLE,
    LLMCall,
    TokenUsage,
    emit,
)
from bearlumen.scopes import Attribution, current_attribution

from . import _stream_usage
from ._openai_usage import _Fields, _fields, _str, chat_usage, responses_usage, served_tier, with_web_searches
from ._parse_capture import capture_wrapper, capturing
from ._streams import StreamObserver, observe_async_stream, observe_sync_stream
from ._wrapping import AttributePatch, FunctionPatch, Patch, PatchSet, rebind_stale_helpers

logger = logging.getLogger("bearlumen")

INTEGRATION = "openai"

CHAT = "chat.completions"
RESPONSES = "responses"
COMPACT = "responses.compact"
EMBEDDINGS = "embeddings"
COMPLETIONS = "completions"

# How a wrapped method is handled.
CALL = "call"  # a billable call: meter its result
RESOLVE = "resolve"  # responses.retrieve / cancel: meter only a pending background response it finishes


@dataclass(frozen=True)
class Method:
    """One wrapped method: `module`.`owner`.`name`, metered as `operation`."""

    module: str
    owner: str
    name: str
    operation: str
    kind: str = CALL
    is_async: bool = False

    @property
    def path(self) -> str:
        return f"{self.owner}.{self.name}"


def _both(module: str, owner: str, names: Tuple[str, ...], operation: str, kind: str = CALL) -> List[Method]:
    methods = []
    for name in names:
        methods.append(Method(module, owner, name, operation, kind))
        methods.append(Method(module, f"Async{owner}", name, operation, kind, is_async=True))
    return methods


_CHAT_MODULE = "openai.resources.chat.completions.completions"
_RESPONSES_MODULE = "openai.resources.responses.responses"
_BETA_RESPONSES_MODULE = "openai.resources.beta.responses.responses"

#: Every wrapped method, as data. The `.stream()` helpers are deliberately absent: they call `create`.
METHODS: Tuple[Method, ...] = tuple(
    _both(_CHAT_MODULE, "Completions", ("create", "parse"), CHAT)
    + _both(_RESPONSES_MODULE, "Responses", ("create", "parse"), RESPONSES)
    + _both(_RESPONSES_MODULE, "Responses", ("compact",), COMPACT)
    + _both(_RESPONSES_MODULE, "Responses", ("retrieve", "cancel"), RESPONSES, RESOLVE)
    + _both(_BETA_RESPONSES_MODULE, "Responses", ("create",), RESPONSES)
    + _both(_BETA_RESPONSES_MODULE, "Responses", ("compact",), COMPACT)
    + _both(_BETA_RESPONSES_MODULE, "Responses", ("retrieve", "cancel"), RESPONSES, RESOLVE)
    + _both("openai.resources.embeddings", "Embeddings", ("create",), EMBEDDINGS)
    + _both("openai.resources.completions", "Completions", ("create",), COMPLETIONS)
)

#: The structured-output parsers `chat.completions.parse` / `responses.parse` run on the answer (module,
#: function, the keyword that receives the answer): an answer they reject is still a billed call.
PARSERS: Tuple[Tuple[str, str, str], ...] = (
    # Each parser is patched where the resource module imported it, which moved across releases: the
    # newest 3.x import them in `openai.lib.*_resources`, openai 2.x to early 3.x in the resource modules.
    # Exactly one location of each exists in a given release; the others are skipped.
    ("openai.lib._chat_completion_resources", "_parse_chat_completion", "chat_completion"),
    ("openai.resources.chat.completions.completions", "_parse_chat_completion", "chat_completion"),
    ("openai.lib._response_resources", "parse_response", "response"),
    ("openai.resources.responses.responses", "parse_response", "response"),
)

_enabled = False
_policy = "auto"
_POLICIES = ("auto", "always", "never")


def set_stream_usage_policy(policy: str) -> None:
    """When to add `stream_options={"include_usage": True}` to a chat stream the caller set none for.

    "auto" (default): for the OpenAI API and Azure OpenAI (api-version 2024-09-01 or later);
    "always": for every server; "never": never (such streams are recorded as usage unavailable).
    """
    global _policy
    if policy not in _POLICIES:
        raise ValueError(f"policy must be one of {', '.join(_POLICIES)}")
    _policy = policy


# --------------------------------------------------------------------------------------------------
# The openai names we need, resolved once openai is imported (this module never imports it itself).


class _Sdk:
    def __init__(self) -> None:
        import openai
        from openai import _legacy_response, _response, _streaming

        self.streams: Tuple[type, ...] = (_streaming.Stream,)
        self.async_stream: type = _streaming.AsyncStream
        self.any_stream: Tuple[type, ...] = (_streaming.Stream, _streaming.AsyncStream)
        self.legacy_response: type = _legacy_response.LegacyAPIResponse
        self.api_responses: Tuple[type, ...] = (_response.APIResponse, _response.AsyncAPIResponse)
        self.omitted: Tuple[type, ...] = tuple(
            t
            for t in (getattr(openai, "Omit", None), getattr(openai, "NotGiven", None))
            if isinstance(t, type)
        )
        self.parse_errors: Tuple[Type[BaseException], ...] = tuple(
            t
            for t in (
                getattr(openai, "LengthFinishReasonError", None),
                getattr(openai, "ContentFilterFinishReasonError", None),
            )
            if isinstance(t, type) and issubclass(t, BaseException)
        )
        try:
            from openai._constants import RAW_RESPONSE_HEADER
        except ImportError:
            RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
        self.raw_header: str = RAW_RESPONSE_HEADER
        try:
            from openai.lib.azure import BaseAzureClient
        except ImportError:
            BaseAzureClient = None  # type: ignore[assignment,misc]
        self.azure_client: Optional[type] = BaseAzureClient
        self.rewrappers: Dict[str, Callable[[Any], Any]] = {
            "WithRawResponse": _legacy_response.to_raw_response_wrapper,
            "AsyncWithRawResponse": _legacy_response.async_to_raw_response_wrapper,
            "WithStreamingResponse": _response.to_streamed_response_wrapper,
            "AsyncWithStreamingResponse": _response.async_to_streamed_response_wrapper,
        }


_sdk_cache: Optional[_Sdk] = None


def _sdk() -> _Sdk:
    global _sdk_cache
    if _sdk_cache is None:
        _sdk_cache = _Sdk()
    return _sdk_cache


# --------------------------------------------------------------------------------------------------
# Per-client facts: provider, whether include_usage may be added, the Azure deployment.


@dataclass(frozen=True)
class _ClientInfo:
    base_url: Any  # the client's `_base_url` when described: a changed URL is described again
    provider: str
    include_usage_ok: bool
    deployment: Optional[str]
    api_url: Optional[str] = None  # an OpenAI-compatible host's base URL (its price list is found by it)
    host: str = ""
    port: Optional[int] = None  # None: the scheme's default port


#: OpenAI-compatible hosts reached through the openai client: host -> the provider whose price list
#: applies (the price book's provider names). Any other host is "openai-compatible", priced when
#: genai-prices recognises its URL (`provider_api_url`), else unpriced.
COMPATIBLE_HOSTS: Dict[str, str] = {
    "api.deepseek.com": "deepseek",
    "api.x.ai": "x-ai",
    "api.groq.com": "groq",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.fireworks.ai": "fireworks",
    "openrouter.ai": "openrouter",
    "api.openrouter.ai": "openrouter",
    "generativelanguage.googleapis.com": "google",
    "api.mistral.ai": "mistral",
    "api.perplexity.ai": "perplexity",
    "api.cerebras.ai": "cerebras",
}
COMPATIBLE = "openai-compatible"


# id(client) -> (weak reference to the client, its facts); entries leave with their client.
_client_infos: Dict[int, Tuple[Any, _ClientInfo]] = {}


def _client_info(client: Any) -> _ClientInfo:
    # `_base_url` is what the `base_url` property returns (the property costs a microsecond).
    base_url = getattr(client, "_base_url", None)
    cached = _client_infos.get(id(client))
    if cached is not None and cached[0]() is client and cached[1].base_url is base_url:
        return cached[1]
    info = _describe_client(client, base_url)
    key = id(client)
    try:
        reference = weakref.ref(client, lambda _ref, key=key: _forget_client(key, _ref))  # type: ignore[misc]
    except TypeError:  # not weak-referenceable: described on every call
        return info
    _client_infos[key] = (reference, info)
    return info


def _forget_client(key: int, reference: Any) -> None:
    cached = _client_infos.get(key)
    if cached is not None and cached[0] is reference:
        _client_infos.pop(key, None)


def _describe_client(client: Any, base_url: Any) -> _ClientInfo:
    sdk = _sdk()
    url = base_url if base_url is not None else getattr(client, "base_url", None)
    is_azure_client = sdk.azure_client is not None and isinstance(client, sdk.azure_client)
    host = str(getattr(url, "host", "") or "").lower()
    port = getattr(url, "port", None)
    port = port if isinstance(port, int) else None
    deployment: Optional[str] = None
    if is_azure_client:
        provider = "azure"
        deployment = _str(getattr(client, "_azure_deployment", None))
        include_usage_ok = _azure_version_has_usage(getattr(client, "_api_version", None))
    elif host.endswith(".azure.com"):  # the Azure v1 API through a plain OpenAI client
        provider, include_usage_ok = "azure", True
    elif host == "api.openai.com" or host.endswith(".api.openai.com"):
        provider, include_usage_ok = "openai", True
    elif host:
        provider = COMPATIBLE_HOSTS.get(host, COMPATIBLE)
        # Whether it is asked for stream usage is decided per call (the host list may change).
        return _ClientInfo(base_url, provider, False, None, str(url), host, port)
    else:
        provider, include_usage_ok = "openai", False
    return _ClientInfo(base_url, provider, include_usage_ok, deployment, None, host, port)


def _azure_version_has_usage(version: Any) -> bool:
    # stream_options arrived in api-version 2024-09-01-preview; "preview" / "latest" / "v1" are newer.
    if not isinstance(version, str):
        return False
    date = version[:10]
    if len(date) == 10 and date[4] == "-" and date[7] == "-" and date.replace("-", "").isdigit():
        return date >= "2024-09-01"
    return True


_USAGE_READERS: Dict[str, Callable[[Any], Optional[TokenUsage]]] = {
    CHAT: chat_usage,
    COMPLETIONS: chat_usage,
    EMBEDDINGS: chat_usage,
    RESPONSES: responses_usage,
    COMPACT: responses_usage,
}

# --------------------------------------------------------------------------------------------------
# One call in flight.


class _Call:
    __slots__ = (
        "api_url",
        "attribution",
        "background",
        "include_usage_added",
        "model_requested",
        "operation",
        "provider",
        "resolving",
        "started",
        "timestamp",
    )

    def __init__(
        self,
        operation: str,
        provider: str,
        model_requested: Optional[str],
        attribution: Attribution,
    ) -> None:
        self.operation = operation
        self.provider = provider
        self.model_requested = model_requested
        self.attribution = attribution
        self.timestamp = time.time()
        self.started = time.perf_counter()
        self.include_usage_added = False
        self.background = False
        self.resolving = False
        self.api_url: Optional[str] = None


def _start(operation: str, instance: Any, kwargs: Dict[str, Any]) -> Optional[_Call]:
    try:
        info = _client_info(instance._client)
        model = kwargs.get("model")
        call = _Call(operation, info.provider, _str(model), current_attribution())
        call.api_url = info.api_url
        if info.deployment is not None:
            call.model_requested = info.deployment
        if operation == RESPONSES:
            call.background = kwargs.get("background") is True
        elif kwargs.get("stream") and operation in (CHAT, COMPLETIONS):  # openai's `omit` is falsy
            call.include_usage_added = _may_add_include_usage(info, kwargs)
        return call
    except Exception:
        logger.debug("bearlumen: openai call not metered (unexpected arguments)", exc_info=True)
        return None


def _may_add_include_usage(info: _ClientInfo, kwargs: Dict[str, Any]) -> bool:
    if _policy == "never" or _stream_usage.rejects(info.host, info.port):
        return False
    if _policy == "auto" and not (
        info.include_usage_ok or (info.api_url is not None and _stream_usage.asks(info.host, info.port))
    ):
        return False
    sdk = _sdk()
    if "stream_options" in kwargs and not isinstance(kwargs["stream_options"], sdk.omitted):
        return False
    extra_body = kwargs.get("extra_body")
    if extra_body is not None and (not isinstance(extra_body, dict) or "stream_options" in extra_body):
        return False
    # A raw / streaming response (the raw header set): the caller may read the bytes; leave them alone.
    extra_headers = kwargs.get("extra_headers")
    return extra_headers is None or (isinstance(extra_headers, dict) and sdk.raw_header not in extra_headers)


def _with_include_usage(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    changed = dict(kwargs)
    changed["stream_options"] = {"include_usage": True}
    return changed


def _refused_include_usage(call: _Call, instance: Any, exc: BaseException) -> bool:
    """Whether the host refused the `stream_options` Bear Lumen added (then the caller's own request is
    sent once more, and the host is never asked again; see `_stream_usage`)."""
    if not call.include_usage_added:
        return False
    try:
        if not _stream_usage.rejected_by(exc):
            return False
        info = _client_info(instance._client)
        _stream_usage.remember_rejection(info.host, info.port)
        logger.info("bearlumen: %s rejects stream_options; its streams are sent without it", info.host)
    except Exception:
        return False
    call.include_usage_added = False
    return True


def _latency_ms(call: _Call) -> float:
    return (time.perf_counter() - call.started) * 1000.0


def _record(
    call: _Call,
    response: Any,
    usage: Optional[TokenUsage],
    source: str,
    streamed: bool,
    model: Optional[str] = None,
    response_id: Optional[str] = None,
    service_tier: Any = None,
) -> None:
    """Emit the one LLMCall of `call` (or park a background response until it finishes)."""
    if response is not None:
        model = model or _str(getattr(response, "model", None))
        if call.operation != EMBEDDINGS:
            response_id = response_id or _str(getattr(response, "id", None))
    if call.operation == RESPONSES and response is not None:
        status = getattr(response, "status", None)
        if call.resolving:
            if status not in _FINISHED_STATUSES or response_id is None:
                return
            parked = _pending.pop(response_id)
            if parked is None:
                return  # already recorded (or not created here)
            call = parked
            latency = _latency_ms(parked)
        elif (
            status in _RUNNING_STATUSES
            and usage is None
            and response_id is not None
            and (call.background or getattr(response, "background", None) is True)
        ):
            _pending.add(response_id, call)  # runs on server-side; recorded when seen finished
            return
        else:
            latency = _latency_ms(call)
    else:
        latency = _latency_ms(call)
    if usage is None:
        source = USAGE_UNAVAILABLE if source != USAGE_PARTIAL_STREAM else source
    extra: Dict[str, Any] = {}
    if response is not None:
        service_tier = getattr(response, "service_tier", None)
        if usage is not None and call.operation in (RESPONSES, COMPACT):
            usage = with_web_searches(usage, response)
    if type(service_tier) is str:
        extra["service_tier"] = service_tier
    if call.include_usage_added:
        extra["include_usage_added"] = True
    emit(
        LLMCall(
            integration=INTEGRATION,
            provider=call.provider,
            operation=call.operation,
            model_requested=call.model_requested,
            model=model or call.model_requested,
            usage=usage,
            usage_source=source,
            streamed=streamed,
            latency_ms=latency,
            response_id=response_id,
            attribution=call.attribution,
            timestamp=call.timestamp,
            extra=extra,
            tier=served_tier(service_tier),
            api_url=call.api_url,
        )
    )


def _record_response(call: _Call, response: Any) -> None:
    """A complete (non-streamed) response object, or a JSON body read through `_Fields`."""
    usage = _USAGE_READERS[call.operation](getattr(response, "usage", None))
    _record(call, response, usage, USAGE_FROM_RESPONSE, streamed=False)


# --------------------------------------------------------------------------------------------------
# Background responses waiting for their end.

_RUNNING_STATUSES = frozenset({"queued", "in_progress"})
_FINISHED_STATUSES = frozenset({"completed", "incomplete", "failed", "cancelled"})
_FINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
_START_EVENTS = frozenset({"response.created", "response.queued", "response.in_progress"})


class _Pending:
    """Background responses created here and not finished yet (bounded: oldest forgotten first)."""

    LIMIT = 10_000

    def __init__(self) -> None:
        self._calls: OrderedDict[str, _Call] = OrderedDict()
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._calls)

    def __contains__(self, response_id: object) -> bool:
        return response_id in self._calls

    def add(self, response_id: str, call: _Call) -> None:
        with self._lock:
            self._calls[response_id] = call
            while len(self._calls) > self.LIMIT:
                forgotten, _ = self._calls.popitem(last=False)
                logger.debug("bearlumen: background response %s forgotten before it finished", forgotten)

    def pop(self, response_id: str) -> Optional[_Call]:
        with self._lock:
            return self._calls.pop(response_id, None)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()


_pending = _Pending()

# --------------------------------------------------------------------------------------------------
# Streams: the caller's stream object stays the same object; its items pass through an observer.


class _ChatStreamObserver(StreamObserver):
    """Chat and legacy completion chunks: id and model from the first chunk, usage from the last."""

    __slots__ = ("call", "model", "response_id", "service_tier", "usage")

    def __init__(self, call: _Call) -> None:
        super().__init__()
        self.call = call
        self.model: Any = None
        self.response_id: Any = None
        self.usage: Any = None
        self.service_tier: Any = None

    def on_item(self, item: Any) -> None:
        if not self.response_id:  # Azure opens with a content-filter chunk whose id and model are ""
            self.response_id = getattr(item, "id", None)
            self.model = getattr(item, "model", None)
        usage = getattr(item, "usage", None)
        if usage is None:  # Groq puts a stream's usage under `x_groq`
            usage = getattr(_fields(getattr(item, "x_groq", None)), "usage", None)
        if usage is not None:
            self.usage = _fields(usage)
        tier = getattr(item, "service_tier", None)  # on every chunk; the last one says what was served
        if tier is not None:
            self.service_tier = tier

    def on_end(self, completed: bool) -> None:
        usage = _USAGE_READERS[self.call.operation](self.usage)
        if usage is not None:
            source = USAGE_FROM_STREAM
        else:
            source = USAGE_UNAVAILABLE if completed else USAGE_PARTIAL_STREAM
        _record(
            self.call,
            None,
            usage,
            source,
            streamed=True,
            model=_str(self.model),
            response_id=_str(self.response_id),
            service_tier=self.service_tier,
        )


class _ResponsesStreamObserver(StreamObserver):
    """Responses events: usage from the final `response.completed` / `.incomplete` / `.failed`."""

    __slots__ = ("call", "final", "model", "response_id")

    def __init__(self, call: _Call) -> None:
        super().__init__()
        self.call = call
        self.final: Any = None
        self.model: Any = None
        self.response_id: Any = None

    def on_item(self, item: Any) -> None:
        kind = getattr(item, "type", None)
        if kind in _FINAL_EVENTS:
            self.final = getattr(item, "response", None)
        elif self.response_id is None and kind in _START_EVENTS:
            response = getattr(item, "response", None)
            self.response_id = getattr(response, "id", None)
            self.model = getattr(response, "model", None)

    def on_end(self, completed: bool) -> None:
        call, final = self.call, self.final
        if final is not None:
            usage = _USAGE_READERS[call.operation](getattr(final, "usage", None))
            _record(call, final, usage, USAGE_FROM_STREAM, streamed=True)
            return
        response_id = _str(self.response_id)
        if call.resolving:
            return  # a resumed stream that did not see the end: still pending
        if call.background and response_id is not None:
            _pending.add(response_id, call)  # runs on in the background; recorded when seen finished
            return
        source = USAGE_UNAVAILABLE if completed else USAGE_PARTIAL_STREAM
        _record(call, None, None, source, streamed=True, model=_str(self.model), response_id=response_id)


def _observer_for(call: _Call) -> StreamObserver:
    if call.operation in (RESPONSES, COMPACT):
        return _ResponsesStreamObserver(call)
    return _ChatStreamObserver(call)


def _is_usage_only(chunk: Any) -> bool:
    try:
        return getattr(chunk, "usage", None) is not None and not getattr(chunk, "choices", None)
    except Exception:
        return False


def _without_usage_chunks(source: Iterator[Any], observer: _ChatStreamObserver) -> Iterator[Any]:
    for chunk in source:
        if _is_usage_only(chunk):
            observer.on_item(chunk)  # the caller did not ask for it: theirs stays as it would be
            continue
        yield chunk


async def _awithout_usage_chunks(
    source: AsyncIterator[Any], observer: _ChatStreamObserver
) -> AsyncIterator[Any]:
    async for chunk in source:
        if _is_usage_only(chunk):
            observer.on_item(chunk)
            continue
        yield chunk


def _observe_stream(call: _Call, stream: Any, is_async: bool) -> None:
    observer = _observer_for(call)
    source = getattr(stream, "_iterator", None)
    if source is None:
        logger.debug("bearlumen: unknown openai stream %s; usage unavailable", type(stream).__name__)
        _record(call, None, None, USAGE_UNAVAILABLE, streamed=True)
        return
    if call.include_usage_added and isinstance(observer, _ChatStreamObserver):
        if is_async:
            stream._iterator = _awithout_usage_chunks(source, observer)
        else:
            stream._iterator = _without_usage_chunks(source, observer)
    observe = observe_async_stream if is_async else observe_sync_stream
    observe(stream, observer)  # a stream it cannot watch is recorded at once, usage unavailable


# --------------------------------------------------------------------------------------------------
# What a wrapped method returned.


def _finish(call: _Call, result: Any, is_async: bool) -> None:
    try:
        sdk = _sdk()
        if isinstance(result, sdk.streams) or (is_async and isinstance(result, sdk.async_stream)):
            _observe_stream(call, result, is_async)
        elif isinstance(result, sdk.legacy_response):
            _finish_raw(call, result, is_async)
        elif isinstance(result, sdk.api_responses):
            _sessions[result] = _Session(call, is_async)
        else:
            _record_response(call, result)
    except Exception:
        logger.debug("bearlumen: could not meter an openai %s call", call.operation, exc_info=True)


def _finish_raw(call: _Call, raw: Any, is_async: bool) -> None:
    """`with_raw_response`: `.parse()` is cached, so the caller later gets the very object read here."""
    sdk = _sdk()
    try:
        with capturing() as rejected:
            parsed = raw.parse()
    except Exception as exc:  # the caller's own parse() raises it again (it is not cached)
        if rejected or isinstance(exc, sdk.parse_errors):
            _on_exception(call, exc, rejected)
        else:
            logger.debug("bearlumen: raw openai response did not parse; not metered", exc_info=True)
        return
    if isinstance(parsed, sdk.any_stream):
        _observe_stream(call, parsed, is_async=isinstance(parsed, sdk.async_stream))
    else:
        _record_response(call, parsed)


def _on_exception(call: _Call, exc: BaseException, rejected: Optional[List[Any]] = None) -> None:
    """A failed call records nothing, except a parse error on a response the API answered (billed):
    the answer the SDK's parser rejected (`rejected`, see `_parse_capture`), or the completion a
    `LengthFinishReasonError` / `ContentFilterFinishReasonError` carries."""
    try:
        answer = rejected[0] if rejected else None
        if answer is None and isinstance(exc, _sdk().parse_errors):
            answer = getattr(exc, "completion", None)
        if answer is not None:
            _record_response(call, answer)
    except Exception:
        logger.debug("bearlumen: could not meter a failed openai parse", exc_info=True)


# --------------------------------------------------------------------------------------------------
# `with_streaming_response`: the body belongs to the caller; meter what they parse, else at close.


class _Session:
    __slots__ = ("call", "done", "is_async")

    def __init__(self, call: _Call, is_async: bool) -> None:
        self.call = call
        self.is_async = is_async
        self.done = False

    def parsed(self, value: Any) -> None:
        if self.done:
            return
        sdk = _sdk()
        call = self.call
        if isinstance(value, sdk.any_stream):
            self.done = True
            _observe_stream(call, value, is_async=isinstance(value, sdk.async_stream))
            return
        value = _fields(value)
        usage = _USAGE_READERS[call.operation](getattr(value, "usage", None))
        if usage is not None or _str(getattr(value, "id", None)) is not None:
            self.done = True
            _record(call, value, usage, USAGE_FROM_RESPONSE, streamed=False)

    def closed(self, response: Any) -> None:
        if self.done:
            return
        self.done = True
        content = _read_content(response)
        if content is None:
            _record(self.call, None, None, USAGE_UNAVAILABLE, streamed=_is_sse(response))
        elif _is_sse(response):
            observer = _observer_for(self.call)
            for event in _sse_objects(content):
                observer.on_item(_fields(event))
            observer.end(True)
        else:
            try:
                body = json.loads(content)
            except ValueError:
                body = None
            if isinstance(body, dict):
                _record_response(self.call, _Fields(body))
            else:
                _record(self.call, None, None, USAGE_UNAVAILABLE, streamed=False)

    def dropped(self) -> None:
        """The response was garbage collected (runs from a weakref finalizer: must never raise)."""
        if self.done:
            return
        self.done = True
        try:
            _record(self.call, None, None, USAGE_UNAVAILABLE, streamed=False)
        except Exception:
            logger.debug("bearlumen: could not meter a dropped openai response", exc_info=True)


class _SessionTable:
    """APIResponse -> its metering session; a response dropped unclosed is recorded as unavailable."""

    def __init__(self) -> None:
        self._sessions: weakref.WeakKeyDictionary[Any, _Session] = weakref.WeakKeyDictionary()

    def __bool__(self) -> bool:
        return bool(self._sessions)

    def __setitem__(self, response: Any, session: _Session) -> None:
        self._sessions[response] = session
        # a finalizer only hands over (no lock may be taken from code the garbage collector runs)
        _handoff.arm()
        weakref.finalize(response, _handoff.later, session.dropped, context=contextvars.copy_context())

    def get(self, response: Any) -> Optional[_Session]:
        try:
            return self._sessions.get(response)
        except TypeError:
            return None


_sessions = _SessionTable()


def _read_content(response: Any) -> Optional[bytes]:
    """The body, only if the caller already read it whole (never reads the network)."""
    try:
        http_response = response.http_response
        content = http_response.content  # raises ResponseNotRead unless read
    except Exception:
        return None
    return content if isinstance(content, bytes) else None


def _is_sse(response: Any) -> bool:
    try:
        return "text/event-stream" in str(response.http_response.headers.get("content-type", ""))
    except Exception:
        return False


def _sse_objects(content: bytes) -> Iterator[Any]:
    for line in content.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload.startswith("[DONE]"):
            return
        try:
            yield json.loads(payload)
        except ValueError:
            continue


def _response_parse(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    session = _sessions.get(instance) if _sessions else None
    if session is None or session.done:
        return wrapped(*args, **kwargs)
    try:
        with capturing() as rejected:
            value = wrapped(*args, **kwargs)
    except BaseException as exc:
        if rejected or isinstance(exc, _sdk().parse_errors):
            session.done = True
            _on_exception(session.call, exc, rejected)
        raise
    try:
        session.parsed(value)
    except Exception:
        logger.debug("bearlumen: could not meter a streamed openai response", exc_info=True)
    return value


async def _aresponse_parse(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    session = _sessions.get(instance) if _sessions else None
    if session is None or session.done:
        return await wrapped(*args, **kwargs)
    try:
        with capturing() as rejected:
            value = await wrapped(*args, **kwargs)
    except BaseException as exc:
        if rejected or isinstance(exc, _sdk().parse_errors):
            session.done = True
            _on_exception(session.call, exc, rejected)
        raise
    try:
        session.parsed(value)
    except Exception:
        logger.debug("bearlumen: could not meter a streamed openai response", exc_info=True)
    return value


def _response_close(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    session = _sessions.get(instance) if _sessions else None
    try:
        return wrapped(*args, **kwargs)
    finally:
        if session is not None and not session.done:
            try:
                session.closed(instance)
            except Exception:
                logger.debug("bearlumen: could not meter a streamed openai response", exc_info=True)


async def _aresponse_close(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    session = _sessions.get(instance) if _sessions else None
    try:
        return await wrapped(*args, **kwargs)
    finally:
        if session is not None and not session.done:
            try:
                session.closed(instance)
            except Exception:
                logger.debug("bearlumen: could not meter a streamed openai response", exc_info=True)


# --------------------------------------------------------------------------------------------------
# The wrappers.


_RESEND = object()  # marks a request to send again without the stream_options a host refused


def _call_wrapper(method: Method) -> Callable[..., Any]:
    operation = method.operation
    if method.is_async:

        async def ametered(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
            if not _enabled:
                return await wrapped(*args, **kwargs)
            call = _start(operation, instance, kwargs)
            if call is None:
                return await wrapped(*args, **kwargs)
            sent = _with_include_usage(kwargs) if call.include_usage_added else kwargs
            try:
                with capturing() as rejected:
                    result = await wrapped(*args, **sent)
            except BaseException as exc:
                if not _refused_include_usage(call, instance, exc):
                    _on_exception(call, exc, rejected)
                    raise
                result = _RESEND
            if result is _RESEND:  # outside the except block: a new error must not chain to the first
                try:
                    with capturing() as rejected:
                        result = await wrapped(*args, **kwargs)
                except BaseException as exc:
                    _on_exception(call, exc, rejected)
                    raise
            _finish(call, result, True)
            return result

        return ametered

    def metered(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        if not _enabled:
            return wrapped(*args, **kwargs)
        call = _start(operation, instance, kwargs)
        if call is None:
            return wrapped(*args, **kwargs)
        sent = _with_include_usage(kwargs) if call.include_usage_added else kwargs
        try:
            with capturing() as rejected:
                result = wrapped(*args, **sent)
        except BaseException as exc:
            if not _refused_include_usage(call, instance, exc):
                _on_exception(call, exc, rejected)
                raise
            result = _RESEND
        if result is _RESEND:
            try:
                with capturing() as rejected:
                    result = wrapped(*args, **kwargs)
            except BaseException as exc:
                _on_exception(call, exc, rejected)
                raise
        _finish(call, result, False)
        return result

    return metered


def _resolving_call(instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Optional[_Call]:
    """A retrieve/cancel of a background response created here and not recorded yet, else None."""
    if not _enabled or not _pending:
        return None
    try:
        response_id = args[0] if args else kwargs.get("response_id")
        if response_id not in _pending:
            return None
    except Exception:
        return None
    call = _start(RESPONSES, instance, {})
    if call is not None:
        call.resolving = True
    return call


def _resolve_wrapper(method: Method) -> Callable[..., Any]:
    if method.is_async:

        async def aresolving(
            wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
        ) -> Any:
            call = _resolving_call(instance, args, kwargs)
            result = await wrapped(*args, **kwargs)
            if call is not None:
                _finish(call, result, True)
            return result

        return aresolving

    def resolving(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        call = _resolving_call(instance, args, kwargs)
        result = wrapped(*args, **kwargs)
        if call is not None:
            _finish(call, result, False)
        return result

    return resolving


def _is_enabled() -> bool:
    return _enabled


def _rewrapper(kind: str) -> Callable[[], Callable[[Any], Any]]:
    return lambda: _sdk().rewrappers[kind]


def _patches() -> List[Patch]:
    patches: List[Patch] = []
    for method in METHODS:
        make = _resolve_wrapper if method.kind == RESOLVE else _call_wrapper
        patches.append(FunctionPatch(method.module, method.path, make(method)))
        base = method.owner[len("Async") :] if method.is_async else method.owner
        prefix = "Async" if method.is_async else ""
        for suffix in ("WithRawResponse", "WithStreamingResponse"):
            helper = f"{prefix}{base}{suffix}"
            factory = rebind_stale_helpers(_rewrapper(prefix + suffix), _is_enabled)
            patches.append(AttributePatch(method.module, f"{helper}.{method.name}", factory))
    patches += [
        # The structured-output parsers: an answer they reject is still a billed call.
        *(FunctionPatch(module, name, capture_wrapper(argument)) for module, name, argument in PARSERS),
        FunctionPatch("openai._response", "APIResponse.parse", _response_parse),
        FunctionPatch("openai._response", "APIResponse.close", _response_close),
        FunctionPatch("openai._response", "AsyncAPIResponse.parse", _aresponse_parse),
        FunctionPatch("openai._response", "AsyncAPIResponse.close", _aresponse_close),
    ]
    return patches


PATCHES = PatchSet("bearlumen.openai", _patches())


def install(*, stream_usage_hosts: Optional[Iterable[str]] = None) -> None:
    """Patch openai (now if imported, else when it is). Idempotent.

    stream_usage_hosts: OpenAI-compatible hosts to ask for stream usage beyond
        `_stream_usage.STREAM_USAGE_HOSTS` ("host" or "host:port").
    """
    global _enabled
    _stream_usage.configure(stream_usage_hosts)
    _enabled = True
    PATCHES.install()


def uninstall() -> None:
    """Restore every patched attribute of openai to the very object it was. Idempotent."""
    global _enabled
    _enabled = False
    PATCHES.uninstall()
    _pending.clear()


__all__ = [
    "CHAT",
    "COMPACT",
    "COMPLETIONS",
    "EMBEDDINGS",
    "METHODS",
    "PATCHES",
    "RESPONSES",
    "Method",
    "install",
    "set_stream_usage_policy",
    "uninstall",
]
