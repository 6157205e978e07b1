"""A fault-injecting HTTP proxy for tests: sits on loopback in front of a real service and misbehaves on cue.

    from tests.support.faultproxy import FaultProxy

    with FaultProxy(service.base_url) as proxy:               # upstream: any http://host:port
        proxy.plan(["after:503", "drop", "delay:2.0", "429:1", "pass"])
        client = bearlumen.Client(api_key=key, base_url=proxy.url, timeout=1.0)
        client.usage.record(...)                             # 1st request: forwarded, then answered 503 ...
        assert [r.action for r in proxy.requests_seen] == [...]

Every request that reaches the proxy takes the next action of the plan (then ``default``, "pass" unless
set otherwise), and is recorded in ``requests_seen``. Actions (strings):

| action            | forwarded?            | what the client gets                                     |
|-------------------|-----------------------|----------------------------------------------------------|
| ``pass``          | yes                   | the service's answer                                     |
| ``NNN``           | no                    | status NNN with a JSON error envelope (e.g. ``503``)     |
| ``NNN:R``         | no                    | the same with ``Retry-After: R`` (e.g. ``429:1``)        |
| ``drop``          | no                    | the connection closed without an answer                  |
| ``reset``         | no                    | the connection reset (TCP RST)                           |
| ``hang``          | no                    | nothing until the proxy stops: the client times out      |
| ``after:NNN[:R]`` | yes, answer discarded | status NNN, although the service processed the request   |
| ``after:drop``    | yes, answer discarded | the connection closed without an answer                  |
| ``after:reset``   | yes, answer discarded | the connection reset                                     |
| ``delay:S``       | yes                   | the answer S seconds late (a client with a shorter       |
|                   |                       | timeout gives up after the service processed it)         |
| ``stall:S``       | yes, S seconds late   | the answer (the request reaches the service late, even   |
|                   |                       | if the client gave up meanwhile)                         |

An action may also be a callable ``(SeenRequest) -> str`` returning one of the above, decided per request.

API:
    FaultProxy(upstream, *, default="pass", path_prefix=None, host="127.0.0.1", port=0)
    .start() / .stop() / context manager      start() is implicit in ``with``; stop() closes live connections
    .url                                      "http://127.0.0.1:<port>" (base_url for the client under test)
    .plan(actions, *, path_prefix=None)       replace the pending plan; only requests whose path starts with
                                              ``path_prefix`` (if given) consume it, the others are passed
    .extend(actions)                          append to the pending plan
    .pending                                  the actions not used yet
    .default                                  the action once the plan is used up (settable)
    .upstream                                 settable, e.g. after the service restarted on another port
    .requests_seen                            [SeenRequest(method, path, query, headers, body, action,
                                              upstream_status, forwarded)] in arrival order (a copy)
    .wait_for_requests(n, timeout=5.0)        block until n requests were seen
    .reset()                                  clear the plan and requests_seen

If the upstream cannot be reached, a forwarded request is answered 502 (like a real load balancer).
Thread-safe; one thread per client connection; HTTP/1.1 keep-alive as the client asks.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple, Union
from urllib.parse import urlsplit

__all__ = ["Action", "FaultProxy", "SeenRequest"]

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}

_CODES = {408: "request_timeout", 429: "rate_limited", 500: "internal_error", 502: "bad_gateway"}


@dataclass
class SeenRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: Dict[str, str]  # lower-cased names
    body: bytes
    action: str = "pass"
    forwarded: bool = False
    upstream_status: Optional[int] = None
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Action = Union[str, Callable[[SeenRequest], str]]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: FaultProxy


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        finally:
            self.server.proxy._track(self.connection, add=False)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: List[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        proxy = self.server.proxy
        path, _, query = self.path.partition("?")
        seen = SeenRequest(
            method=self.command,
            path=path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self._read_body(),
        )
        action = proxy._next_action(seen)
        seen.action = action
        proxy._record(seen)
        try:
            self._perform(action, seen)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def _perform(self, action: str, seen: SeenRequest) -> None:
        proxy = self.server.proxy
        kind, _, arg = action.partition(":")
        if kind == "pass":
            self._relay(self._forward(seen))
        elif kind.isdigit():
            self._answer(int(kind), retry_after=arg or None)
        elif kind == "drop":
            self._drop()
        elif kind == "reset":
            self._reset()
        elif kind == "hang":
            proxy._stopping.wait()
            self._drop()
        elif kind == "after":
            self._forward(seen)
            sub, _, retry_after = arg.partition(":")
            if sub == "drop":
                self._drop()
            elif sub == "reset":
                self._reset()
            elif sub.isdigit():
                self._answer(int(sub), retry_after=retry_after or None)
            else:
                raise ValueError(f"unknown FaultProxy action {action!r}")
        elif kind == "delay":
            answer = self._forward(seen)
            if not proxy._stopping.wait(float(arg)):
                self._relay(answer)
        elif kind == "stall":
            if proxy._stopping.wait(float(arg)):
                return self._drop()
            self._relay(self._forward(seen))
        else:
            raise ValueError(f"unknown FaultProxy action {action!r}")

    def _forward(self, seen: SeenRequest) -> Tuple[int, List[Tuple[str, str]], bytes]:
        proxy = self.server.proxy
        target = urlsplit(proxy.upstream)
        conn = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port or 80, timeout=120)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = target.netloc
        headers["Content-Length"] = str(len(seen.body))
        try:
            conn.request(seen.method, self.path, body=seen.body, headers=headers)
            response = conn.getresponse()
            body = response.read()
            answer = (response.status, [(k, v) for k, v in response.getheaders()], body)
        except OSError as exc:
            payload = _envelope(502, f"FaultProxy: upstream {proxy.upstream} unreachable: {exc}")
            answer = (502, [("Content-Type", "application/json")], payload)
        finally:
            conn.close()
        seen.forwarded = True
        seen.upstream_status = answer[0]
        return answer

    def _relay(self, answer: Tuple[int, List[Tuple[str, str]], bytes]) -> None:
        status, headers, body = answer
        self.send_response_only(status)
        for name, value in headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def _answer(self, status: int, retry_after: Optional[str]) -> None:
        headers = [("Content-Type", "application/json"), ("X-Request-Id", "req_faultproxy")]
        if retry_after is not None:
            headers.append(("Retry-After", retry_after))
        self._relay((status, headers, _envelope(status, f"FaultProxy: injected HTTP {status}")))

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _reset(self) -> None:
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


def _check(action: Action) -> Action:
    """Reject a misspelt action when planned rather than when a request hits it."""
    if callable(action):
        return action
    kind, _, arg = action.partition(":")
    sub, _, sub_arg = arg.partition(":")
    ok = (
        (kind in ("pass", "drop", "reset", "hang") and not arg)
        or (kind.isdigit() and (not arg or _is_number(arg)))
        or (kind in ("delay", "stall") and _is_number(arg))
        or (kind == "after" and (sub in ("drop", "reset") and not sub_arg))
        or (kind == "after" and sub.isdigit() and (not sub_arg or _is_number(sub_arg)))
    )
    if not ok:
        raise ValueError(f"unknown FaultProxy action {action!r}")
    return action


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _envelope(status: int, message: str) -> bytes:
    code = _CODES.get(status, "unavailable" if status >= 500 else "injected_fault")
    body = {"error": {"code": code, "message": message, "param": None, "requestId": "req_faultproxy"}}
    return json.dumps(body).encode()


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        default: Action = "pass",
        path_prefix: Optional[str] = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.default: Action = default
        self._path_prefix = path_prefix
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._plan: List[Action] = []
        self._seen: List[SeenRequest] = []
        self._connections: Set[socket.socket] = set()
        self._stopping = threading.Event()
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # ----------------------------------------------------------------------------------- lifecycle
    def start(self) -> FaultProxy:
        if self._server is not None:
            return self
        self._stopping.clear()
        server = _Server((self._host, self._port), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="faultproxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FaultProxy is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # ------------------------------------------------------------------------------------------ plan
    def plan(self, actions: Iterable[Action], *, path_prefix: Optional[str] = None) -> None:
        actions = [_check(a) for a in actions]
        with self._lock:
            self._plan = list(actions)
            if path_prefix is not None:
                self._path_prefix = path_prefix

    def extend(self, actions: Iterable[Action]) -> None:
        actions = [_check(a) for a in actions]
        with self._lock:
            self._plan.extend(actions)

    @property
    def pending(self) -> List[Action]:
        with self._lock:
            return list(self._plan)

    @property
    def requests_seen(self) -> List[SeenRequest]:
        with self._lock:
            return list(self._seen)

    def reset(self) -> None:
        with self._lock:
            self._plan.clear()
            self._seen.clear()

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> List[SeenRequest]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = self.requests_seen
            if len(seen) >= count:
                return seen
            time.sleep(0.01)
        raise TimeoutError(f"FaultProxy saw {len(self.requests_seen)} requests, expected {count}")

    # ------------------------------------------------------------------------------------- internals
    def _next_action(self, seen: SeenRequest) -> str:
        with self._lock:
            applies = self._path_prefix is None or seen.path.startswith(self._path_prefix)
            action: Action = (self._plan.pop(0) if self._plan else self.default) if applies else "pass"
        return action(seen) if callable(action) else action

    def _record(self, seen: SeenRequest) -> None:
        with self._lock:
            self._seen.append(seen)

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)
