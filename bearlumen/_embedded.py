"""Embedded mode: the service's own app, in-process, on a database you name. No server to run.

    client = bearlumen.Client(api_key=key, base_url="sqlite:///path/to/usage.db")
    client = bearlumen.Client(api_key=key, base_url="postgresql://user:pass@host/db")

The base URL is the database URL that ``bearlumen serve --database-url`` takes. The client talks HTTP to
``bearlumen.server.app.create_app(database_url)`` through an in-memory transport: same routes, same
validation, same answers and errors as over the network (the API key is checked too). Get a key with

    bearlumen keys create --tenant acme --database-url sqlite:///path/to/usage.db
    # or, from Python:
    from bearlumen.server.keys import create_api_key
    key = create_api_key("sqlite:///path/to/usage.db", "acme")

``Client`` drives the ASGI app on a private event loop in a daemon thread (so a blocking client works from
any thread, including one that runs its own event loop); ``AsyncClient`` runs it on the caller's loop
through ``httpx.ASGITransport``. Each client opens the app (applying migrations) when created and disposes
of it on ``close()`` / ``aclose()``. Needs the service's dependencies: ``pip install 'bearlumen[server]'``.
Timeouts do not apply in embedded mode (nothing to wait for but the database).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import threading
from concurrent.futures import Future
from typing import Any, Coroutine, List, Optional, Tuple, TypeVar

import httpx

__all__ = ["AsyncEmbeddedTransport", "SyncEmbeddedTransport", "create_embedded_app"]

T = TypeVar("T")


def create_embedded_app(database_url: str) -> Any:
    """The service's ASGI app on ``database_url``, migrations applied."""
    try:
        # imported by name: the SDK does not type-check (or import, outside embedded mode) the service
        create_app = importlib.import_module("bearlumen.server.app").create_app
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "The embedded mode (base_url=<database URL>) runs the Bear Lumen service in-process and needs "
            f"its dependencies: pip install 'bearlumen[server]' ({exc})"
        ) from exc
    return create_app(database_url)


def _close_app(app: Any) -> Any:
    """``app.state.close()``: may be sync or return an awaitable (returned to the caller to await)."""
    close = getattr(getattr(app, "state", None), "close", None)
    return close() if callable(close) else None


class _LoopThread:
    """An asyncio loop in a daemon thread (never blocks interpreter exit, unlike a thread-pool portal)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="bearlumen-embedded", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            try:
                pending = asyncio.all_tasks(self.loop)
                for task in pending:
                    task.cancel()
                if pending:
                    self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            finally:
                self.loop.close()

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        if os.getpid() != self._pid:
            coro.close()
            raise RuntimeError(
                "An embedded bearlumen.Client cannot be used in a forked child process: create a new "
                "Client in the child."
            )
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("The embedded transport cannot be called from its own event loop")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. KeyboardInterrupt while waiting: stop the request too
            raise

    def stop(self) -> None:
        if self.loop.is_closed() or os.getpid() != self._pid:
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)


class SyncEmbeddedTransport(httpx.BaseTransport):
    """An httpx transport that answers from the service app run on a private event-loop thread."""

    def __init__(self, database_url: str) -> None:
        self._app = create_embedded_app(database_url)
        self._asgi = httpx.ASGITransport(app=self._app, raise_app_exceptions=False)
        self._loop = _LoopThread()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def app(self) -> Any:
        return self._app

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        body = request.read()
        status, headers, content = self._loop.call(
            self._send(request.method, str(request.url), list(request.headers.raw), body)
        )
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _send(
        self, method: str, url: str, headers: List[Tuple[bytes, bytes]], body: bytes
    ) -> Tuple[int, List[Tuple[bytes, bytes]], bytes]:
        request = httpx.Request(method, url, headers=headers, content=body)
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return response.status_code, list(response.headers.raw), content

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            result = _close_app(self._app)
            if inspect.isawaitable(result):
                self._loop.call(_await(result))
        finally:
            self._loop.stop()


class AsyncEmbeddedTransport(httpx.ASGITransport):
    """``httpx.ASGITransport`` over the service app that also disposes of the app when closed."""

    def __init__(self, database_url: str, app: Optional[Any] = None) -> None:
        self._app_owned = app is None
        super().__init__(
            app=app if app is not None else create_embedded_app(database_url), raise_app_exceptions=False
        )
        self._closed = False

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._app_owned:
            result = _close_app(self.app)
            if inspect.isawaitable(result):
                await result


async def _await(awaitable: Any) -> Any:
    return await awaitable
