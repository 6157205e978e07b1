"""LiteLLM (`pip install bearlumen[litellm]`): `completion`, `acompletion`, `embedding`, `aembedding`.

The public functions of the `litellm` package (:data:`TARGETS`) are wrapped; LiteLLM's own internal calls
go through `litellm.main` and are not wrapped again. Each call is recorded exactly once:

- LiteLLM calls some backends through their client libraries (the `openai` client for OpenAI and
  OpenAI-compatible hosts). While a LiteLLM call runs (and while its stream is read), the call is the
  active collector of `bearlumen.metering.record` (the mechanism LangChain uses): the openai /
  anthropic integration's record of the inner request is handed to it instead of being delivered, and
  LiteLLM's one event is built from it (the client library's exact buckets and response id), with
  `integration="litellm"` and the inner integration named in `extra["client"]`. Backends LiteLLM calls
  over its own HTTP code (Anthropic, Gemini, ...) are recorded from LiteLLM's response.
- Nested in a LangChain model call (langchain-litellm), LiteLLM's event is offered to LangChain's collector
  in turn: one event, with LangChain's attribution.
- Usage is LiteLLM's OpenAI-shaped `usage` (`prompt_tokens` include cache reads and, for Anthropic, cache
  writes, named in `prompt_tokens_details`); priced by Bear Lumen's price engine from the backend provider
  and the model the response names, never from LiteLLM's own cost.
- A stream is the very `CustomStreamWrapper` LiteLLM returned; its `__next__` / `__anext__` / `close` /
  `aclose` are wrapped on the class and observe only the streams of metered calls. Usage comes from a
  chunk's `usage` (with `stream_options={"include_usage": True}`) or the usage LiteLLM puts in the last
  chunk's hidden params. Recorded once when the stream ends: exhausted, closed, failed or dropped.
- A failed call records nothing and raises unchanged.
- LiteLLM fetches its own model cost map from the network at import unless
  `LITELLM_LOCAL_MODEL_COST_MAP=True`; Bear Lumen does not need that map.
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from time import perf_counter
from typing import Any, Dict, Optional, Tuple

from bearlumen.metering import record
from bearlumen.metering.record import (
    USAGE_FROM_RESPONSE,
    USAGE_FROM_STREAM,
    USAGE_PARTIAL_STREAM,
    USAGE_UNAVAILABLE,
    LLMCall,
    TokenUsage,
)
from bearlumen.scopes import current_attribution

from ._openai_usage import chat_usage
from ._streams import StreamObserver
from ._wrapping import FunctionPatch, PatchSet

logger = logging.getLogger("bearlumen")

INTEGRATION = "litellm"

_STREAMS = "litellm.litellm_core_utils.streaming_handler"

# LiteLLM's provider names -> Bear Lumen's (the price engine's); others are kept as LiteLLM names them.
PROVIDERS: Dict[str, str] = {
    "gemini": "google",
    "vertex_ai": "google",
    "vertex_ai_beta": "google",
    "bedrock": "aws",
    "bedrock_converse": "aws",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "xai": "x-ai",
    "text-completion-openai": "openai",
    "cohere_chat": "cohere",
    "ollama_chat": "ollama",
    "mistral": "mistral",
}

_OBSERVER = "_bearlumen_observer"


class _Run:
    """One LiteLLM call. While it runs it is the active collector: it takes the inner client library's
    record of the request (always: LiteLLM's own event is the one recorded)."""

    __slots__ = ("attribution", "inner", "kwargs_model", "operation", "outer", "provider_hint", "start")

    def __init__(self, operation: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        model = kwargs.get("model", args[0] if args else None)
        self.kwargs_model = model if isinstance(model, str) and model else None
        hint = kwargs.get("custom_llm_provider")
        self.provider_hint = hint if isinstance(hint, str) and hint else None
        self.operation = operation
        self.start = perf_counter()
        self.attribution = current_attribution()
        self.inner: Optional[LLMCall] = None
        self.outer = record.active_collector.get()  # LangChain's, when LiteLLM runs inside it

    def offer(self, call: LLMCall) -> bool:
        if call.integration != INTEGRATION:
            self.inner = call  # one plain assignment: safe from a finalizer
        return True

    def provider(self, response: Any) -> str:
        hidden = getattr(response, "_hidden_params", None)
        name = hidden.get("custom_llm_provider") if isinstance(hidden, dict) else None
        if not isinstance(name, str) or not name:
            name = self.provider_hint
        if name is None and self.kwargs_model is not None and "/" in self.kwargs_model:
            name = self.kwargs_model.split("/", 1)[0]
        return PROVIDERS.get(name, name) if name else INTEGRATION

    def emit(self, response: Any, usage: Optional[TokenUsage], source: str, streamed: bool) -> None:
        inner = self.inner
        if inner is not None:
            call = dataclasses.replace(
                inner,
                integration=INTEGRATION,
                attribution=self.attribution,
                extra={**inner.extra, "client": inner.integration},
            )
        else:
            model = getattr(response, "model", None)
            response_id = getattr(response, "id", None)
            call = LLMCall(
                integration=INTEGRATION,
                provider=self.provider(response),
                operation=self.operation,
                model_requested=self.kwargs_model,
                model=model if isinstance(model, str) and model else self.kwargs_model,
                usage=usage,
                usage_source=source if usage is not None else USAGE_UNAVAILABLE,
                streamed=streamed,
                latency_ms=(perf_counter() - self.start) * 1000.0,
                response_id=response_id if isinstance(response_id, str) and response_id else None,
                attribution=self.attribution,
            )
        # Offered to the collector in force around the LiteLLM call (LangChain's), else delivered.
        token = record.active_collector.set(self.outer)
        try:
            record.emit(call)
        finally:
            record.active_collector.reset(token)


def _usage(response: Any) -> Optional[TokenUsage]:
    return chat_usage(getattr(response, "usage", None))


def _chunk_usage(chunk: Any) -> Optional[TokenUsage]:
    usage = getattr(chunk, "usage", None)
    if usage is None:
        hidden = getattr(chunk, "_hidden_params", None)
        usage = hidden.get("usage") if isinstance(hidden, dict) else None
        if type(usage).__name__ == "UnreportedUsage":  # LiteLLM's "the backend reported none"
            return None
    return chat_usage(usage)


class _StreamObserver(StreamObserver):
    __slots__ = ("_last", "_run", "_usage", "stepping")

    def __init__(self, run: _Run) -> None:
        super().__init__()
        self._run = run
        self.stepping = False  # inside __next__: LiteLLM closes its own stream there at its end
        self._usage: Optional[TokenUsage] = None
        self._last: Any = None  # the last chunk's id and model, not the chunk object

    def on_item(self, item: Any) -> None:
        self._last = item
        usage = _chunk_usage(item)
        if usage is not None:
            self._usage = usage

    def on_end(self, completed: bool) -> None:
        source = USAGE_FROM_STREAM if completed else USAGE_PARTIAL_STREAM
        self._run.emit(self._last, self._usage, source, True)
        self._last = None


def _finish(run: _Run, response: Any) -> None:
    try:
        if type(response).__name__ == "CustomStreamWrapper":
            observer = _StreamObserver(run)
            observer.watch()
            setattr(response, _OBSERVER, observer)
            weakref.finalize(response, observer.end_later, False)
        else:
            run.emit(response, _usage(response), USAGE_FROM_RESPONSE, False)
    except Exception:
        logger.debug("bearlumen: metering a litellm call failed", exc_info=True)


def _begin(operation: str, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Optional[_Run]:
    try:
        return _Run(operation, args, kwargs)
    except Exception:
        logger.debug("bearlumen: cannot describe a litellm call", exc_info=True)
        return None


def _call(operation: str) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        run = _begin(operation, args, kwargs)
        if run is None:
            return wrapped(*args, **kwargs)
        token = record.active_collector.set(run)
        try:
            response = wrapped(*args, **kwargs)  # a failed call raises unchanged and records nothing
        finally:
            record.active_collector.reset(token)
        _finish(run, response)
        return response

    return wrapper


def _acall(operation: str) -> Any:
    def wrapper(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        async def run_call() -> Any:
            run = _begin(operation, args, kwargs)
            if run is None:
                return await wrapped(*args, **kwargs)
            token = record.active_collector.set(run)
            try:
                response = await wrapped(*args, **kwargs)
            finally:
                record.active_collector.reset(token)
            _finish(run, response)
            return response

        return run_call()

    return wrapper


def _observer(stream: Any) -> Optional[_StreamObserver]:
    observer = stream.__dict__.get(_OBSERVER) if hasattr(stream, "__dict__") else None
    return observer if isinstance(observer, _StreamObserver) and not observer._ended else None


def _next(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    observer = _observer(instance)
    if observer is None:
        return wrapped(*args, **kwargs)
    token = record.active_collector.set(observer._run)
    observer.stepping = True
    try:
        item = wrapped(*args, **kwargs)
    except StopIteration:
        observer.end(True)
        raise
    except BaseException:
        observer.end(False)
        raise
    finally:
        observer.stepping = False
        record.active_collector.reset(token)
    _see(observer, item)
    return item


def _anext(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    observer = _observer(instance)
    if observer is None:
        return wrapped(*args, **kwargs)

    async def step() -> Any:
        token = record.active_collector.set(observer._run)
        observer.stepping = True
        try:
            item = await wrapped(*args, **kwargs)
        except StopAsyncIteration:
            observer.end(True)
            raise
        except BaseException:
            observer.end(False)
            raise
        finally:
            observer.stepping = False
            record.active_collector.reset(token)
        _see(observer, item)
        return item

    return step()


def _see(observer: _StreamObserver, item: Any) -> None:
    try:
        observer.on_item(item)
    except Exception:
        logger.debug("bearlumen: observing a litellm chunk failed", exc_info=True)


def _close(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    observer = _observer(instance)
    if observer is None or observer.stepping:
        return wrapped(*args, **kwargs)
    token = record.active_collector.set(observer._run)
    try:
        return wrapped(*args, **kwargs)
    finally:
        record.active_collector.reset(token)
        observer.end(False)


def _aclose(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    observer = _observer(instance)
    if observer is None or observer.stepping:
        return wrapped(*args, **kwargs)

    async def closing() -> Any:
        token = record.active_collector.set(observer._run)
        try:
            return await wrapped(*args, **kwargs)
        finally:
            record.active_collector.reset(token)
            observer.end(False)

    return closing()


#: (module, attribute path, wrapper)
TARGETS: Tuple[Tuple[str, str, Any], ...] = (
    ("litellm", "completion", _call("chat.completions")),
    ("litellm", "acompletion", _acall("chat.completions")),
    ("litellm", "embedding", _call("embeddings")),
    ("litellm", "aembedding", _acall("embeddings")),
    (_STREAMS, "CustomStreamWrapper.__next__", _next),
    (_STREAMS, "CustomStreamWrapper.__anext__", _anext),
    (_STREAMS, "CustomStreamWrapper.close", _close),
    (_STREAMS, "CustomStreamWrapper.aclose", _aclose),
)

PATCHES = PatchSet(
    "bearlumen.litellm", [FunctionPatch(module, path, wrapper) for module, path, wrapper in TARGETS]
)


def install() -> None:
    """Patch litellm (now if imported, else when it is). Idempotent."""
    PATCHES.install()


def uninstall() -> None:
    """Restore every patched attribute to the very object it was. Idempotent."""
    PATCHES.uninstall()


__all__ = ["PATCHES", "PROVIDERS", "TARGETS", "install", "uninstall"]
