"""Fixtures shared by the integration tests (openai, anthropic, ...).

- `sink`: a ListSink installed as the destination of `bearlumen.metering.record.emit` for the test.
- `integration`: ``integration("openai")`` installs `bearlumen.integrations.openai` for the test and
  uninstalls it afterwards (whatever the test did in between).
- `recorded`: ``recorded("openllmetry/openai/test_chat.yaml")`` reads a vendored cassette's interactions
  (bodies decoded), to serve real recorded bodies from an in-process transport.
- `serve`: ``transport = serve(reply, ...)`` an `httpx2.MockTransport` answering the given replies in
  order (recorded `Interaction`s, `httpx2.Response`s or JSON objects) and keeping the requests it received
  (`transport.requests`). Serving recorded bodies is how calls are replayed for another host (Azure) or
  timed (benchmarks); serving hand-written bodies is a fake: use it only for shapes no recording has
  (malformed bodies) and say so in the test.
- Every test must leave the attribution scope as it found it (checked after each test).
"""

from __future__ import annotations

import gzip
import importlib
import json
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Dict, Iterator, List, Optional

import httpx
import httpx2
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

from bearlumen.scopes import EMPTY, current_attribution
from tests.support.cassettes import CASSETTES
from tests.support.clienthttp import library_of


@pytest.fixture
def integration() -> Iterator[Callable[[str], ModuleType]]:
    installed: List[ModuleType] = []

    def install(name: str) -> ModuleType:
        module = importlib.import_module(f"bearlumen.integrations.{name}")
        module.install()
        installed.append(module)
        return module

    try:
        yield install
    finally:
        for module in reversed(installed):
            module.uninstall()


@pytest.fixture(autouse=True)
def _scope_is_left_clean() -> Iterator[None]:
    before = current_attribution()
    yield
    assert current_attribution() == before == EMPTY, "a test leaked an attribution scope"


@dataclass
class Interaction:
    """One recorded request/response pair of a cassette, with the response body decoded."""

    method: str
    uri: str
    request_body: Optional[str]
    status: int
    headers: Dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


def load_interactions(relative_path: str) -> List[Interaction]:
    data = yaml.safe_load((CASSETTES / relative_path).read_text(encoding="utf-8"))
    interactions = []
    for item in data["interactions"]:
        response = item["response"]
        raw = response["body"].get("string", b"")
        body = raw.encode("utf-8") if isinstance(raw, str) else bytes(raw)
        headers = {name.lower(): values[0] for name, values in (response.get("headers") or {}).items()}
        if headers.get("content-encoding") == "gzip" or body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        headers.pop("content-encoding", None)
        headers.pop("content-length", None)
        headers.pop("transfer-encoding", None)
        request_body = item["request"].get("body")
        interactions.append(
            Interaction(
                method=item["request"]["method"],
                uri=item["request"]["uri"],
                request_body=request_body if isinstance(request_body, str) else None,
                status=int(response["status"]["code"]),
                headers=headers,
                body=body,
            )
        )
    return interactions


@pytest.fixture
def recorded() -> Callable[[str], List[Interaction]]:
    return load_interactions


def _as_response(reply: Any) -> httpx2.Response:
    if isinstance(reply, (httpx2.Response, httpx.Response)):
        return reply
    if isinstance(reply, Interaction):
        return httpx2.Response(reply.status, headers=reply.headers, content=reply.body)
    content = reply if isinstance(reply, bytes) else json.dumps(reply).encode("utf-8")
    return httpx2.Response(200, headers={"content-type": "application/json"}, content=content)


def _in_library_of(request: Any, response: Any) -> Any:
    """The response as the request's library builds it: openai 2.x clients run on httpx, the others on
    httpx2 (tests.support.clienthttp), and one transport serves both."""
    library = library_of(request)
    if isinstance(response, library.Response):
        return response
    return library.Response(response.status_code, headers=response.headers, content=response.read())


class ServedTransport:
    """Answers each request with the next reply (or with `answer(request)` when given one). A transport of
    both httpx and httpx2 (as their MockTransport is), so one class serves every supported client."""

    def __init__(self, replies: List[Any], answer: Optional[Callable[[httpx2.Request], Any]] = None) -> None:
        self.replies = list(replies)
        self.requests: List[httpx2.Request] = []
        self._answer = answer

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return self._handle(request)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        await request.aread()
        return self._handle(request)

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        request.read()
        self.requests.append(request)
        if self._answer is not None:
            return _in_library_of(request, _as_response(self._answer(request)))
        if not self.replies:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        return _in_library_of(request, _as_response(self.replies.pop(0)))

    def request_json(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


@pytest.fixture
def serve() -> Callable[..., ServedTransport]:
    """``serve(reply, ...)``: each reply an `Interaction` (a recorded body), an `httpx2.Response`, or a
    JSON-able object / bytes answered as 200 application/json. ``serve(answer=fn)`` calls `fn(request)`."""

    def make(*replies: Any, answer: Optional[Callable[[httpx2.Request], Any]] = None) -> ServedTransport:
        return ServedTransport(list(replies), answer)

    return make
