"""Ollama through the `ollama` client (`pip install bearlumen[ollama]`): chat, generate, embed, streams.

Every model call of `ollama.Client` / `ollama.AsyncClient` (and of the module-level `ollama.chat` & co,
which are bound methods of a default client) goes through `_request(cls, method, path, ...)`, so that one
method is patched (:data:`TARGETS`) and the call is recognised by its path (:data:`OPERATIONS`); model
management (`pull`, `push`, `create`, ...) is not metered.

- Tokens are exact: `prompt_eval_count` (input; a prompt prefix still in the model's KV cache is not
  evaluated again and not counted) and `eval_count` (output). A local model has no list price: the call
  is unpriced unless the user prices the model (`instrument(pricing={"models": {"llama3": {...}}})`).
- Ollama responses carry no id: each call is its own event (a random idempotency key, reused by retries
  of the delivery).
- A stream is recorded once when it ends (its last item, `done`, carries the counts); a failed call
  records nothing and raises unchanged.
"""

from __future__ import annotations

import logging
from time import perf_counter
from typing import Any, Dict, List, Optional, Tuple

from bearlumen.metering.record import (
    USAGE_FROM_RESPONSE,
    USAGE_FROM_STREAM,
    USAGE_PARTIAL_STREAM,
    USAGE_UNAVAILABLE,
    LLMCall,
    TokenUsage,
    emit,
)
from bearlumen.scopes import current_attribution

from ._iterators import observe_async_iterator, observe_iterator
from ._streams import StreamObserver
from ._wrapping import FunctionPatch, PatchSet

logger = logging.getLogger("bearlumen")

INTEGRATION = "ollama"
PROVIDER = "ollama"

#: (module, class, method, async?): the one request method of each client.
TARGETS: Tuple[Tuple[str, str, str, bool], ...] = (
    ("ollama._client", "Client", "_request", False),
    ("ollama._client", "AsyncClient", "_request", True),
)

#: API path -> operation; other paths (model management) are not metered.
OPERATIONS: Dict[str, str] = {"/api/chat": "chat", "/api/generate": "generate", "/api/embed": "embed"}


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _count(value: Any) -> Optional[int]:
    return value if type(value) is int and value >= 0 else None


def ollama_usage(response: Any) -> Optional[TokenUsage]:
    """The buckets of a final response / stream item (object or JSON body), or None without counts."""
    prompt, generated = _count(_get(response, "prompt_eval_count")), _count(_get(response, "eval_count"))
    if prompt is None and generated is None:
        return None
    return TokenUsage(input_tokens=prompt or 0, output_tokens=generated or 0)


class _Call:
    """One request: what was asked, when, in which scope."""

    __slots__ = ("attribution", "model_requested", "operation", "start")

    def __init__(self, operation: str, kwargs: Dict[str, Any]) -> None:
        body = kwargs.get("json")
        model = body.get("model") if isinstance(body, dict) else None
        self.operation = operation
        self.model_requested = model if isinstance(model, str) and model else None
        self.start = perf_counter()
        self.attribution = current_attribution()

    def emit(self, response: Any, source: str, streamed: bool) -> None:
        usage = ollama_usage(response)
        model = _get(response, "model")
        emit(
            LLMCall(
                integration=INTEGRATION,
                provider=PROVIDER,
                operation=self.operation,
                model_requested=self.model_requested,
                model=model if isinstance(model, str) and model else self.model_requested,
                usage=usage,
                usage_source=source if usage is not None else USAGE_UNAVAILABLE,
                streamed=streamed,
                latency_ms=(perf_counter() - self.start) * 1000.0,
                attribution=self.attribution,
            )
        )


def _begin(args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Optional[_Call]:
    try:
        path = args[2] if len(args) > 2 else kwargs.get("url")
        operation = OPERATIONS.get(path) if isinstance(path, str) else None
        return None if operation is None else _Call(operation, kwargs)
    except Exception:
        logger.debug("bearlumen: cannot describe an ollama call", exc_info=True)
        return None


def _record(call: _Call, response: Any) -> None:
    try:
        call.emit(response, USAGE_FROM_RESPONSE, False)
    except Exception:
        logger.debug("bearlumen: metering an ollama response failed", exc_info=True)


class _PartsObserver(StreamObserver):
    """Keeps the last item of a stream (the `done` one carries the counts); emits once at its end."""

    __slots__ = ("_call", "_done", "_last")

    def __init__(self, call: _Call) -> None:
        super().__init__()
        self._call = call
        self._last: Any = None
        self._done = False

    def on_item(self, item: Any) -> None:
        self._last = item
        self._done = self._done or _get(item, "done") is True

    def on_end(self, completed: bool) -> None:
        if self._last is None:  # never iterated (the request is sent on first iteration) or failed
            return
        source = USAGE_FROM_STREAM if self._done or completed else USAGE_PARTIAL_STREAM
        self._call.emit(self._last, source, True)


def _sync_request(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call = _begin(args, kwargs)
    result = wrapped(*args, **kwargs)  # a failed call raises unchanged and records nothing
    if call is None:
        return result
    if not kwargs.get("stream"):
        _record(call, result)
        return result
    try:
        return observe_iterator(result, _PartsObserver(call))
    except Exception:
        logger.debug("bearlumen: cannot observe an ollama stream", exc_info=True)
        return result


async def _async_request(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call = _begin(args, kwargs)
    result = await wrapped(*args, **kwargs)
    if call is None:
        return result
    if not kwargs.get("stream"):
        _record(call, result)
        return result
    try:
        return observe_async_iterator(result, _PartsObserver(call))
    except Exception:
        logger.debug("bearlumen: cannot observe an ollama stream", exc_info=True)
        return result


def _patches() -> List[FunctionPatch]:
    return [
        FunctionPatch(module, f"{owner}.{method}", _async_request if is_async else _sync_request)
        for module, owner, method, is_async in TARGETS
    ]


PATCHES = PatchSet("bearlumen.ollama", _patches())


def install() -> None:
    """Patch ollama (now if imported, else when it is). Idempotent."""
    PATCHES.install()


def uninstall() -> None:
    """Restore ollama's request methods to the very objects they were. Idempotent."""
    PATCHES.uninstall()


__all__ = ["OPERATIONS", "PATCHES", "TARGETS", "install", "ollama_usage", "uninstall"]
