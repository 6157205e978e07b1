"""Per-call overhead of the openai integration, with the real client and real recorded responses.

The real `openai.OpenAI` client talks to an in-process `httpx2.MockTransport` that serves response bodies
recorded from the real API (the vendored cassettes in `tests/cassettes/`), so the whole client path runs
(request building, headers, JSON / SSE decoding, pydantic models) and nothing touches the network.

Workloads:
- chat: one non-streamed chat completion (otel-python-contrib test_chat_completion_with_content).
- stream-50: a 50-chunk chat stream with `stream_options={"include_usage": True}` set by the caller:
  the first 49 chunks of a recorded gpt-4o-mini stream plus its recorded usage chunk.
- stream-50-added: the same stream when the caller sets no `stream_options`. The transport answers like
  the API: without `include_usage` it omits the usage chunk (49 chunks, baseline), with it (the
  integration adds it) it sends 50 and the integration hides the usage chunk from the caller.

Measured in one run, interleaved: each round times a batch of calls with the integration uninstalled
(baseline) and a batch with it installed, back to back, alternating which goes first. The ratio is the
median over the rounds of each round's instrumented/baseline ratio (pairing cancels the drift of a busy
machine); the µs columns are medians, the overhead is that ratio applied to the baseline. Metered calls
go to a sink that does what the delivery exporter does on the caller's thread (append the call to a
queue); pricing happens later, off the caller's path.

    python benchmarks/openai_overhead.py [--rounds 40] [--batch 50]

Target (issue 4): at most 1.03x the uninstrumented time for the chat call and the 50-chunk stream.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Tuple

import httpx2
import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bearlumen.integrations import openai as integration  # noqa: E402

from bearlumen.metering import record  # noqa: E402
from benchmarks._overhead import TABLE_HEADER, QueueSink, measure, recorded_body  # noqa: E402

CHAT_CASSETTE = "otel-python-contrib/openai/test_chat_completion_with_content.yaml"  # gpt-4o-mini, 12 / 5
STREAM_CASSETTE = (
    "otel-python-contrib/openai/test_chat_completion_multiple_choices_streaming.yaml"  # 109 chunks
)
MESSAGES: Any = [{"role": "user", "content": "Say this is a test"}]


def fifty_chunk_stream(body: bytes) -> Tuple[bytes, bytes]:
    """50 chunks (49 recorded content chunks + the recorded usage chunk), and the same without the last."""
    events = [e for e in body.split(b"\n\n") if e.strip() and not e.startswith(b"data: [DONE]")]
    usage = [e for e in events if json.loads(e[len(b"data: ") :]).get("choices") == []]
    content = [e for e in events if e not in usage]
    assert len(usage) == 1 and len(content) >= 49, (len(usage), len(content))
    with_usage = b"\n\n".join(content[:49] + usage) + b"\n\ndata: [DONE]\n\n"
    without_usage = b"\n\n".join(content[:49]) + b"\n\ndata: [DONE]\n\n"
    return with_usage, without_usage


def make_client() -> openai.OpenAI:
    chat = recorded_body(CHAT_CASSETTE)
    with_usage, without_usage = fifty_chunk_stream(recorded_body(STREAM_CASSETTE))
    json_headers = {"content-type": "application/json"}
    sse_headers = {"content-type": "text/event-stream; charset=utf-8"}

    def handler(request: httpx2.Request) -> httpx2.Response:
        payload = json.loads(request.content)
        if not payload.get("stream"):
            return httpx2.Response(200, headers=json_headers, content=chat)
        asked = (payload.get("stream_options") or {}).get("include_usage") is True
        return httpx2.Response(200, headers=sse_headers, content=with_usage if asked else without_usage)

    return openai.OpenAI(
        api_key="sk-bench", max_retries=0, http_client=httpx2.Client(transport=httpx2.MockTransport(handler))
    )


def workloads(client: openai.OpenAI) -> Dict[str, Callable[[], int]]:
    def chat() -> int:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return 1

    def stream_50() -> int:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        return sum(1 for _ in stream)

    def stream_50_added() -> int:
        return sum(
            1 for _ in client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        )

    return {"chat": chat, "stream-50": stream_50, "stream-50-added": stream_50_added}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()

    sink = QueueSink()
    previous = record.set_sink(sink)
    client = make_client()
    runs = workloads(client)
    # Sanity: what each workload yields to the caller, and that metering happens exactly once per call.
    integration.install()
    visible = {name: run() for name, run in runs.items()}
    integration.uninstall()
    assert sink.count == len(runs), sink.count
    assert visible == {"chat": 1, "stream-50": 50, "stream-50-added": 49}, visible

    rows = [measure(run, integration, args.rounds, args.batch, sink).row(name) for name, run in runs.items()]
    record.set_sink(previous)

    print(
        f"openai {openai.__version__}, Python {platform.python_version()}, "
        f"{args.rounds} rounds x {args.batch} calls, medians\n"
    )
    print(TABLE_HEADER)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
