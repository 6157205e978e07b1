"""OTLP/HTTP on the wire: a traces request in (protobuf or JSON, gzip or not), the OTLP answers out.

Decoding uses the maintained ``opentelemetry-proto`` messages. JSON goes through the same messages
(``json_format.ParseDict``), after the one deviation OTLP/JSON makes from the standard protobuf JSON mapping:
trace and span ids are hex strings, not base64. So both encodings reach the span mapper as the same objects.

Answers follow the OTLP/HTTP specification: 200 with an ``ExportTraceServiceResponse`` (its
``partial_success`` counting the spans refused), 400 with a ``google.rpc.Status`` for a malformed request,
415 for an unsupported ``Content-Type`` or ``Content-Encoding`` (gzip and deflate are read); each encoded
like the request (JSON when the request's encoding is unknown).
"""

from __future__ import annotations

import base64
import zlib
from typing import Any, Dict, List, NamedTuple, Optional

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.rpc.status_pb2 import Status
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from bearlumen.server.jsonio import MAX_BODY_BYTES

__all__ = [
    "JSON",
    "PROTOBUF",
    "Answer",
    "Malformed",
    "decode",
    "error_answer",
    "media_type",
    "success_answer",
]

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
_INVALID_ARGUMENT = 3  # google.rpc.Code


class Malformed(Exception):
    """The request cannot be read: answered 400 (or 415, ``status``) and nothing of it is stored."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Answer(NamedTuple):
    status: int
    body: bytes
    media_type: str


def media_type(content_type: Optional[str]) -> Optional[str]:
    """PROTOBUF or JSON for a ``Content-Type`` header (parameters such as charset ignored), else None."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind if kind in (PROTOBUF, JSON) else None


def decode(body: bytes, kind: Optional[str], encoding: Optional[str]) -> ExportTraceServiceRequest:
    """The request in ``body``; Malformed when it cannot be read whole."""
    if kind is None:
        raise Malformed(f"Content-Type must be {PROTOBUF} or {JSON}.", 415)
    body = _decompressed(body, (encoding or "identity").strip().lower())
    request = ExportTraceServiceRequest()
    if kind == PROTOBUF:
        try:
            request.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError) as exc:
            raise Malformed(f"The body is not an OTLP ExportTraceServiceRequest: {_short(exc)}") from None
        return request
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Malformed(f"The body is not valid JSON: {_short(exc)}") from None
    if not isinstance(parsed, dict):
        raise Malformed("The body must be a JSON object (an OTLP ExportTraceServiceRequest).")
    try:
        _hex_ids_to_base64(parsed)
        json_format.ParseDict(parsed, request, ignore_unknown_fields=True)
    except (json_format.ParseError, RecursionError, ValueError, TypeError, AttributeError) as exc:
        raise Malformed(f"The body is not an OTLP ExportTraceServiceRequest: {_short(exc)}") from None
    return request


# The encodings the OTel exporters offer (gzip, and deflate: zlib-wrapped) -> zlib's window bits.
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def _decompressed(body: bytes, encoding: str) -> bytes:
    if encoding in ("identity", ""):
        return body
    if encoding not in _WBITS:
        raise Malformed("Content-Encoding must be gzip, deflate or absent.", 415)
    # Bounded: a small compressed body must not inflate past the limit a plain body has (a zip bomb).
    inflater = zlib.decompressobj(wbits=_WBITS[encoding])
    try:
        data = inflater.decompress(body, MAX_BODY_BYTES + 1)
    except zlib.error as exc:
        raise Malformed(f"The body is not valid {encoding}: {exc}") from None
    if len(data) > MAX_BODY_BYTES:
        raise Malformed(f"The decompressed body exceeds {MAX_BODY_BYTES // 1048576} MiB.")
    if not inflater.eof:
        raise Malformed("The gzip body is truncated.")
    return data


_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_ids_to_base64(request: Dict[str, Any]) -> None:
    """OTLP/JSON writes ids as hex (the protobuf JSON mapping would read base64): convert in place."""
    for resource_spans in _items(request, "resourceSpans", "resource_spans"):
        for scope_spans in _items(resource_spans, "scopeSpans", "scope_spans"):
            for span in _items(scope_spans, "spans"):
                _convert_ids(span)
                for link in _items(span, "links"):
                    _convert_ids(link)


def _items(parent: Any, *names: str) -> List[Any]:
    """The list of objects under ``names``. The protobuf JSON parser would take any iterable for an object
    (``[]``, or a string whose characters it ignores as unknown fields): refused here, down to the links."""
    for name in names:
        value = parent.get(name)
        if isinstance(value, list):
            if not all(isinstance(item, dict) for item in value):
                raise Malformed(f"Each item of {name} must be a JSON object.")
            return value
    return []


def _convert_ids(holder: Dict[str, Any]) -> None:
    for name in _ID_FIELDS:
        value = holder.get(name)
        if isinstance(value, str) and value:
            try:
                holder[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError:
                raise Malformed(f"{name} must be a hex string.") from None


def _short(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0][:200] or type(exc).__name__


def _encode(message: Message, kind: Optional[str]) -> bytes:
    if kind == PROTOBUF:
        return bytes(message.SerializeToString())
    return orjson.dumps(json_format.MessageToDict(message))


def success_answer(kind: Optional[str], rejected: int, message: str) -> Answer:
    """200: an ``ExportTraceServiceResponse``, with ``partial_success`` when some spans were refused."""
    response = ExportTraceServiceResponse()
    if rejected or message:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = message
    kind = kind or JSON
    return Answer(200, _encode(response, kind), kind)


def error_answer(kind: Optional[str], status: int, message: str) -> Answer:
    """A ``google.rpc.Status`` body, as OTLP/HTTP answers a request it refuses."""
    kind = kind or JSON
    return Answer(status, _encode(Status(code=_INVALID_ARGUMENT, message=message), kind), kind)
