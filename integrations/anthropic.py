"""anthropic: meter every billable Messages call exactly once, without changing the user's call.

Installed by `bearlumen.instrument()`; modules of anthropic not imported yet are patched when they are. The
methods wrapped are listed as data in :data:`TARGETS` and :data:`REBINDS`; `uninstall()` restores every
patched attribute to the very object it was.

Which call is metered where (verified on anthropic 2.14; each path reaches exactly one meter):

- `messages.create` / `beta.messages.create` (sync and async, also `stream=True`), `messages.parse` /
  `beta.messages.parse`: the resource method. `beta.messages.tool_runner` and `beta.messages.thread` call
  `beta.messages.create`, so they are metered there and only there.
- `messages.stream()` / `beta.messages.stream()`: these do not call `create` (they `_post` directly), so
  the stream managers' `__enter__` / `__aenter__` are wrapped (that is where the request is sent); a stream
  that `create` already observes (threads and the streaming tool runner enter a manager around
  `create(stream=True)`) is skipped. `stream()` itself is wrapped only to note the requested model.
- Bedrock and Vertex clients: `client.messages` is the first-party class; their `beta.messages` classes
  copy `create` / `parse` / `stream` at class-definition time, so those copies are wrapped too.
- `count_tokens` is free and never metered. Message batches are not metered.
- `with_raw_response` (header "raw"): usage is read from `APIResponse.parse()`, which the SDK caches, so
  the caller's own `parse()` returns the very object read here (for a stream: the observed Stream).
  `with_streaming_response` (header "stream"): the body belongs to the caller and is never read here; a
  stream the caller parses is observed, a body the caller read whole is metered when the response is
  closed, anything else is recorded at close with `usage_source="unavailable"`.
- Both helpers are built per resource the first time they are accessed, around the method as it was
  then. One built before `install()` (a client used before `instrument()`, LangChain's ChatAnthropic) is
  rebuilt around the wrapped method when it is accessed while installed (see `_wrapping.StaleHelperRebind`).

Provider: "aws" for Bedrock clients, "vertex" for Vertex (the price book prices it with Google's list),
else "anthropic". Tokens (non-overlapping buckets, see `TokenUsage`): Anthropic's `input_tokens` already
exclude the cache; `cache_read_input_tokens` are cache reads; cache writes are split by
`usage.cache_creation` into 5-minute and 1-hour writes when the breakdown is present, else all of
`cache_creation_input_tokens` are 5-minute writes (Anthropic's default TTL); `thinking_tokens` are
reported as `reasoning_tokens` (a part of the output); `server_tool_use.web_search_requests` are billed
searches. The served tier selects the price: `usage.speed == "fast"` (fast mode), `usage.service_tier`
"batch" / "priority". Bedrock is priced as the model id / inference profile the request named (see
`bearlumen.metering.event.billed_model`). A `messages.parse` whose parser rejects the answer records the
(billed) answer, then the very same exception propagates (:data:`PARSERS`). A stream's `message_start`
carries the first usage and each `message_delta` carries cumulative totals, which overwrite (never add to)
what came before.

A call that fails records nothing and its exception reaches the caller unchanged. A stream is recorded
once, when it ends however it ends (its `message_stop`, exhaustion, `break` then garbage collection,
`close()`, an exception, or dropped without being iterated), with the usage seen so far
(`usage_source` "stream", or "stream_partial" when it ended early). Everything here runs guarded: an
unexpected shape is logged at debug level and the call proceeds as it would without instrumentation.
"""

from __future__ import annotations

import logging
import sys
import weakref
from time import perf_counter
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

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

from ._parse_capture import capture_wrapper, capturing
from ._streams import (
    StreamObserver,
    observe_async_stream,
    observe_sync_stream,
)
from ._wrapping import AttributePatch, FunctionPatch, Patch, PatchSet, rebind_stale_helpers

logger = logging.getLogger("bearlumen")

INTEGRATION = "anthropic"
OPERATION = "messages"

_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"
_BEDROCK_BETA_MESSAGES = "anthropic.lib.bedrock._beta_messages"
_VERTEX_BETA_MESSAGES = "anthropic.lib.vertex._beta_messages"
_STREAM_MANAGERS = "anthropic.lib.streaming._messages"
_BETA_STREAM_MANAGERS = "anthropic.lib.streaming._beta_messages"
_RESOURCE_MODULES = (_MESSAGES, _BETA_MESSAGES, _BEDROCK_BETA_MESSAGES, _VERTEX_BETA_MESSAGES)

# How a target is wrapped:
CALL = "call"  # sync create / parse: returns a Message, a Stream or a raw APIResponse
ACALL = "acall"  # async create / parse
HELPER = "helper"  # .stream(): a plain `def` (also on the async classes) returning a stream manager
ENTER = "enter"  # a stream manager's __enter__: sends the request, returns the MessageStream
AENTER = "aenter"  # an async stream manager's __aenter__

# (module, class, attribute, how). Every billable Messages call passes through exactly one CALL / ACALL
# or ENTER / AENTER wrapper (a stream already observed is skipped); HELPER only notes the model.
TARGETS: Tuple[Tuple[str, str, str, str], ...] = (
    (_MESSAGES, "Messages", "create", CALL),
    (_MESSAGES, "Messages", "parse", CALL),
    (_MESSAGES, "Messages", "stream", HELPER),
    (_MESSAGES, "AsyncMessages", "create", ACALL),
    (_MESSAGES, "AsyncMessages", "parse", ACALL),
    (_MESSAGES, "AsyncMessages", "stream", HELPER),
    (_BETA_MESSAGES, "Messages", "create", CALL),
    (_BETA_MESSAGES, "Messages", "parse", CALL),
    (_BETA_MESSAGES, "Messages", "stream", HELPER),
    (_BETA_MESSAGES, "AsyncMessages", "create", ACALL),
    (_BETA_MESSAGES, "AsyncMessages", "parse", ACALL),
    (_BETA_MESSAGES, "AsyncMessages", "stream", HELPER),
    # Bedrock's and Vertex's beta classes hold copies of the beta functions, made when they were defined.
    (_BEDROCK_BETA_MESSAGES, "Messages", "create", CALL),
    (_BEDROCK_BETA_MESSAGES, "Messages", "parse", CALL),
    (_BEDROCK_BETA_MESSAGES, "Messages", "stream", HELPER),
    (_BEDROCK_BETA_MESSAGES, "AsyncMessages", "create", ACALL),
    (_BEDROCK_BETA_MESSAGES, "AsyncMessages", "parse", ACALL),
    (_BEDROCK_BETA_MESSAGES, "AsyncMessages", "stream", HELPER),
    (_VERTEX_BETA_MESSAGES, "Messages", "create", CALL),
    (_VERTEX_BETA_MESSAGES, "Messages", "parse", CALL),
    (_VERTEX_BETA_MESSAGES, "Messages", "stream", HELPER),
    (_VERTEX_BETA_MESSAGES, "AsyncMessages", "create", ACALL),
    (_VERTEX_BETA_MESSAGES, "AsyncMessages", "parse", ACALL),
    (_VERTEX_BETA_MESSAGES, "AsyncMessages", "stream", HELPER),
    (_STREAM_MANAGERS, "MessageStreamManager", "__enter__", ENTER),
    (_STREAM_MANAGERS, "AsyncMessageStreamManager", "__aenter__", AENTER),
    (_BETA_STREAM_MANAGERS, "BetaMessageStreamManager", "__enter__", ENTER),
    (_BETA_STREAM_MANAGERS, "BetaAsyncMessageStreamManager", "__aenter__", AENTER),
)

# (module, helper class, attribute, anthropic._response function that builds the attribute): the
# with_raw_response / with_streaming_response helpers whose methods are rebound when stale. A helper class
# that does not set the attribute in its __init__ (the stable `MessagesWithRawResponse.parse`) is skipped.
REBINDS: Tuple[Tuple[str, str, str, str], ...] = tuple(
    (module, helper, attribute, builder)
    for module in _RESOURCE_MODULES
    for helper, attribute, builder in (
        ("MessagesWithRawResponse", "create", "to_raw_response_wrapper"),
        ("MessagesWithRawResponse", "parse", "to_raw_response_wrapper"),
        ("AsyncMessagesWithRawResponse", "create", "async_to_raw_response_wrapper"),
        ("AsyncMessagesWithRawResponse", "parse", "async_to_raw_response_wrapper"),
        ("MessagesWithStreamingResponse", "create", "to_streamed_response_wrapper"),
        ("AsyncMessagesWithStreamingResponse", "create", "async_to_streamed_response_wrapper"),
    )
)

# (module, function): the parsers `messages.parse` runs on the answer (Bedrock's and Vertex's beta copies
# look the beta one up in the beta module's globals).
PARSERS: Tuple[Tuple[str, str], ...] = (
    (_MESSAGES, "parse_response"),
    (_BETA_MESSAGES, "parse_beta_response"),
)

_RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"  # anthropic._constants.RAW_RESPONSE_HEADER
_OBSERVED = "_bearlumen_observed"  # set on a raw Stream once it is observed (never observe it twice)
_REQUESTED_MODEL = "_bearlumen_model"  # set on a stream manager by the `stream()` wrapper

# `_gen_ai_provider_name` of the platform clients -> the provider whose price list applies. Vertex is
# recorded as "vertex": the price book prices it with Google's list, and the event builder keys its
# idempotency on Anthropic's response ids.
_PLATFORM_PROVIDERS = {"aws.bedrock": "aws", "gcp.vertex_ai": "vertex"}

_enabled = False
_providers: Dict[type, str] = {}  # client type -> provider (a handful of entries)


class _SDK(NamedTuple):
    """anthropic's classes, resolved on first use (install() never imports anthropic)."""

    stream_types: Tuple[type, ...]
    async_stream: type
    sync_response: type
    async_response: type


_sdk_classes: Optional[_SDK] = None


def _sdk() -> _SDK:
    global _sdk_classes
    if _sdk_classes is None:
        import anthropic

        _sdk_classes = _SDK(
            (anthropic.Stream, anthropic.AsyncStream),
            anthropic.AsyncStream,
            anthropic.APIResponse,
            anthropic.AsyncAPIResponse,
        )
    return _sdk_classes


# -- the wrappers ------------------------------------------------------------------------------------------


def _wrap_call(
    wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Any:
    if not _enabled:
        return wrapped(*args, **kwargs)
    start = perf_counter()
    try:
        with capturing() as rejected:
            result = wrapped(*args, **kwargs)  # the user's exception, if any, goes back untouched
    except BaseException:
        _on_rejected(rejected, instance, kwargs, start)
        raise
    try:
        if isinstance(result, _sdk().sync_response):
            _on_raw_response(result, instance, kwargs, start)
        else:
            _on_result(result, _provider_of(instance), kwargs.get("model"), start)
    except Exception:
        logger.debug("bearlumen: metering an anthropic call failed", exc_info=True)
    return result


async def _wrap_acall(
    wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Any:
    if not _enabled:
        return await wrapped(*args, **kwargs)
    start = perf_counter()
    try:
        with capturing() as rejected:
            result = await wrapped(*args, **kwargs)
    except BaseException:
        _on_rejected(rejected, instance, kwargs, start)
        raise
    try:
        if isinstance(result, _sdk().async_response):
            await _on_async_raw_response(result, instance, kwargs, start)
        else:
            _on_result(result, _provider_of(instance), kwargs.get("model"), start)
    except Exception:
        logger.debug("bearlumen: metering an anthropic call failed", exc_info=True)
    return result


def _wrap_stream_helper(
    wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Any:
    manager = wrapped(*args, **kwargs)
    if _enabled:
        try:
            setattr(manager, _REQUESTED_MODEL, kwargs.get("model"))
        except Exception:
            logger.debug("bearlumen: cannot note the model on %s", type(manager).__name__, exc_info=True)
    return manager


def _wrap_enter(
    wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Any:
    if not _enabled:
        return wrapped(*args, **kwargs)
    start = perf_counter()
    message_stream = wrapped(*args, **kwargs)  # the request is sent here
    try:
        _on_message_stream(message_stream, instance, start)
    except Exception:
        logger.debug("bearlumen: metering an anthropic stream failed", exc_info=True)
    return message_stream


async def _wrap_aenter(
    wrapped: Callable[..., Any], instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]
) -> Any:
    if not _enabled:
        return await wrapped(*args, **kwargs)
    start = perf_counter()
    message_stream = await wrapped(*args, **kwargs)
    try:
        _on_message_stream(message_stream, instance, start)
    except Exception:
        logger.debug("bearlumen: metering an anthropic stream failed", exc_info=True)
    return message_stream


_WRAPPERS: Dict[str, Callable[..., Any]] = {
    CALL: _wrap_call,
    ACALL: _wrap_acall,
    HELPER: _wrap_stream_helper,
    ENTER: _wrap_enter,
    AENTER: _wrap_aenter,
}
_WRAPPER_FUNCTIONS = frozenset(_WRAPPERS.values())


# -- what a call returned ----------------------------------------------------------------------------------


def _on_result(result: Any, provider: str, model_requested: Any, start: float) -> None:
    """A parsed result: a Message (or ParsedMessage, BetaMessage...) or a Stream of raw events."""
    if isinstance(result, _sdk().stream_types):
        _observe(result, provider, model_requested, start)
    else:
        _emit_message(result, provider, model_requested, start)


def _on_rejected(rejected: List[Any], instance: Any, kwargs: Dict[str, Any], start: float) -> None:
    """`messages.parse` whose parser rejected the (billed) answer: record it; the caller gets the error."""
    if not rejected:
        return
    try:
        _emit_message(rejected[0], _provider_of(instance), kwargs.get("model"), start)
    except Exception:
        logger.debug("bearlumen: could not meter a rejected anthropic parse", exc_info=True)


def _on_message_stream(message_stream: Any, manager: Any, start: float) -> None:
    """A MessageStream a manager just opened: observe the raw stream it reads (unless `create` does)."""
    raw = getattr(message_stream, "_raw_stream", None)
    model_requested = getattr(manager, _REQUESTED_MODEL, None)
    if raw is None or not isinstance(raw, _sdk().stream_types):
        # A MessageStream we do not understand (a future SDK): record the call without inventing usage.
        _emit(_provider_of(None), model_requested, None, None, None, USAGE_UNAVAILABLE, True, start, None)
        return
    _observe(raw, _provider_of(raw), model_requested, start)


def _on_raw_response(response: Any, instance: Any, kwargs: Dict[str, Any], start: float) -> None:
    provider, model_requested = _provider_of(instance), kwargs.get("model")
    if _raw_mode(kwargs) == "raw":
        # Body already read (or an SSE stream not yet started); parse() is cached, so the caller's own
        # parse() returns the very object we look at here.
        try:
            with capturing() as rejected:
                parsed = response.parse()
        except Exception:
            if rejected:  # the caller's parse() raises the same error; the answer was billed
                _emit_message(rejected[0], provider, model_requested, start)
                return
            logger.debug("bearlumen: cannot parse a raw anthropic response", exc_info=True)
            _emit(provider, model_requested, None, None, None, USAGE_UNAVAILABLE, False, start, None)
            return
        _on_result(parsed, provider, model_requested, start)
    else:
        _watch_streaming_response(response, provider, model_requested, start, is_async=False)


async def _on_async_raw_response(response: Any, instance: Any, kwargs: Dict[str, Any], start: float) -> None:
    provider, model_requested = _provider_of(instance), kwargs.get("model")
    if _raw_mode(kwargs) == "raw":
        try:
            with capturing() as rejected:
                parsed = await response.parse()
        except Exception:
            if rejected:  # the caller's parse() raises the same error; the answer was billed
                _emit_message(rejected[0], provider, model_requested, start)
                return
            logger.debug("bearlumen: cannot parse a raw anthropic response", exc_info=True)
            _emit(provider, model_requested, None, None, None, USAGE_UNAVAILABLE, False, start, None)
            return
        _on_result(parsed, provider, model_requested, start)
    else:
        _watch_streaming_response(response, provider, model_requested, start, is_async=True)


def _raw_mode(kwargs: Dict[str, Any]) -> Optional[str]:
    headers = kwargs.get("extra_headers")
    if isinstance(headers, dict):
        mode = headers.get(_RAW_RESPONSE_HEADER)
        if isinstance(mode, str):
            return mode
    return None  # unknown: treated as a streaming response, whose body is never read here


def _provider_of(source: Any) -> str:
    """The provider of a resource or stream's client: "aws" (Bedrock), "vertex", else "anthropic"."""
    client = getattr(source, "_client", None)
    kind = type(client)
    provider = _providers.get(kind)
    if provider is None:
        name = getattr(kind, "_gen_ai_provider_name", None)
        provider = _PLATFORM_PROVIDERS.get(name, "anthropic") if isinstance(name, str) else "anthropic"
        if provider == "anthropic":
            names = " ".join(base.__name__ for base in kind.__mro__)
            provider = "aws" if "Bedrock" in names else "vertex" if "Vertex" in names else "anthropic"
        _providers[kind] = provider
    return provider


# -- non-streamed messages ---------------------------------------------------------------------------------


def _emit_message(
    message: Any, provider: str, model_requested: Any, start: float, attribution: Optional[Attribution] = None
) -> None:
    usage_object = _field(message, "usage")
    counts = _counts_from(usage_object)
    usage = counts.usage() if counts is not None else None
    _emit(
        provider,
        model_requested,
        _text(_field(message, "model")),
        _text(_field(message, "id")),
        usage,
        USAGE_FROM_RESPONSE if usage is not None else USAGE_UNAVAILABLE,
        False,
        start,
        _extra(usage_object),
        attribution,
        tier=counts.tier() if counts is not None else None,
    )


def _emit(
    provider: str,
    model_requested: Any,
    model: Optional[str],
    response_id: Optional[str],
    usage: Optional[TokenUsage],
    usage_source: str,
    streamed: bool,
    start: float,
    extra: Optional[Dict[str, Any]],
    attribution: Optional[Attribution] = None,
    tier: Optional[str] = None,
) -> None:
    requested = model_requested if isinstance(model_requested, str) else None
    call = LLMCall(
        integration=INTEGRATION,
        provider=provider,
        operation=OPERATION,
        model_requested=requested,
        model=model or requested,
        usage=usage,
        usage_source=usage_source,
        streamed=streamed,
        latency_ms=(perf_counter() - start) * 1000.0,
        response_id=response_id,
        attribution=attribution if attribution is not None else current_attribution(),
        extra=extra or {},
        tier=tier,
    )
    emit(call)


# -- usage -------------------------------------------------------------------------------------------------


def _field(obj: Any, name: str) -> Any:
    """`obj.name`, or `obj[name]` for a decoded JSON body; None when absent."""
    if type(obj) is dict:
        return obj.get(name)
    return getattr(obj, name, None)


def _count(value: Any) -> Optional[int]:
    """A token count as reported, or None when the field is absent or not a count."""
    if type(value) is int:
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():  # the SDK keeps "12" a string
        return int(value)
    return None


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


class _Counts:
    """Anthropic's usage fields as reported (None = not reported), before normalisation."""

    __slots__ = (
        "cache_created",
        "cache_read",
        "input",
        "output",
        "service_tier",
        "speed",
        "thinking",
        "web_searches",
        "write_1h",
        "write_5m",
    )

    def __init__(self) -> None:
        self.input: Optional[int] = None
        self.output: Optional[int] = None
        self.cache_read: Optional[int] = None
        self.cache_created: Optional[int] = None
        self.write_5m: Optional[int] = None
        self.write_1h: Optional[int] = None
        self.thinking: Optional[int] = None
        self.web_searches: Optional[int] = None
        self.service_tier: Optional[str] = None
        self.speed: Optional[str] = None

    def overwrite_from(self, usage: Any) -> None:
        """Lay `usage` over what is known: every reported (non-None) field replaces the previous value.

        Right for `message_start` (nothing known yet) and for `message_delta`, whose counts are cumulative.
        """
        value = _count(_field(usage, "input_tokens"))
        if value is not None:
            self.input = value
        value = _count(_field(usage, "output_tokens"))
        if value is not None:
            self.output = value
        value = _count(_field(usage, "cache_read_input_tokens"))
        if value is not None:
            self.cache_read = value
        value = _count(_field(usage, "cache_creation_input_tokens"))
        if value is not None:
            self.cache_created = value
        breakdown = _field(usage, "cache_creation")
        if breakdown is not None:
            value = _count(_field(breakdown, "ephemeral_5m_input_tokens"))
            if value is not None:
                self.write_5m = value
            value = _count(_field(breakdown, "ephemeral_1h_input_tokens"))
            if value is not None:
                self.write_1h = value
        details = _field(usage, "output_tokens_details")
        if details is not None:
            value = _count(_field(details, "thinking_tokens"))
            if value is not None:
                self.thinking = value
        server_tools = _field(usage, "server_tool_use")
        if server_tools is not None:
            value = _count(_field(server_tools, "web_search_requests"))
            if value is not None:
                self.web_searches = value
        self.service_tier = _text(_field(usage, "service_tier")) or self.service_tier
        self.speed = _text(_field(usage, "speed")) or self.speed

    def tier(self) -> Optional[str]:
        """The served tier that selects the price: fast mode, batch, or priority (None: standard)."""
        if self.speed == "fast":
            return "fast"
        if self.service_tier in ("batch", "priority"):
            return self.service_tier
        return None

    def usage(self) -> Optional[TokenUsage]:
        """Normalised buckets, or None when neither input nor output was reported."""
        if self.input is None and self.output is None:
            return None
        write_1h = self.write_1h or 0
        # The 5m/1h breakdown says how the writes split; `cache_creation_input_tokens` is their total. A
        # write the breakdown does not account for is a 5-minute write (the default TTL); a breakdown that
        # exceeds the total (it should not) is trusted, as the more detailed figure.
        write_5m = max(self.write_5m or 0, (self.cache_created or 0) - write_1h)
        return TokenUsage(
            input_tokens=self.input or 0,
            cache_read_tokens=self.cache_read or 0,
            cache_write_tokens=write_5m,
            cache_write_1h_tokens=write_1h,
            output_tokens=self.output or 0,
            reasoning_tokens=self.thinking or 0,
            web_searches=self.web_searches or 0,
        )


def _counts_from(usage: Any) -> Optional[_Counts]:
    if usage is None:
        return None
    counts = _Counts()
    counts.overwrite_from(usage)
    return counts


def _extra(usage: Any) -> Optional[Dict[str, Any]]:
    """Billing-relevant facts that the token buckets do not carry (kept in the event's metadata)."""
    if usage is None:
        return None
    extra: Dict[str, Any] = {}
    tier = _field(usage, "service_tier")
    if isinstance(tier, str) and tier != "standard":
        extra["service_tier"] = tier
    speed = _field(usage, "speed")
    if isinstance(speed, str) and speed != "standard":
        extra["speed"] = speed
    server_tools = _field(usage, "server_tool_use")
    if server_tools is not None:
        for name in ("web_search_requests", "web_fetch_requests"):
            value = _count(_field(server_tools, name))
            if value:
                extra[name] = value
    return extra


# -- streams -----------------------------------------------------------------------------------------------


class _MessageStreamObserver(StreamObserver):
    """Accumulates one streamed message's usage and emits it once, when the stream ends.

    Emits at `message_stop` (the usage is final then), or at the end of the stream however it ends, with
    the usage seen so far (a stream dropped without being iterated is ended by `_streams`).
    """

    __slots__ = (
        "_attribution",
        "_counts",
        "_model",
        "_model_requested",
        "_provider",
        "_response_id",
        "_saw_delta",
        "_saw_stop",
        "_start",
        "_usage_object",
    )

    def __init__(self, provider: str, model_requested: Any, start: float) -> None:
        super().__init__()
        self._provider = provider
        self._model_requested = model_requested
        self._start = start
        self._attribution = current_attribution()  # the scope of the call, not of whoever ends the stream
        self._counts: Optional[_Counts] = None
        self._model: Optional[str] = None
        self._response_id: Optional[str] = None
        self._usage_object: Any = None
        self._saw_delta = False
        self._saw_stop = False

    def on_item(self, item: Any) -> None:
        kind = getattr(item, "type", None)
        if kind == "message_delta":
            usage = getattr(item, "usage", None)
            if usage is not None:
                if self._counts is None:
                    self._counts = _Counts()
                self._counts.overwrite_from(usage)
            self._saw_delta = True
        elif kind == "message_start":
            message = getattr(item, "message", None)
            self._model = _text(_field(message, "model"))
            self._response_id = _text(_field(message, "id"))
            usage = _field(message, "usage")
            if usage is not None:
                self._usage_object = usage
                if self._counts is None:
                    self._counts = _Counts()
                self._counts.overwrite_from(usage)
        elif kind == "message_stop":
            self._saw_stop = True
            self.end(True)

    def on_end(self, completed: bool) -> None:
        usage = None if self._counts is None else self._counts.usage()
        if usage is None:
            source = USAGE_UNAVAILABLE
        elif self._saw_stop or (completed and self._saw_delta):
            source = USAGE_FROM_STREAM
        else:
            source = USAGE_PARTIAL_STREAM
        _emit(
            self._provider,
            self._model_requested,
            self._model,
            self._response_id,
            usage,
            source,
            True,
            self._start,
            _extra(self._usage_object),
            self._attribution,
            tier=None if self._counts is None else self._counts.tier(),
        )


def _observe(stream: Any, provider: str, model_requested: Any, start: float) -> None:
    """Meter a raw event stream in place, once (a stream `create` observes may reach a manager later)."""
    if getattr(stream, _OBSERVED, False):
        return
    try:
        setattr(stream, _OBSERVED, True)
    except Exception:  # cannot be marked: still metered (only a manager around it could meter it again)
        logger.debug("bearlumen: cannot mark %s as observed", type(stream).__name__, exc_info=True)
    observer = _MessageStreamObserver(provider, model_requested, start)
    observe = observe_async_stream if isinstance(stream, _sdk().async_stream) else observe_sync_stream
    observe(stream, observer)  # a stream it cannot watch is recorded at once, usage unavailable


# -- with_streaming_response -------------------------------------------------------------------------------


class _ResponseWatch:
    __slots__ = ("attribution", "done", "model_requested", "provider", "start")

    def __init__(self, provider: str, model_requested: Any, start: float) -> None:
        self.provider = provider
        self.model_requested = model_requested
        self.start = start
        self.attribution = current_attribution()
        self.done = False

    def parsed(self, parsed: Any) -> None:
        """The caller parsed the response: observe the stream it got (a message is metered at close)."""
        if self.done or not isinstance(parsed, _sdk().stream_types):
            return
        self.done = True
        _observe(parsed, self.provider, self.model_requested, self.start)

    def closed(self, response: Any) -> None:
        """The caller closed the response: meter the body it read, else record that usage is unknown."""
        if self.done:
            return
        self.done = True
        body = None
        http_response = getattr(response, "http_response", None)
        if not getattr(response, "_is_sse_stream", True):
            try:
                body = http_response.json() if http_response is not None else None  # only if it was read
            except Exception:
                body = None
        if isinstance(body, dict):
            _emit_message(body, self.provider, self.model_requested, self.start, self.attribution)
        else:
            _emit(
                self.provider,
                self.model_requested,
                None,
                None,
                None,
                USAGE_UNAVAILABLE,
                bool(getattr(response, "_is_sse_stream", False)),
                self.start,
                None,
                self.attribution,
            )


def _watch_streaming_response(
    response: Any, provider: str, model_requested: Any, start: float, is_async: bool
) -> None:
    """Meter a `with_streaming_response` call without reading its body: follow parse() and close().

    Not shared with openai.py's `_Session`, which does a different job: it patches `APIResponse` at class
    level and also meters parse errors, non-streamed bodies at parse(), SSE bodies read whole, and
    responses dropped unclosed; this meters only a parsed stream or a JSON body read before close().
    """
    if not hasattr(response, "http_response"):
        return
    watch = _ResponseWatch(provider, model_requested, start)
    response_type = type(response)
    class_parse = getattr(response_type, "parse", None)
    class_close = getattr(response_type, "close", None)
    if class_parse is None or class_close is None:
        return
    response_ref = weakref.ref(response)
    if is_async:

        async def aparse(*args: Any, **kwargs: Any) -> Any:
            parsed = await class_parse(response_ref(), *args, **kwargs)
            _guarded(watch.parsed, parsed)
            return parsed

        async def aclose(*args: Any, **kwargs: Any) -> Any:
            target = response_ref()
            try:
                return await class_close(target, *args, **kwargs)
            finally:
                _guarded(watch.closed, target)

        response.parse, response.close = aparse, aclose
    else:

        def parse(*args: Any, **kwargs: Any) -> Any:
            parsed = class_parse(response_ref(), *args, **kwargs)
            _guarded(watch.parsed, parsed)
            return parsed

        def close(*args: Any, **kwargs: Any) -> Any:
            target = response_ref()
            try:
                return class_close(target, *args, **kwargs)
            finally:
                _guarded(watch.closed, target)

        response.parse, response.close = parse, close


def _guarded(function: Callable[[Any], None], argument: Any) -> None:
    try:
        function(argument)
    except Exception:
        logger.debug("bearlumen: metering an anthropic streaming response failed", exc_info=True)


# -- install / uninstall -----------------------------------------------------------------------------------


def _is_enabled() -> bool:
    return _enabled


def _response_builder(name: str) -> Callable[[], Callable[[Any], Any]]:
    def builder() -> Callable[[Any], Any]:
        from anthropic import _response

        function: Callable[[Any], Any] = getattr(_response, name)
        return function

    return builder


def _patches() -> List[Patch]:
    patches: List[Patch] = [
        FunctionPatch(module, f"{owner}.{attribute}", _WRAPPERS[how])
        for module, owner, attribute, how in TARGETS
    ]
    # Helpers built before install() (see `_wrapping.StaleHelperRebind`).
    patches += [
        AttributePatch(
            module, f"{helper}.{attribute}", rebind_stale_helpers(_response_builder(builder), _is_enabled)
        )
        for module, helper, attribute, builder in REBINDS
    ]
    # The structured-output parsers: an answer they reject is still a billed call (see _parse_capture).
    patches += [FunctionPatch(module, name, capture_wrapper("response")) for module, name in PARSERS]
    return patches


PATCHES = PatchSet("bearlumen.anthropic", _patches())


def install() -> None:
    """Patch anthropic (now if imported, else when it is). Idempotent."""
    global _enabled
    _enabled = True
    PATCHES.install()


def uninstall() -> None:
    """Restore every patched attribute of anthropic to the very object it was. Idempotent."""
    global _enabled
    _enabled = False
    PATCHES.uninstall()
    _restore_copies()


def _restore_copies() -> None:
    """Undo copies of our wrappers that a class body made while we were installed.

    The Bedrock and Vertex beta classes copy the beta methods when their module runs: had one run after
    `install()` (imported late, or reloaded), it holds our wrapper, which no handle of ours covers.
    """
    for module_name, class_name, attribute, _ in TARGETS:
        owner = getattr(sys.modules.get(module_name), class_name, None)
        current = vars(owner).get(attribute) if isinstance(owner, type) else None
        if current is None or getattr(current, "_self_wrapper", None) not in _WRAPPER_FUNCTIONS:
            continue
        try:
            setattr(owner, attribute, current.__wrapped__)
        except Exception:
            logger.debug("bearlumen: could not restore %s.%s", class_name, attribute, exc_info=True)


__all__ = ["PATCHES", "REBINDS", "TARGETS", "install", "uninstall"]
