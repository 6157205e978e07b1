"""The edge of every request: its id, its access-log line and metrics, and the last-resort 500 (as the JSON
envelope, with the request id).

A pure ASGI middleware: Starlette's BaseHTTPMiddleware would add a task and a body copy to every request.

The access log (logger ``bearlumen.access``, one JSON object per line) holds what an operator needs and
nothing secret: the request id, method, path (never the query string), route template, status, error code,
duration, client address and the API key's *id* (``key_...``, never the key).
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any, Awaitable, Callable, MutableMapping, Optional

from bearlumen.server.errors import error_body
from bearlumen.server.jsonio import dumps

__all__ = ["ACCESS_LOG", "RequestIdMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SANE_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
log = logging.getLogger("bearlumen.server")
ACCESS_LOG = logging.getLogger("bearlumen.access")


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id" and _SANE_ID.fullmatch(value):
            return str(value.decode("ascii"))
    return "req_" + secrets.token_hex(12)


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp, metrics: Optional[Any] = None, paths: Optional[Any] = None) -> None:
        self.app = app
        self.metrics = metrics  # a metrics.Metrics, or None
        self.paths = paths  # an openapi.PathIndex: names the route of a request the router never saw

    def _route(self, scope: Scope) -> str:
        template = getattr(scope.get("route"), "path_format", None)
        if template:
            return str(template)
        match = self.paths.match(scope["path"]) if self.paths is not None else None
        return match[0] if match is not None else "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        header = (b"x-request-id", request_id.encode("ascii"))
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("Unhandled error in %s %s (request %s)", scope["method"], scope["path"], request_id)
            if status:
                raise
            state["error_code"] = "internal_error"
            body = dumps(error_body("internal_error", "Internal server error.", request_id))
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            try:
                self._record(scope, status, time.perf_counter() - began)
            except Exception:  # a log line or a metric must never fail the request
                log.exception("Could not record request %s", request_id)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        state = scope.get("state", {})
        code = state.get("error_code") if status >= 400 else None
        route = self._route(scope)
        if self.metrics is not None and status:
            self.metrics.observe(scope["method"], route, status, seconds, code)
        if ACCESS_LOG.isEnabledFor(logging.INFO):
            principal = state.get("principal")
            client = scope.get("client")
            line = {
                "ts": time.time(),
                "requestId": state.get("request_id"),
                "method": scope["method"],
                "path": scope["path"],
                "route": route,
                "status": status or None,  # None: the client went away before an answer started
                "error": code,
                "durationMs": round(seconds * 1000, 3),
                "client": client[0] if client else None,
                "keyId": getattr(principal, "key_id", None),
            }
            ACCESS_LOG.info(dumps(line).decode("utf-8"))
