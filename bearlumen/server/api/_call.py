"""The one path every authenticated request takes.

The key and the rate limit were checked by ``gate.Gate`` before the body was read (the principal is on
``request.state``). The handler reads the body on the event loop; then a single worker-thread hop parses the
JSON, runs the service function and serializes the answer. One hop keeps per-request overhead low, and
nothing that touches the database ever runs on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from fastapi import Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bearlumen.server.db import Database
from bearlumen.server.errors import FieldError
from bearlumen.server.gate import principal_for
from bearlumen.server.jsonio import dumps, loads_body, read_body
from bearlumen.server.keys import Principal

__all__ = ["Body", "Ctx", "bearer", "call"]

# Declares the scheme in the OpenAPI document; the key is checked in ``_execute``.
bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer blm_...`")


@dataclass(frozen=True)
class Ctx:
    """What a service function gets: the database and the caller's tenant."""

    db: Database
    tenant_id: int


Body = Any  # the parsed JSON object, the raw bytes, or None (see ``call``)
Work = Callable[[Ctx, Body], Any]


async def call(
    request: Request, work: Work, *, body: bool = False, raw_body: bool = False, status: int = 200
) -> Response:
    """Run ``work(ctx, body)``: ``body`` is the parsed JSON object (``body=True``), the raw bytes
    (``raw_body=True``: the work parses it itself) or None."""
    principal: Optional[Principal] = getattr(request.state, "principal", None)
    if principal is None:  # only without the gate in front (it admits every /v1 request)
        principal = await run_in_threadpool(
            principal_for, request.app.state.db, request.headers.get("authorization")
        )
    raw = await read_body(request) if body or raw_body else None
    content = await run_in_threadpool(
        _execute, request.app.state.db, principal.tenant_id, raw, raw_body, work
    )
    return Response(content, status_code=status, media_type="application/json")


def _execute(db: Database, tenant_id: int, raw: Optional[bytes], raw_body: bool, work: Work) -> bytes:
    try:
        parsed: Any = raw if raw is None or raw_body else loads_body(raw)
        return dumps(work(Ctx(db, tenant_id), parsed))
    except FieldError as exc:
        raise exc.as_api_error() from None
