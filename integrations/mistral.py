"""Mistral through `mistralai` (`pip install bearlumen[mistral]`): chat, FIM, agents, embeddings.

The wrapped methods are listed in :data:`TARGETS` (sync and async twins; `chat.parse*` call `complete` /
`stream` and are covered by them). A method missing from the installed version is skipped.

- Usage is OpenAI-shaped (`prompt_tokens` include `prompt_tokens_details.cached_tokens`, which mistralai
  keeps as an untyped extra field); it is read by the same reader as `bearlumen.track()` (`_detect`), so a
  response also tracked by hand is recorded once (the response id is the idempotency key).
- A stream is the very `EventStream` the library returned: its `generator` is swapped for one that shows
  each event to an observer, which records the call once when the stream ends (exhausted, `close()` /
  `with` exit, broken off and dropped). The last chunk carries the usage.
- A failed call records nothing and raises unchanged.
"""

from __future__ import annotations

import logging
import weakref
from time import perf_counter
from typing import Any, Callable, Dict, List, Optional, Tuple

from bearlumen.metering.record import (
    USAGE_FROM_RESPONSE,
    USAGE_FROM_STREAM,
    USAGE_PARTIAL_STREAM,
    USAGE_UNAVAILABLE,
    LLMCall,
    emit,
)
from bearlumen.scopes import current_attribution

from ._detect import Facts, StreamState, describe
from ._iterators import observe_async_iterator, observe_iterator
from ._streams import StreamObserver
from ._wrapping import FunctionPatch, PatchSet

logger = logging.getLogger("bearlumen")

INTEGRATION = "mistral"

CALL, ACALL, STREAM, ASTREAM = "call", "acall", "stream", "astream"
_CLIENT = "mistralai.client"

#: (module, class, method, how)
TARGETS: Tuple[Tuple[str, str, str, str], ...] = (
    (f"{_CLIENT}.chat", "Chat", "complete", CALL),
    (f"{_CLIENT}.chat", "Chat", "complete_async", ACALL),
    (f"{_CLIENT}.chat", "Chat", "stream", STREAM),
    (f"{_CLIENT}.chat", "Chat", "stream_async", ASTREAM),
    (f"{_CLIENT}.fim", "Fim", "complete", CALL),
    (f"{_CLIENT}.fim", "Fim", "complete_async", ACALL),
    (f"{_CLIENT}.fim", "Fim", "stream", STREAM),
    (f"{_CLIENT}.fim", "Fim", "stream_async", ASTREAM),
    (f"{_CLIENT}.agents", "Agents", "complete", CALL),
    (f"{_CLIENT}.agents", "Agents", "complete_async", ACALL),
    (f"{_CLIENT}.agents", "Agents", "stream", STREAM),
    (f"{_CLIENT}.agents", "Agents", "stream_async", ASTREAM),
    (f"{_CLIENT}.embeddings", "Embeddings", "create", CALL),
    (f"{_CLIENT}.embeddings", "Embeddings", "create_async", ACALL),
)


class _Call:
    """One request: what was asked, when, in which scope."""

    __slots__ = ("attribution", "model_requested", "start")

    def __init__(self, kwargs: Dict[str, Any]) -> None:
        model = kwargs.get("model")
        self.model_requested = model if isinstance(model, str) and model else None
        self.start = perf_counter()
        self.attribution = current_attribution()

    def emit(self, facts: Optional[Facts], source: str, streamed: bool) -> None:
        usage = facts.usage if facts is not None else None
        emit(
            LLMCall(
                integration=INTEGRATION,
                provider="mistral",
                operation=facts.operation if facts is not None else "chat.completions",
                model_requested=self.model_requested,
                model=(facts.model if facts is not None else None) or self.model_requested,
                usage=usage,
                usage_source=source if usage is not None else USAGE_UNAVAILABLE,
                streamed=streamed,
                latency_ms=(perf_counter() - self.start) * 1000.0,
                response_id=facts.response_id if facts is not None else None,
                attribution=self.attribution,
            )
        )


def _begin(kwargs: Dict[str, Any]) -> Optional[_Call]:
    try:
        return _Call(kwargs)
    except Exception:
        logger.debug("bearlumen: cannot describe a mistral call", exc_info=True)
        return None


def _record(call: Optional[_Call], response: Any) -> None:
    if call is None:
        return
    try:
        call.emit(describe(response), USAGE_FROM_RESPONSE, False)
    except Exception:
        logger.debug("bearlumen: metering a mistral response failed", exc_info=True)


class _EventObserver(StreamObserver):
    __slots__ = ("_call", "_state")

    def __init__(self, call: _Call) -> None:
        super().__init__()
        self._call = call
        self._state = StreamState()

    def on_item(self, item: Any) -> None:
        self._state.add(item)

    def on_end(self, completed: bool) -> None:
        state = self._state
        source = USAGE_FROM_STREAM if completed or state.complete else USAGE_PARTIAL_STREAM
        self._call.emit(state.facts, source, True)


def _chain_close(stream: Any, observer: StreamObserver, is_async: bool) -> None:
    # Through a weak reference: a strong one would make a cycle (stream -> its __dict__ -> closure).
    method: Callable[..., Any] = type(stream).close
    stream_ref = weakref.ref(stream)
    if is_async:

        async def aclose_then_end() -> Any:
            target = stream_ref()
            try:
                return None if target is None else await method(target)
            finally:
                observer.end(False)

        stream.close = aclose_then_end
    else:

        def close_then_end() -> Any:
            target = stream_ref()
            try:
                return None if target is None else method(target)
            finally:
                observer.end(False)

        stream.close = close_then_end


def _observe(stream: Any, call: Optional[_Call], is_async: bool) -> None:
    """Watch the EventStream in place (same object for the caller); an unknown shape is left alone."""
    if call is None or not hasattr(stream, "generator"):
        return
    try:
        observer = _EventObserver(call)
        wrap = observe_async_iterator if is_async else observe_iterator
        stream.generator = wrap(stream.generator, observer)
        _chain_close(stream, observer, is_async)
    except Exception:
        logger.debug("bearlumen: cannot observe a mistral stream", exc_info=True)


def _call(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call = _begin(kwargs)
    response = wrapped(*args, **kwargs)
    _record(call, response)
    return response


async def _acall(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call = _begin(kwargs)
    response = await wrapped(*args, **kwargs)
    _record(call, response)
    return response


def _stream(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call = _begin(kwargs)
    stream = wrapped(*args, **kwargs)
    _observe(stream, call, is_async=False)
    return stream


async def _astream(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call = _begin(kwargs)
    stream = await wrapped(*args, **kwargs)
    _observe(stream, call, is_async=True)
    return stream


_WRAPPERS = {CALL: _call, ACALL: _acall, STREAM: _stream, ASTREAM: _astream}


def _patches() -> List[FunctionPatch]:
    return [
        FunctionPatch(module, f"{owner}.{method}", _WRAPPERS[how]) for module, owner, method, how in TARGETS
    ]


PATCHES = PatchSet("bearlumen.mistral", _patches())


def install() -> None:
    """Patch mistralai (now if imported, else when it is). Idempotent."""
    PATCHES.install()


def uninstall() -> None:
    """Restore every patched method of mistralai to the very object it was. Idempotent."""
    PATCHES.uninstall()


__all__ = ["PATCHES", "TARGETS", "install", "uninstall"]
