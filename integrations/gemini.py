"""Google Gemini through `google-genai` (`pip install bearlumen[gemini]`): the Gemini API and Vertex AI.

One billable call is one HTTP request, so the patches sit on the per-request methods that every public
path goes through: `models.generate_content` / `generate_content_stream`, `client.aio`, `chats`, automatic
function calling (one request per round) and automatic continuation (one request per hop; the public
method merges the hops' responses, which would hide all but one usage). The wrapped methods are listed
in :data:`TARGETS`; a method missing from the installed version is skipped, never an error.

- Usage is read by `_gemini_usage.gemini_usage` (cached, thoughts and tool-use prompt tokens, modality
  parts), the same reader `bearlumen.track()` uses; the provider is "google" on both platforms (one price
  list; `metadata.platform` says "gemini_api" or "vertex_ai"), so a response tracked by hand as well is
  recorded once (same response id, same key).
- A stream reports running totals on every chunk (Vertex: on the last one only): the last usage seen is
  the call's. It is recorded once when the stream ends, however it ends; a failed request records nothing.
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

from ._gemini_usage import field, gemini_tier, gemini_usage
from ._iterators import observe_async_iterator, observe_iterator
from ._streams import StreamObserver
from ._wrapping import FunctionPatch, PatchSet

logger = logging.getLogger("bearlumen")

INTEGRATION = "gemini"
PROVIDER = "google"
OPERATION = "generate_content"

_MODELS = "google.genai.models"

# How each target is wrapped.
CALL = "call"  # returns a GenerateContentResponse
ACALL = "acall"  # async: returns a GenerateContentResponse
STREAM = "stream"  # a generator of GenerateContentResponse chunks
ASTREAM = "astream"  # async: returns an async iterator of chunks

#: (module, class, method, how): one HTTP request each.
TARGETS: Tuple[Tuple[str, str, str, str], ...] = (
    (_MODELS, "Models", "_generate_content", CALL),
    (_MODELS, "Models", "_generate_content_stream", STREAM),
    (_MODELS, "AsyncModels", "_generate_content", ACALL),
    (_MODELS, "AsyncModels", "_generate_content_stream", ASTREAM),
)


# -- what a call is --------------------------------------------------------------------------------------


def _platform(instance: Any) -> str:
    client = getattr(instance, "_api_client", None)
    return "vertex_ai" if getattr(client, "vertexai", False) else "gemini_api"


def _requested(kwargs: Dict[str, Any]) -> Optional[str]:
    model = kwargs.get("model")
    return model if isinstance(model, str) and model else None


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


class _Call:
    """What is known of one request before its answer: who asked, for what, when."""

    __slots__ = ("attribution", "model_requested", "platform", "start")

    def __init__(self, instance: Any, kwargs: Dict[str, Any]) -> None:
        self.platform = _platform(instance)
        self.model_requested = _requested(kwargs)
        self.start = perf_counter()
        self.attribution = current_attribution()

    def emit(self, response: Any, usage: Optional[TokenUsage], source: str, streamed: bool) -> None:
        metadata = field(response, "usage_metadata", "usageMetadata")
        emit(
            LLMCall(
                integration=INTEGRATION,
                provider=PROVIDER,
                operation=OPERATION,
                model_requested=self.model_requested,
                model=_text(field(response, "model_version", "modelVersion")) or self.model_requested,
                usage=usage,
                usage_source=source if usage is not None else USAGE_UNAVAILABLE,
                streamed=streamed,
                latency_ms=(perf_counter() - self.start) * 1000.0,
                response_id=_text(field(response, "response_id", "responseId")),
                attribution=self.attribution,
                extra={"platform": self.platform},
                tier=gemini_tier(metadata) if metadata is not None else None,
            )
        )


def _begin(instance: Any, kwargs: Dict[str, Any]) -> Optional[_Call]:
    try:
        return _Call(instance, kwargs)
    except Exception:
        logger.debug("bearlumen: cannot describe a gemini call", exc_info=True)
        return None


def _record(call: Optional[_Call], response: Any) -> None:
    if call is None:
        return
    try:
        usage = gemini_usage(field(response, "usage_metadata", "usageMetadata"))
        call.emit(response, usage, USAGE_FROM_RESPONSE, False)
    except Exception:
        logger.debug("bearlumen: metering a gemini response failed", exc_info=True)


class _ChunkObserver(StreamObserver):
    """Keeps the last chunk that reported usage (running totals); emits once at the stream's end."""

    __slots__ = ("_call", "_last", "_usage")

    def __init__(self, call: _Call) -> None:
        super().__init__()
        self._call = call
        self._last: Any = None  # the last chunk seen (its id and model version)
        self._usage: Optional[TokenUsage] = None

    def on_item(self, item: Any) -> None:
        self._last = item
        usage = gemini_usage(field(item, "usage_metadata", "usageMetadata"))
        if usage is not None:
            self._usage = usage

    def on_end(self, completed: bool) -> None:
        if self._last is None:  # never iterated (the sync request is sent on first iteration) or failed
            return
        self._call.emit(
            self._last, self._usage, USAGE_FROM_STREAM if completed else USAGE_PARTIAL_STREAM, True
        )


# -- wrappers --------------------------------------------------------------------------------------------


def _call(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call = _begin(instance, kwargs)
    response = wrapped(*args, **kwargs)  # a failed request raises unchanged and records nothing
    _record(call, response)
    return response


async def _acall(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call = _begin(instance, kwargs)
    response = await wrapped(*args, **kwargs)
    _record(call, response)
    return response


def _stream(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call = _begin(instance, kwargs)
    stream = wrapped(*args, **kwargs)
    if call is None:
        return stream
    try:
        return observe_iterator(stream, _ChunkObserver(call))
    except Exception:
        logger.debug("bearlumen: cannot observe a gemini stream", exc_info=True)
        return stream


async def _astream(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call = _begin(instance, kwargs)
    stream = await wrapped(*args, **kwargs)
    if call is None:
        return stream
    try:
        return observe_async_iterator(stream, _ChunkObserver(call))
    except Exception:
        logger.debug("bearlumen: cannot observe a gemini stream", exc_info=True)
        return stream


_WRAPPERS = {CALL: _call, ACALL: _acall, STREAM: _stream, ASTREAM: _astream}


# -- install / uninstall ---------------------------------------------------------------------------------


def _patches() -> List[FunctionPatch]:
    return [
        FunctionPatch(module, f"{owner}.{method}", _WRAPPERS[how]) for module, owner, method, how in TARGETS
    ]


PATCHES = PatchSet("bearlumen.gemini", _patches())


def install() -> None:
    """Patch google-genai (now if imported, else when it is). Idempotent."""
    PATCHES.install()


def uninstall() -> None:
    """Restore every patched method of google-genai to the very object it was. Idempotent."""
    PATCHES.uninstall()


__all__ = ["PATCHES", "TARGETS", "install", "uninstall"]
