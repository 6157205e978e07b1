"""/v1/traces: the OTLP/HTTP traces endpoint (docs/api.md, "OpenTelemetry")."""

from __future__ import annotations

from typing import Optional

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bearlumen.server.api._call import bearer
from bearlumen.server.gate import principal_for
from bearlumen.server.jsonio import read_body
from bearlumen.server.keys import Principal
from bearlumen.server.otlp import wire
from bearlumen.server.otlp.export import export

router = APIRouter(prefix="/v1", tags=["opentelemetry"], dependencies=[Depends(bearer)])

_STATUS_SCHEMA = {
    "type": "object",
    "description": "A google.rpc.Status (protobuf, or its JSON form for a JSON request).",
    "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
}
_BODY = {"schema": {"type": "string", "format": "binary"}}
_JSON_REQUEST = {
    "schema": {
        "type": "object",
        "description": "OTLP/JSON: an ExportTraceServiceRequest (hex ids); unknown fields are ignored.",
        # null is the default value in the protobuf JSON mapping, as absent
        "properties": {"resourceSpans": {"type": ["array", "null"], "items": {"type": "object"}}},
    }
}


@router.post(
    "/traces",
    summary="Export traces (OTLP/HTTP)",
    description="Model-call spans of OpenTelemetry GenAI instrumentations become usage events.",
    responses={
        200: {
            "description": "An ExportTraceServiceResponse; `partial_success` counts refused spans.",
            "content": {wire.PROTOBUF: _BODY, wire.JSON: {"schema": {"type": "object"}}},
        },
        400: {
            "description": "The request is malformed; nothing was stored.",
            "content": {wire.PROTOBUF: _BODY, wire.JSON: {"schema": _STATUS_SCHEMA}},
        },
        415: {
            "description": "Content-Type is not application/x-protobuf or application/json, or "
            "Content-Encoding is not gzip.",
            "content": {wire.JSON: {"schema": _STATUS_SCHEMA}},
        },
    },
    openapi_extra={
        "requestBody": {"required": True, "content": {wire.PROTOBUF: _BODY, wire.JSON: _JSON_REQUEST}}
    },
)
async def export_traces(request: Request) -> Response:
    principal: Optional[Principal] = getattr(request.state, "principal", None)
    if principal is None:  # only without the gate in front (it admits every /v1 request)
        principal = await run_in_threadpool(
            principal_for, request.app.state.db, request.headers.get("authorization")
        )
    kind = wire.media_type(request.headers.get("content-type"))
    body = await read_body(request)
    answer, result = await run_in_threadpool(
        export,
        request.app.state.db,
        principal.tenant_id,
        body,
        kind,
        request.headers.get("content-encoding"),
    )
    metrics = request.app.state.metrics
    if metrics is not None:
        metrics.events(result.recorded, result.duplicates)
    return Response(answer.body, status_code=answer.status, media_type=answer.media_type)
