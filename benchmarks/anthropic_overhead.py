"""Per-call overhead of the anthropic integration, with the real client and real recorded responses.

The real `anthropic.Anthropic` client talks to an in-process `httpx2.MockTransport` that serves response
bodies recorded from the real API (the vendored cassettes in `tests/cassettes/`), so the whole client path
runs (request building, headers, SSE decoding, pydantic models) and nothing touches the network.

Measured in one run, interleaved: each round times a batch of calls with the integration uninstalled
(baseline) and a batch with it installed, back to back, alternating which goes first. The table gives the
median per-call time of each, and the median over the rounds of each round's ratio and difference (which
cancels drift in the machine's load). Metered calls go to a sink that does what the delivery exporter
does on the caller's thread (put the call on a queue); pricing happens later, off the caller's path.

    python benchmarks/anthropic_overhead.py [--rounds 60] [--batch 20]

Target (issue 4): at most 1.05x the uninstrumented time for a message and for a stream.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List

import anthropic
import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bearlumen.integrations import anthropic as integration  # noqa: E402

from bearlumen.metering import record  # noqa: E402
from benchmarks._overhead import TABLE_HEADER, QueueSink, measure, recorded_body  # noqa: E402

MESSAGE_CASSETTE = "openllmetry/anthropic/test_anthropic_prompt_caching_legacy.yaml"  # 1 message, cache write
STREAM_CASSETTE = "openllmetry/anthropic/test_anthropic_message_streaming_legacy.yaml"  # 76 SSE events
MESSAGES: List[Any] = [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]


def make_client(message_body: bytes, stream_body: bytes) -> anthropic.Anthropic:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if b'"stream":true' in request.content or b'"stream": true' in request.content:
            return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=stream_body)
        return httpx2.Response(200, headers={"content-type": "application/json"}, content=message_body)

    http_client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return anthropic.Anthropic(api_key="bench", max_retries=0, http_client=http_client)


def scenarios(client: anthropic.Anthropic) -> Dict[str, Callable[[], Any]]:
    def message() -> Any:
        return client.messages.create(model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES)

    def stream() -> Any:
        events = client.messages.create(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES, stream=True
        )
        for _ in events:
            pass

    def stream_helper() -> Any:
        with client.messages.stream(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES
        ) as events:
            return events.get_final_message()

    return {
        "message (`messages.create`)": message,
        "stream (`create(stream=True)`, 76 events)": stream,
        "stream helper (`messages.stream()` + `get_final_message()`)": stream_helper,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--batch", type=int, default=20)
    options = parser.parse_args()

    sink = QueueSink()
    record.set_sink(sink)
    client = make_client(recorded_body(MESSAGE_CASSETTE), recorded_body(STREAM_CASSETTE))
    # The integration must really be metering in the instrumented batches: one call, one LLMCall.
    integration.install()
    for operation in scenarios(client).values():
        before = sink.count
        operation()
        assert sink.count == before + 1, "the integration did not meter the benchmark call exactly once"
    integration.uninstall()

    print(
        f"anthropic {anthropic.__version__}, Python {sys.version.split()[0]}; "
        f"{options.rounds} interleaved rounds x {options.batch} calls each way"
    )
    print()
    print(TABLE_HEADER)
    for name, operation in scenarios(client).items():
        print(measure(operation, integration, options.rounds, options.batch, sink).row(name))
    record.set_sink(None)


if __name__ == "__main__":
    main()
