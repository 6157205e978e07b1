"""A local OpenAI-compatible chat-completions host, for running the agent examples (and tests) offline.

This is a stand-in, not a recording: a small real HTTP server that answers `POST /v1/chat/completions`
in the shapes OpenAI documents for the Chat Completions API (a `chat.completion` object, or a stream of
`chat.completion.chunk` server-sent events ending in `data: [DONE]`; with
`stream_options={"include_usage": true}` every chunk carries `"usage": null` and one last chunk with
`choices: []` carries the usage). It plays a script: each request gets the next `Turn` (a text answer or
one tool call, with the token counts to report), which is how an agent's tool calls and handoffs are
driven without a model. `rejects_stream_options=True` makes it answer a request that has
`stream_options` with the HTTP 400 error envelope OpenAI documents, as some compatible servers do.

    with CompatibleHost([Turn(text="Hello", prompt_tokens=12, completion_tokens=3)]) as host:
        openai.OpenAI(base_url=host.url, api_key="local").chat.completions.create(...)
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List, Optional, Sequence


@dataclass(frozen=True)
class Turn:
    """One answer: `text`, or a call of tool `tool` with JSON `arguments`; and its token counts."""

    text: str = ""
    tool: Optional[str] = None
    arguments: str = "{}"
    prompt_tokens: int = 10
    completion_tokens: int = 5


class CompatibleHost:
    def __init__(self, turns: Sequence[Turn], *, rejects_stream_options: bool = False) -> None:
        self.turns = list(turns)
        self.rejects_stream_options = rejects_stream_options
        self.requests: List[Dict[str, Any]] = []  # every JSON body received, in order
        self._lock = threading.Lock()
        self._answered = 0
        # Response ids unique to this host: a service records a response id once, whichever run sent it.
        self.id_prefix = f"chatcmpl-local-{uuid.uuid4().hex[:12]}"
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        """The base URL to give the openai client (`http://127.0.0.1:<port>/v1`)."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> CompatibleHost:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> CompatibleHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def next_turn(self) -> tuple[int, Turn]:
        with self._lock:
            if self._answered >= len(self.turns):
                raise LookupError("the script has no more turns")
            self._answered += 1
            return self._answered, self.turns[self._answered - 1]

    def response_id(self, number: int) -> str:
        return f"{self.id_prefix}-{number}"


def _message(turn: Turn, number: int) -> Dict[str, Any]:
    if turn.tool is None:
        return {"role": "assistant", "content": turn.text}
    call = {
        "id": f"call_{number}",
        "type": "function",
        "function": {"name": turn.tool, "arguments": turn.arguments},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def _usage(turn: Turn) -> Dict[str, int]:
    total = turn.prompt_tokens + turn.completion_tokens
    return {
        "prompt_tokens": turn.prompt_tokens,
        "completion_tokens": turn.completion_tokens,
        "total_tokens": total,
    }


def _completion(turn: Turn, number: int, model: str, response_id: str) -> Dict[str, Any]:
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": 1_700_000_000 + number,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": _message(turn, number),
                "finish_reason": "stop" if turn.tool is None else "tool_calls",
            }
        ],
        "usage": _usage(turn),
    }


def _chunks(
    turn: Turn, number: int, model: str, response_id: str, include_usage: bool
) -> Iterator[Dict[str, Any]]:
    base = {
        "id": response_id,
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
    }
    extra: Dict[str, Any] = {"usage": None} if include_usage else {}

    def chunk(delta: Dict[str, Any], finish: Optional[str] = None) -> Dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}

    yield chunk({"role": "assistant", "content": "" if turn.tool is None else None})
    if turn.tool is None:
        for word in turn.text.split(" "):
            yield chunk({"content": word if word == turn.text.split(" ")[0] else " " + word})
        yield chunk({}, "stop")
    else:
        call = {
            "index": 0,
            "id": f"call_{number}",
            "type": "function",
            "function": {"name": turn.tool, "arguments": ""},
        }
        yield chunk({"tool_calls": [call]})
        yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": turn.arguments}}]})
        yield chunk({}, "tool_calls")
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(turn)}


def _handler(host: CompatibleHost) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
            host.requests.append(body)
            if not self.path.endswith("/chat/completions"):
                return self._json(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
            if host.rejects_stream_options and "stream_options" in body:
                error = {
                    "message": "Unrecognized request argument supplied: stream_options",
                    "type": "invalid_request_error",
                    "param": "stream_options",
                    "code": None,
                }
                return self._json(400, {"error": error})
            number, turn = host.next_turn()
            model = str(body.get("model") or "local-model")
            if not body.get("stream"):
                return self._json(200, _completion(turn, number, model, host.response_id(number)))
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            events = b"".join(
                b"data: " + json.dumps(chunk).encode() + b"\n\n"
                for chunk in _chunks(turn, number, model, host.response_id(number), include_usage)
            )
            self._send(200, "text/event-stream", events + b"data: [DONE]\n\n")

        def _json(self, status: int, payload: Any) -> None:
            self._send(status, "application/json", json.dumps(payload).encode())

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
