"""AWS Bedrock Runtime through boto3 / botocore (`pip install bearlumen[bedrock]`): Converse, ConverseStream,
InvokeModel, InvokeModelWithResponseStream.

Every boto3 client call goes through `BaseClient._make_api_call(operation_name, params)`; that one method is
patched and the call is recognised by service and operation (:data:`OPERATIONS`); any other service or
operation passes straight through.

- Usage: `usage{inputTokens, outputTokens, cacheReadInputTokens, cacheWriteInputTokens}`; `inputTokens`
  exclude cache reads and writes. Read by the same reader as `bearlumen.track()` (`_detect`).
- The model billed is the `modelId` requested (an inference profile such as `us.anthropic...` has its own
  price; an ARN is billed as its last segment); the request id is the idempotency key.
- ConverseStream: the response's `stream` stays the very botocore `EventStream` (its class is swapped for
  a subclass that shows each event to an observer); the call is recorded once when the stream ends,
  exhausted, closed or dropped. The `metadata` event near the end carries the usage.
- InvokeModel: usage from the `x-amzn-bedrock-*-token-count` response headers, which Bedrock sends for
  every model family (Anthropic, Nova, Titan, Meta, Mistral, Cohere, imported models) and bills; the body
  (a `StreamingBody` the user reads) is never touched. InvokeModelWithResponseStream: the response's
  `body` EventStream is observed as ConverseStream's is; usage from the last chunk's
  `amazon-bedrock-invocationMetrics`, else from the model's native chunks (`_bedrock_usage`).
- The `anthropic` SDK's `AnthropicBedrock` client speaks HTTP itself (botocore only signs its requests),
  so it never reaches `_make_api_call`: it is metered once, by the anthropic integration.
"""

from __future__ import annotations

import json
import logging
import weakref
from time import perf_counter
from typing import Any, Dict, Iterator, Optional, Tuple

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

from ._bedrock_usage import StreamUsage, header_usage
from ._detect import converse_facts
from ._streams import StreamObserver, _observed
from ._wrapping import FunctionPatch, PatchSet

logger = logging.getLogger("bearlumen")

INTEGRATION = "bedrock"
PROVIDER = "aws"
SERVICE = "bedrock-runtime"

#: botocore operation name -> operation recorded
OPERATIONS: Dict[str, str] = {
    "Converse": "converse",
    "ConverseStream": "converse_stream",
    "InvokeModel": "invoke_model",
    "InvokeModelWithResponseStream": "invoke_model_with_response_stream",
}

#: streaming operation -> the response key holding its EventStream
STREAMS: Dict[str, str] = {"converse_stream": "stream", "invoke_model_with_response_stream": "body"}

#: (module, class, method)
TARGETS: Tuple[Tuple[str, str, str], ...] = (("botocore.client", "BaseClient", "_make_api_call"),)


class _Call:
    __slots__ = ("attribution", "model_requested", "operation", "start")

    def __init__(self, operation: str, params: Any) -> None:
        model = params.get("modelId") if isinstance(params, dict) else None
        self.operation = operation
        self.model_requested = model if isinstance(model, str) and model else None
        self.start = perf_counter()
        self.attribution = current_attribution()

    def emit(
        self, usage: Optional[TokenUsage], request_id: Optional[str], source: str, streamed: bool
    ) -> None:
        emit(
            LLMCall(
                integration=INTEGRATION,
                provider=PROVIDER,
                operation=self.operation,
                model_requested=self.model_requested,
                model=self.model_requested,
                usage=usage,
                usage_source=source if usage is not None else USAGE_UNAVAILABLE,
                streamed=streamed,
                latency_ms=(perf_counter() - self.start) * 1000.0,
                response_id=request_id,
                attribution=self.attribution,
            )
        )


def _metadata(response: Any) -> Any:
    return response.get("ResponseMetadata") if isinstance(response, dict) else None


def _request_id(response: Any) -> Optional[str]:
    metadata = _metadata(response)
    value = metadata.get("RequestId") if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and value else None


def _headers(response: Any) -> Any:
    metadata = _metadata(response)
    return metadata.get("HTTPHeaders") if isinstance(metadata, dict) else None


def _begin(instance: Any, args: Tuple[Any, ...]) -> Optional[_Call]:
    try:
        if getattr(getattr(instance, "_service_model", None), "service_name", None) != SERVICE:
            return None
        operation = OPERATIONS.get(args[0]) if args else None
        return None if operation is None else _Call(operation, args[1] if len(args) > 1 else None)
    except Exception:
        logger.debug("bearlumen: cannot describe a bedrock call", exc_info=True)
        return None


class _EventObserver(StreamObserver):
    """A ConverseStream: the `metadata` event carries the usage."""

    __slots__ = ("_call", "_request_id", "_usage")

    def __init__(self, call: _Call, request_id: Optional[str]) -> None:
        super().__init__()
        self._call = call
        self._request_id = request_id
        self._usage: Optional[TokenUsage] = None

    def on_item(self, item: Any) -> None:
        metadata = item.get("metadata") if isinstance(item, dict) else None
        facts = converse_facts(metadata) if isinstance(metadata, dict) else None
        if facts is not None and facts.usage is not None:
            self._usage = facts.usage

    def usage(self) -> Optional[TokenUsage]:
        return self._usage

    def final(self) -> bool:
        """The usage seen is the call's final one (the stream may still have been cut after it)."""
        return self._usage is not None

    def on_end(self, completed: bool) -> None:
        source = USAGE_FROM_STREAM if completed or self.final() else USAGE_PARTIAL_STREAM
        self._call.emit(self.usage(), self._request_id, source, True)


class _ChunkObserver(_EventObserver):
    """An InvokeModelWithResponseStream: `{"chunk": {"bytes": <native JSON>}}` events."""

    __slots__ = ("_counts",)

    def __init__(self, call: _Call, request_id: Optional[str]) -> None:
        super().__init__(call, request_id)
        self._counts = StreamUsage()

    def on_item(self, item: Any) -> None:
        chunk = item.get("chunk") if isinstance(item, dict) else None
        data = chunk.get("bytes") if isinstance(chunk, dict) else None
        # Only a chunk naming a token count is decoded: text deltas pass at the cost of one search.
        if isinstance(data, (bytes, bytearray)) and b"oken" in data:
            self._counts.add(json.loads(data))

    def usage(self) -> Optional[TokenUsage]:
        return self._counts.usage()

    def final(self) -> bool:
        return self._counts.metrics is not None


_OBSERVER = "_bearlumen_observer"
_observed_classes: Dict[Any, Any] = {}


def _observed_class(base: Any) -> Any:
    """A subclass of botocore's EventStream whose iteration and close() tell the stream's observer."""
    cls = _observed_classes.get(base)
    if cls is not None:
        return cls

    def __iter__(self: Any) -> Iterator[Any]:
        # the generator `_streams` watches openai's and anthropic's streams with (GC-safe ends)
        return _observed(base.__iter__(self), getattr(self, _OBSERVER))

    def close(self: Any) -> Any:
        try:
            return base.close(self)
        finally:
            getattr(self, _OBSERVER).end(False)

    cls = type(base.__name__, (base,), {"__iter__": __iter__, "close": close, "__module__": base.__module__})
    _observed_classes[base] = cls
    return cls


def _observe_stream(response: Any, call: _Call) -> None:
    stream = response.get(STREAMS[call.operation]) if isinstance(response, dict) else None
    if stream is None or not hasattr(type(stream), "__iter__"):
        call.emit(None, _request_id(response), USAGE_UNAVAILABLE, True)
        return
    kind = _EventObserver if call.operation == "converse_stream" else _ChunkObserver
    observer = kind(call, _request_id(response))
    observer.watch()
    setattr(stream, _OBSERVER, observer)
    stream.__class__ = _observed_class(type(stream))
    # dropped unread: a finalizer runs inside a garbage collection, so it only hands the end over
    weakref.finalize(stream, observer.end_later, False)


def _make_api_call(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
    call = _begin(instance, args)
    response = wrapped(*args, **kwargs)  # a failed call raises unchanged and records nothing
    if call is None:
        return response
    try:
        if call.operation in STREAMS:
            _observe_stream(response, call)
        elif call.operation == "invoke_model":
            call.emit(header_usage(_headers(response)), _request_id(response), USAGE_FROM_RESPONSE, False)
        else:
            facts = converse_facts(response)
            call.emit(facts.usage if facts else None, _request_id(response), USAGE_FROM_RESPONSE, False)
    except Exception:
        logger.debug("bearlumen: metering a bedrock response failed", exc_info=True)
    return response


PATCHES = PatchSet(
    "bearlumen.bedrock",
    [FunctionPatch(module, f"{owner}.{method}", _make_api_call) for module, owner, method in TARGETS],
)


def install() -> None:
    """Patch botocore (now if imported, else when it is). Idempotent."""
    PATCHES.install()


def uninstall() -> None:
    """Restore botocore's `_make_api_call` to the very object it was. Idempotent."""
    PATCHES.uninstall()


__all__ = ["OPERATIONS", "PATCHES", "TARGETS", "install", "uninstall"]
