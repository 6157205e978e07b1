"""JSON in and out.

Bodies are parsed with orjson (fast). Where a number's exact decimal value matters (an event's quantity and
``provider_cost_usd``) and the client sent a JSON float, the caller parses the body again with
``exact=True`` (``parse_float=Decimal``), so ``4.50`` is the decimal 4.50, never a binary approximation.
NaN and Infinity are rejected either way. Responses are serialized with orjson (exact quantities ride
along as ``orjson.Fragment`` literals).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Dict, Optional

import orjson
from starlette.requests import Request
from starlette.responses import Response

from bearlumen.server.errors import ApiError

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "dumps", "json_response", "loads_body", "read_body", "too_large"]

# 1000 events with 16 KiB of metadata each fit with room to spare.
MAX_BODY_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 1024  # nesting levels of a request body (orjson's parser limit)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


_decoder = json.JSONDecoder(parse_float=Decimal, parse_constant=_reject_constant)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # finite: NaN/Infinity never get past the decoder
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default)


def json_response(content: Any, status: int = 200, headers: Optional[Dict[str, str]] = None) -> Response:
    return Response(dumps(content), status_code=status, headers=headers, media_type="application/json")


async def read_body(request: Request) -> bytes:
    """The raw body, refusing more than MAX_BODY_BYTES before buffering it all (``gate.Gate`` enforces the
    same limit on the stream for every route; this keeps it for an app mounted without the gate)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large()
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large()
        chunks.append(chunk)
    return b"".join(chunks)


def too_large() -> ApiError:
    return ApiError(
        413,
        "request_too_large",
        f"The request body exceeds {MAX_BODY_BYTES // 1048576} MiB; send fewer events per request.",
    )


def loads_body(body: bytes, *, exact: bool = False) -> Dict[str, Any]:
    """Parse a request body that must be a JSON object (``exact``: JSON floats become Decimal)."""
    try:
        if exact:
            value = _decoder.decode(body.decode("utf-8"))
        else:
            try:
                value = orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                if "depth limit" in str(exc):
                    raise RecursionError from None
                # the standard parser also reads huge numbers, and words errors well
                value = _decoder.decode(body.decode("utf-8"))
    except RecursionError:
        raise ApiError(
            400, "invalid_request", f"The request body is nested more than {MAX_DEPTH} levels deep."
        ) from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, "invalid_request", f"The request body is not valid JSON: {_short(exc)}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "invalid_request", "The request body must be a JSON object.")
    return value


def _short(exc: Exception) -> str:
    return str(exc).split("\n", 1)[0][:200]
