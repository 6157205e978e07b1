"""Cheap rejection first: the key, the rate limit and the body size are checked before the body is read.

Raw sockets against a real `bearlumen serve` (its own process, so its memory can be measured from
``/proc/<pid>/status``): an answer that arrives while the client is still sending proves the server did not
wait for the body; the peak resident memory (VmHWM) proves it did not keep it.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator, List, Optional, Tuple

import pytest

from tests.support.service import ServiceHandle, start_service

MIB = 1024 * 1024
CHUNK = b" " * (256 * 1024)


@pytest.fixture(scope="module")
def gated() -> Iterator[ServiceHandle]:
    """A service of its own (SQLite; the gate is the same on both backends)."""
    with start_service() as handle:
        yield handle


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/<pid>/status")


class RawRequest:
    """One HTTP/1.1 request over a plain socket: the answer is read in a thread while the body is sent."""

    def __init__(self, port: int, head: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.answer = b""
        self.answered_at: Optional[float] = None
        self.sent = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self.sock.sendall(head.encode("latin-1"))
        self._reader.start()

    def _read(self) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return
                if not self.answer:
                    self.answered_at = time.monotonic()
                self.answer += data
        except OSError:
            return

    def send_body(self, size: int, chunked: bool = False) -> None:
        """Send ``size`` bytes (stops quietly when the server closes the connection)."""
        try:
            while self.sent < size:
                piece = CHUNK[: min(len(CHUNK), size - self.sent)]
                self.sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                self.sent += len(piece)
            if chunked:
                self.sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass

    def status(self, timeout: float = 30.0) -> Tuple[int, bytes]:
        self._reader.join(timeout)
        self.sock.close()
        assert self.answer, "no answer"
        head, _, body = self.answer.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body


def _head(path: str, size: Optional[int], key: Optional[str] = None, chunked: bool = False) -> str:
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Connection: close",
        "Content-Type: application/json",
    ]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    return "\r\n".join(lines) + "\r\n\r\n"


def test_unauthenticated_bodies_are_refused_before_they_are_read(gated: ServiceHandle) -> None:
    """Eight concurrent unauthenticated 31 MiB bodies: 401 each, answered before the body is sent, and the
    server's peak memory does not grow by the bodies (it grew 69 MB -> 412 MB when it read them first)."""
    assert gated.pid is not None
    size = 31 * MIB
    before = _peak_rss_kib(gated.pid)
    requests: List[RawRequest] = []
    for index in range(8):
        key = None if index % 2 else "blm_not_a_real_key"
        requests.append(RawRequest(gated.port, _head("/v1/usage/events/batch", size, key)))
    senders = [threading.Thread(target=r.send_body, args=(size,)) for r in requests]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join(60)
    answers = [request.status() for request in requests]
    growth_mib = (_peak_rss_kib(gated.pid) - before) / 1024
    assert growth_mib < 24, f"peak RSS grew by {growth_mib:.1f} MiB"
    for request, (status, body) in zip(requests, answers):
        assert status == 401, body
        assert b'"authentication_failed"' in body
        assert request.sent < size  # the connection was closed under the client: the rest was never read


def test_rate_limit_answers_before_the_body() -> None:
    with start_service(rate_limit=1) as limited:
        first = RawRequest(limited.port, _head("/v1/usage/events", 2, limited.api_key))
        first.send_body(0)
        first.sock.sendall(b"{}")
        assert first.status()[0] == 400  # admitted (and the empty event is invalid)
        second = RawRequest(limited.port, _head("/v1/usage/events/batch", 31 * MIB, limited.api_key))
        second.send_body(31 * MIB)
        status, body = second.status()
        assert status == 429 and b'"rate_limited"' in body
        assert second.sent < 31 * MIB


def test_declared_oversized_body_is_413_before_it_is_read(gated: ServiceHandle) -> None:
    request = RawRequest(gated.port, _head("/v1/usage/events/batch", 33 * MIB, gated.api_key))
    request.send_body(33 * MIB)
    status, body = request.status()
    assert status == 413 and b'"request_too_large"' in body
    assert request.sent < 33 * MIB


def test_streamed_oversized_body_is_413_at_the_limit(gated: ServiceHandle) -> None:
    """A chunked body (no Content-Length) is counted while it streams and refused past 32 MiB."""
    assert gated.pid is not None
    request = RawRequest(gated.port, _head("/v1/usage/events/batch", None, gated.api_key, chunked=True))
    request.send_body(48 * MIB, chunked=True)
    status, body = request.status()
    assert status == 413 and b'"request_too_large"' in body
    assert request.sent < 48 * MIB


def test_slow_body_is_408() -> None:
    """A client that stops sending mid-body is answered 408 after --body-timeout (2 s here)."""
    with start_service(args=["--body-timeout", "2"]) as slow:
        request = RawRequest(slow.port, _head("/v1/usage/events", 1000, slow.api_key))
        request.sock.sendall(b'{"event_type": "x", ')
        started = time.monotonic()
        status, body = request.status(timeout=30)
        assert status == 408 and b'"request_timeout"' in body
        assert request.answered_at is not None and request.answered_at - started >= 1.5


def test_the_gate_answers_in_the_error_envelope(gated: ServiceHandle) -> None:
    request = RawRequest(gated.port, _head("/v1/end_users", 0))
    status, body = request.status()
    assert status == 401
    assert b'"requestId":"req_' in body and b'"param":null' in body
