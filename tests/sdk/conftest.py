"""Fixtures of the SDK suite: every test runs against real services, never mocks.

``client`` is parametrized over the client kind x the deployment:

    sync-http-sqlite    sync-http-postgresql    sync-embedded-sqlite
    async-http-sqlite   async-http-postgresql   async-embedded-sqlite

The async variants drive a real ``bearlumen.AsyncClient`` on an event loop in a helper thread through a
blocking facade (``Blocking``), so one test body proves both clients. Every test gets a fresh tenant
(its own API key), so tests never see each other's data and the reference's literal ids
(``external_id='user_123'``) can be used as written.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Coroutine, Iterator, TypeVar

import pytest

import bearlumen

T = TypeVar("T")

DEPLOYMENTS = ["http-sqlite", "http-postgresql", "embedded-sqlite"]
KINDS = ["sync", "async"]


def new_tenant() -> str:
    return f"sdk_{uuid.uuid4().hex[:12]}"


@dataclass
class Deployment:
    """Where a client goes: ``base_url`` (an http URL or, embedded, a database URL) and a key factory."""

    name: str
    base_url: str
    new_key: Callable[[], str]


class LoopThread:
    """An asyncio loop in a daemon thread, to run coroutines from synchronous test code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="sdk-tests-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class Blocking:
    """A blocking view of an AsyncClient: ``Blocking(aclient, loop).usage.record(...)`` awaits
    ``aclient.usage.record(...)`` on ``loop`` and returns its result (or raises its exception)."""

    def __init__(self, target: Any, loop: LoopThread) -> None:
        self._target = target
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if inspect.iscoroutinefunction(attr):

            def call(*args: Any, **kwargs: Any) -> Any:
                return self._loop.run(attr(*args, **kwargs))

            return call
        if type(attr).__module__.startswith("bearlumen.resources"):
            return Blocking(attr, self._loop)
        if callable(attr):  # e.g. with_options(): a new AsyncClient, viewed the same way

            def wrap(*args: Any, **kwargs: Any) -> Any:
                result = attr(*args, **kwargs)
                return Blocking(result, self._loop) if isinstance(result, bearlumen.AsyncClient) else result

            return wrap
        return attr

    def close(self) -> None:
        self._loop.run(self._target.aclose())


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    yield runner
    runner.stop()


@pytest.fixture(scope="session")
def embedded_database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('embedded') / 'usage.db'}"


@pytest.fixture(params=DEPLOYMENTS)
def deployment(request: pytest.FixtureRequest) -> Deployment:
    name = request.param
    if name == "embedded-sqlite":
        from bearlumen.server.keys import create_api_key

        url = request.getfixturevalue("embedded_database_url")
        return Deployment(name, url, lambda: create_api_key(url, new_tenant()))
    service = request.getfixturevalue("sqlite_service" if name == "http-sqlite" else "postgres_service")
    return Deployment(name, service.base_url, lambda: service.create_key(new_tenant()))


@pytest.fixture
def api_key(deployment: Deployment) -> str:
    return deployment.new_key()


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def build_client(kind: str, loop_thread: LoopThread, **options: Any) -> Any:
    """A ``bearlumen.Client`` (kind "sync") or a blocking view of a ``bearlumen.AsyncClient`` ("async")."""
    if kind == "sync":
        return bearlumen.Client(**options)

    async def create() -> bearlumen.AsyncClient:  # created on the loop that will drive it
        return bearlumen.AsyncClient(**options)

    return Blocking(loop_thread.run(create()), loop_thread)


@pytest.fixture
def make_client(
    kind: str, deployment: Deployment, api_key: str, loop_thread: LoopThread
) -> Iterator[Callable[..., Any]]:
    """``make_client(**options)``: a client of this test's kind and deployment (closed after the test)."""
    made: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("api_key", api_key)
        options.setdefault("base_url", deployment.base_url)
        made.append(build_client(kind, loop_thread, **options))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def make_offline_client(kind: str, loop_thread: LoopThread) -> Iterator[Callable[..., Any]]:
    """``make_offline_client(**options)``: a client of this test's kind, no deployment (default: a key
    that no service knows, a closed port)."""
    made: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("api_key", "blm_" + "0" * 43)
        if "base_url" not in options:
            options["base_url"] = f"http://127.0.0.1:{_closed_port()}"
        made.append(build_client(kind, loop_thread, **options))
        return made[-1]

    yield make
    for client in made:
        client.close()


@pytest.fixture
def client(make_client: Callable[..., Any]) -> Any:
    """A ``bearlumen.Client`` (or a blocking view of an ``AsyncClient``) on a fresh tenant."""
    return make_client()


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound then released)."""
    return _closed_port()
