"""Unauthenticated endpoints: health."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

router = APIRouter(tags=["system"])

_OK = b'{"status":"ok"}'


@router.get("/healthz", responses={200: {"description": '`{"status": "ok"}`'}})
async def healthz() -> Response:
    """Liveness: answers while the process serves requests (no database round trip)."""
    return Response(_OK, media_type="application/json")
