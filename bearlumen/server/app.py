"""The application factory.

``create_app(database_url)`` returns a ready app: the engine exists and migrations are applied before it
returns, so it serves correctly without lifespan events (the SDK's embedded mode drives it through
``httpx.ASGITransport``). Under uvicorn, the lifespan's shutdown closes the database; embedded callers
call ``app.state.close()``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from bearlumen._version import __version__
from bearlumen.server.api import cost_attribution, end_users, models, subscriptions, system, usage
from bearlumen.server.api._call import _principal
from bearlumen.server.db import Database
from bearlumen.server.errors import ApiError, error_body
from bearlumen.server.jsonio import dumps
from bearlumen.server.middleware import RequestIdMiddleware
from bearlumen.server.migrate import upgrade
from bearlumen.server.ratelimit import RateLimiter

__all__ = ["create_app"]

# Query parameters whose validation failures have their own code (docs/api.md); the rest are invalid_request.
_PARAM_CODES = {
    "limit": "invalid_limit",
    "offset": "invalid_limit",
    "start_date": "invalid_date",
    "end_date": "invalid_date",
}


def create_app(database_url: str, *, rate_limit: Optional[float] = None) -> FastAPI:
    """A ready Bear Lumen app on ``database_url`` (SQLite or PostgreSQL URL), migrations applied.

    ``rate_limit``: requests per second allowed per API key (burst of the same size); None disables it.
    """
    db = Database(database_url)
    try:
        upgrade(db)
    except BaseException:
        db.close()
        raise

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        db.close()

    app = FastAPI(
        title="Bear Lumen",
        version=__version__,
        description="Meter LLM spend per customer, agent and workflow. Contract: docs/api.md.",
        lifespan=lifespan,
    )
    app.state.db = db
    app.state.limiter = RateLimiter(rate_limit) if rate_limit else None
    app.state.close = db.close
    for module in (system, end_users, subscriptions, usage, cost_attribution):
        app.include_router(module.router)
    _install_error_handlers(app)
    app.add_middleware(RequestIdMiddleware)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _request_id(request: Request) -> Optional[str]:
    return getattr(request.state, "request_id", None)


def _error(request: Request, exc: ApiError) -> Response:
    body = error_body(exc.code, exc.message, _request_id(request), param=exc.param, errors=exc.errors)
    return Response(dumps(body), status_code=exc.status, headers=exc.headers, media_type="application/json")


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _error(request, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        # Authenticate first, so an unauthenticated request answers 401 whatever its parameters.
        try:
            await run_in_threadpool(_principal, request.app.state.db, request.headers.get("authorization"))
        except ApiError as auth_error:
            return _error(request, auth_error)
        first = exc.errors()[0] if exc.errors() else {}
        location = [str(part) for part in first.get("loc", ())]
        param = location[-1] if location else None
        if first.get("type") == "missing":
            code, message = "invalid_request", f"{param} is required."
        else:
            code = _PARAM_CODES.get(param or "", "invalid_request")
            message = f"{param}: {first.get('msg', 'invalid value')}" if param else "Invalid request."
        return _error(request, ApiError(400, code, message, param=param))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = "not_found" if exc.status_code == 404 else "invalid_request"
        message = "Unknown path." if exc.status_code == 404 else str(exc.detail)
        return _error(request, ApiError(exc.status_code, code, message, headers=exc.headers))

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
        schema.setdefault("components", {}).setdefault("schemas", {}).update(models.schemas())
        app.openapi_schema = schema
    return app.openapi_schema
