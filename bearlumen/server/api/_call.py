"""The one path every authenticated request takes.

The handler reads the body on the event loop; then a single worker-thread hop authenticates the key,
applies the rate limit, parses the JSON, runs the service function and serializes the answer. One hop keeps
per-request overhead low, and nothing that touches the database ever runs on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

from fastapi import Request
from fastapi.security import HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from bearlumen.server.db import Database
from bearlumen.server.errors import ApiError, FieldError, auth_failed
from bearlumen.server.jsonio import dumps, loads_body, read_body
from bearlumen.server.keys import Principal, authenticate
from bearlumen.server.ratelimit import RateLimiter

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
    raw = await read_body(request) if body or raw_body else None
    state = request.app.state
    content = await run_in_threadpool(
        _execute, state.db, state.limiter, request.headers.get("authorization"), raw, raw_body, work
    )
    return Response(content, status_code=status, media_type="application/json")


def _execute(
    db: Database,
    limiter: Optional[RateLimiter],
    authorization: Optional[str],
    raw: Optional[bytes],
    raw_body: bool,
    work: Work,
) -> bytes:
    principal = _principal(db, authorization)
    if limiter is not None:
        wait = limiter.acquire(principal.key_id)
        if wait:
            raise ApiError(
                429,
                "rate_limited",
                f"Rate limit of {limiter.rate:g} requests per second exceeded; retry in {wait} s.",
                headers={"Retry-After": str(wait)},
            )
    try:
        parsed: Any = raw if raw is None or raw_body else loads_body(raw)
        return dumps(work(Ctx(db, principal.tenant_id), parsed))
    except FieldError as exc:
        raise exc.as_api_error() from None


def _principal(db: Database, authorization: Optional[str]) -> Principal:
    if not authorization:
        raise auth_failed("Missing API key: send `Authorization: Bearer <key>`.")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise auth_failed("Malformed Authorization header: expected `Bearer <key>`.")
    principal = db.read(lambda conn: authenticate(conn, key.strip()))
    if principal is None:
        raise auth_failed("Invalid or revoked API key.")
    return principal
