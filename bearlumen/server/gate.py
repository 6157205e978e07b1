"""Cheap rejection first: the API key, the rate limit and the body size are checked before the body is read.

A pure ASGI middleware in front of every ``/v1`` route:

1. The ``Authorization`` header is checked (one indexed lookup in a worker thread) and the key's rate limit
   applied, from the headers alone: an unauthenticated or rate-limited request is answered (401 / 429)
   without reading one byte of its body, so a client cannot make the server buffer anything without a key.
2. A declared ``Content-Length`` above the limit answers 413 at once; a body without one (chunked) is
   counted while it streams and refused (413) at the first byte past the limit, never after buffering it.
3. A body must arrive within ``body_timeout`` seconds of its first read (408 otherwise), so a slow client
   cannot hold a request open and its partial body in memory indefinitely.

The authenticated principal rides on ``scope["state"]["principal"]`` (``request.state.principal``).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import anyio
from starlette.concurrency import run_in_threadpool

from bearlumen.server.db import Database
from bearlumen.server.errors import ApiError, auth_failed, error_body
from bearlumen.server.jsonio import MAX_BODY_BYTES, dumps, too_large
from bearlumen.server.keys import Principal, authenticate
from bearlumen.server.middleware import ASGIApp, Message, Receive, Scope, Send
from bearlumen.server.ratelimit import RateLimiter

__all__ = ["BODY_TIMEOUT", "Gate", "principal_for"]

BODY_TIMEOUT = 60.0  # seconds for a whole request body, from its first read


def principal_for(db: Database, authorization: Optional[str]) -> Principal:
    """The key's tenant, or the 401 to answer (run in a worker thread: it reads the database)."""
    if not authorization:
        raise auth_failed("Missing API key: send `Authorization: Bearer <key>`.")
    scheme, _, key = authorization.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise auth_failed("Malformed Authorization header: expected `Bearer <key>`.")
    principal = db.read(lambda conn: authenticate(conn, key.strip()))
    if principal is None:
        raise auth_failed("Invalid or revoked API key.")
    return principal


def _header(scope: Scope, name: bytes) -> Optional[str]:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        *,
        db: Database,
        limiter: Optional[RateLimiter],
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        self.app = app
        self.db = db
        self.limiter = limiter
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if scope["path"] == "/v1" or scope["path"].startswith("/v1/"):
                await self._admit(scope)
            _check_declared_length(scope)
        except ApiError as exc:
            await _answer(scope, send, exc)
            return
        await self.app(scope, self._limited(receive), send)

    async def _admit(self, scope: Scope) -> None:
        principal = await run_in_threadpool(principal_for, self.db, _header(scope, b"authorization"))
        scope.setdefault("state", {})["principal"] = principal
        if self.limiter is not None:
            wait = self.limiter.acquire(principal.key_id)
            if wait:
                raise ApiError(
                    429,
                    "rate_limited",
                    f"Rate limit of {self.limiter.rate:g} requests per second exceeded; retry in {wait} s.",
                    headers={"Retry-After": str(wait)},
                )

    def _limited(self, receive: Receive) -> Receive:
        """``receive`` that refuses a body past MAX_BODY_BYTES or slower than ``body_timeout``."""
        size = 0
        deadline: Optional[float] = None
        done = False

        async def limited() -> Message:
            nonlocal size, deadline, done
            if done:  # after the body: only a disconnect is left to wait for, however long it takes
                return await receive()
            if deadline is None:
                deadline = anyio.current_time() + self.body_timeout
            message: Any = None
            with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                message = await receive()
            if message is None:
                raise ApiError(
                    408,
                    "request_timeout",
                    f"The request body did not arrive within {math.ceil(self.body_timeout)} s; "
                    "send it faster or in smaller batches.",
                )
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > MAX_BODY_BYTES:
                    raise too_large()
                done = not message.get("more_body", False)
            return dict(message)

        return limited


def _check_declared_length(scope: Scope) -> None:
    declared = _header(scope, b"content-length")
    if declared is None:
        return
    if not declared.strip().isdigit():
        raise ApiError(400, "invalid_request", "Content-Length must be a whole number of bytes.")
    if int(declared) > MAX_BODY_BYTES:
        raise too_large()


async def _answer(scope: Scope, send: Send, exc: ApiError) -> None:
    """The error envelope, sent without reading the body. With a body on its way the connection then closes,
    so the server neither reads nor stores the rest of it."""
    request_id = scope.get("state", {}).get("request_id")
    body = dumps(error_body(exc.code, exc.message, request_id, param=exc.param))
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if _header(scope, b"transfer-encoding") is not None or (_header(scope, b"content-length") or "0") != "0":
        headers.append((b"connection", b"close"))
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in exc.headers.items()]
    scope.setdefault("state", {})["error_code"] = exc.code
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
