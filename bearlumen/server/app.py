"""The application factory.

``create_app(database_url)`` returns a ready app: the engine exists and migrations are applied before it
returns, so it serves correctly without lifespan events (the SDK's embedded mode drives it through
``httpx.ASGITransport``). Under uvicorn, the lifespan's shutdown closes the database; embedded callers
call ``app.state.close()``.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager, suppress
from typing import Any, AsyncIterator, Dict, List, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from bearlumen._version import __version__
from bearlumen.server.api import cost_attribution, end_users, models, otlp, subscriptions, system, usage
from bearlumen.server.db import Database
from bearlumen.server.errors import ApiError, error_body
from bearlumen.server.fields import MAX_OFFSET
from bearlumen.server.gate import BODY_TIMEOUT, Gate
from bearlumen.server.jsonio import dumps
from bearlumen.server.metrics import Metrics
from bearlumen.server.middleware import RequestIdMiddleware
from bearlumen.server.migrate import upgrade
from bearlumen.server.openapi import PathIndex, document
from bearlumen.server.ratelimit import RateLimiter
from bearlumen.server.usage.partitions import keep_partitions, maintain

__all__ = ["create_app"]

# Query parameters whose validation failures have their own code (docs/api.md); the rest are invalid_request.
_PARAM_MESSAGES = {
    "limit": "limit must be a whole number from 1 to 1000.",
    "offset": f"offset must be a whole number from 0 to {MAX_OFFSET}.",
}
_PARAM_CODES = {
    "limit": "invalid_limit",
    "offset": "invalid_limit",
    "start_date": "invalid_date",
    "end_date": "invalid_date",
}


def create_app(
    database_url: str,
    *,
    rate_limit: Optional[float] = None,
    metrics: bool = False,
    body_timeout: float = BODY_TIMEOUT,
) -> FastAPI:
    """A ready Bear Lumen app on ``database_url`` (SQLite or PostgreSQL URL), migrations applied.

    ``rate_limit``: requests per second allowed per API key (burst of the same size); None disables it.
    ``metrics``: serve Prometheus metrics at ``/metrics`` (unauthenticated: for the operator's scraper).
    ``body_timeout``: seconds a request body may take to arrive (408 after).
    """
    db = Database(database_url)
    try:
        head = upgrade(db)
        maintain(db)  # PostgreSQL: this month's and the next months' event partitions exist
    except BaseException:
        db.close()
        raise

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        partitions = None if db.is_sqlite else asyncio.create_task(keep_partitions(db))
        yield
        if partitions is not None:
            partitions.cancel()
            with suppress(asyncio.CancelledError):
                await partitions
        db.close()

    app = FastAPI(
        title="Bear Lumen",
        version=__version__,
        description="Meter LLM spend per customer, agent and workflow. Contract: docs/api.md.",
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.schema_head = head
    app.state.limiter = RateLimiter(rate_limit) if rate_limit else None
    app.state.metrics = Metrics() if metrics else None
    app.state.close = db.close
    routers = [m.router for m in (system, end_users, subscriptions, usage, cost_attribution, otlp)]
    if metrics:
        routers.append(system.metrics_router)
    for router in routers:
        app.include_router(router)
    from bearlumen.server.dashboard import router as dashboard  # jinja2 loads with the service only

    app.include_router(dashboard)  # pages under /dashboard, outside the OpenAPI document and the gate
    # Built now, from the routers (cheap), not from the OpenAPI document on first use (slow, on the loop).
    paths = PathIndex((route.path, route.methods) for r in routers for route in r.routes)
    _install_error_handlers(app)
    app.add_middleware(Gate, db=db, limiter=app.state.limiter, body_timeout=body_timeout)
    # Outermost: sees every answer, the gate's too.
    app.state.paths = paths
    app.add_middleware(RequestIdMiddleware, metrics=app.state.metrics, paths=paths)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _request_id(request: Request) -> Optional[str]:
    return getattr(request.state, "request_id", None)


def _error(request: Request, exc: ApiError) -> Response:
    request.state.error_code = exc.code  # for the access log and the rejection metrics
    body = error_body(exc.code, exc.message, _request_id(request), param=exc.param, errors=exc.errors)
    return Response(dumps(body), status_code=exc.status, headers=exc.headers, media_type="application/json")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        # Only query and path parameters are validated by FastAPI (bodies by our own validators).
        first = exc.errors()[0] if exc.errors() else {}
        location = [str(part) for part in first.get("loc", ())]
        param = location[-1] if location else None
        missing = first.get("type") == "missing"  # docs/api.md: a missing one is invalid_request
        code = "invalid_request" if missing else _PARAM_CODES.get(param or "", "invalid_request")
        return _error(request, ApiError(400, code, _param_message(param, first), param=param))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _error(request, ApiError(404, "not_found", "Unknown path."))
        if exc.status_code == 405:
            allowed = _allowed_methods(request, (exc.headers or {}).get("Allow"))
            message = f"{request.method} is not allowed here; use {', '.join(allowed)}."
            return _error(
                request, ApiError(405, "invalid_request", message, headers={"Allow": ", ".join(allowed)})
            )
        return _error(
            request, ApiError(exc.status_code, "invalid_request", str(exc.detail), headers=exc.headers)
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def unavailable(request: Request, exc: Exception) -> Response:
        # Database unreachable, locked past the busy timeout, or every connection busy: transient, and the
        # SDK retries 5xx. SQLite also reports bugs (no such table) as OperationalError: those stay 500s.
        if not _transient(exc):
            raise exc
        return _error(
            request,
            ApiError(
                503,
                "unavailable",
                "The database is unavailable; retry shortly.",
                headers={"Retry-After": "1"},
            ),
        )


def _param_message(param: Optional[str], error: Dict[str, Any]) -> str:
    """What to change, for FastAPI's check of a declared parameter (docs/api.md's wording)."""
    kind, context = error.get("type"), error.get("ctx") or {}
    if param is None:
        return "Invalid request."
    if kind == "missing":
        return f"{param} is required."
    if param in _PARAM_MESSAGES:
        return _PARAM_MESSAGES[param]
    if kind == "string_pattern_mismatch":
        return f"{param} must not contain NUL characters."
    if kind in ("string_too_short", "string_too_long"):
        return f"{param} must be 1 to {context.get('max_length', 255)} characters long."
    return f"{param}: {error.get('msg', 'invalid value')}."


def _allowed_methods(request: Request, fallback: Optional[str]) -> List[str]:
    """Every method some route answers on this path (Starlette's own 405 names only the first route's)."""
    index: PathIndex = request.app.state.paths
    match = index.match(request.url.path)
    if match is not None:
        return match[1]
    return [m.strip() for m in (fallback or "").split(",") if m.strip()]  # routes outside the document


_TRANSIENT_SQLITE = ("locked", "busy", "unable to open", "disk i/o")


def _transient(exc: Exception) -> bool:
    if isinstance(exc, PoolTimeoutError):
        return True
    original = getattr(exc, "orig", None)
    if type(original).__module__ == "sqlite3":
        return any(marker in str(original).lower() for marker in _TRANSIENT_SQLITE)
    return True  # psycopg: OperationalError means the connection or the server, not the statement


def _openapi(app: FastAPI) -> Dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        app.openapi_schema = document(schema, models.schemas())
    return app.openapi_schema
