"""Unauthenticated endpoints for operators: liveness, readiness, and Prometheus metrics (``--metrics``)."""

from __future__ import annotations

from typing import Any, Dict

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bearlumen.server.api import models
from bearlumen.server.db import Database
from bearlumen.server.errors import ApiError
from bearlumen.server.jsonio import dumps
from bearlumen.server.metrics import CONTENT_TYPE
from bearlumen.server.migrate import current_revision

router = APIRouter(tags=["system"])
metrics_router = APIRouter(tags=["system"])

_OK = b'{"status":"ok"}'
_UNREADY = {
    "description": "Not ready: the database is unreachable or its schema is not this version's.",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
}


@router.get("/healthz", response_model=models.Health)
async def healthz() -> Response:
    """Liveness: answers while the process serves requests (no database round trip)."""
    return Response(_OK, media_type="application/json")


@router.get("/readyz", response_model=models.Ready, responses={503: _UNREADY})
async def readyz(request: Request) -> Response:
    """Readiness: the database answers and its schema is at the revision this version needs."""
    state = request.app.state
    ready = await run_in_threadpool(_readiness, state.db, state.schema_head)
    return Response(dumps(ready), media_type="application/json")


def _readiness(db: Database, head: str) -> Dict[str, Any]:
    try:
        db.read(lambda conn: conn.execute(text("SELECT 1")).scalar())
        revision = current_revision(db)
    except Exception:
        raise _unready("The database is unreachable.") from None
    if revision != head:
        raise _unready(
            f"The database schema is at {revision}, this service needs {head}: run `bearlumen migrate`."
        )
    return {"status": "ready", "schemaRevision": revision}


def _unready(message: str) -> ApiError:
    return ApiError(503, "unavailable", message, headers={"Retry-After": "1"})


@metrics_router.get(
    "/metrics",
    responses={
        200: {
            "description": "Prometheus text format.",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
    response_class=Response,
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process (enabled with `bearlumen serve --metrics`)."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
