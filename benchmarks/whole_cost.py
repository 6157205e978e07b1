"""The whole cost of metering in the default configuration: `bearlumen.instrument()` as a user runs it.

The default configuration is the durable spool on, the background exporter pricing every call (exact
Decimal cost through genai-prices), writing it to the spool and delivering it over HTTP to a real
`bearlumen serve` (SQLite) that this script starts on the same machine. What is measured is the CPU time
of the whole process (`time.process_time()`: the caller's thread and the exporter's threads together)
from the first call of a batch until the exporter has delivered the last event of it (the service
acknowledged it), divided by the calls in the batch. Next to it, the same batch uninstrumented (the
baseline) and with the integration metering into an in-memory queue (the sink-only figure of
`openai_overhead.py` / `anthropic_overhead.py`: the caller-thread cost alone).

Workloads (the real clients, in-process transports serving recorded bodies, see benchmarks/_overhead.py):
openai chat, openai 50-chunk stream (`include_usage` set by the caller), anthropic message, anthropic
stream (76 events). Every response gets a fresh id (the same length), so every call is a new event for
the spool and the service, as in production (a repeated id would be one event, stored once).

Rounds are interleaved (baseline, default, sink-only, in a rotating order) and the ratios are the median
over rounds of each round's ratio to its own baseline: other work on a shared machine moves both.

    python benchmarks/whole_cost.py [--rounds 15] [--seconds 1.0]

Target (issue 16): the default configuration at most 1.05x on all four workloads, every thread counted.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import anthropic
import httpx2
import openai

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bearlumen.integrations import anthropic as anthropic_integration  # noqa: E402
from bearlumen.integrations import openai as openai_integration  # noqa: E402

import bearlumen  # noqa: E402
from bearlumen import _instrument  # noqa: E402
from bearlumen.metering import record  # noqa: E402
from benchmarks import anthropic_overhead, openai_overhead  # noqa: E402
from benchmarks._overhead import QueueSink, recorded_body  # noqa: E402
from benchmarks._service import running_service  # noqa: E402

JSON = {"content-type": "application/json"}
SSE = {"content-type": "text/event-stream; charset=utf-8"}


class FreshIds:
    """A recorded body whose response id is replaced by a new one of the same length on every call."""

    counter = 0

    def __init__(self, body: bytes, pattern: bytes) -> None:
        found = re.search(pattern, body)
        assert found is not None, pattern
        self.parts = body.split(found.group(0))
        self.prefix = found.group(0)[:-12]

    def __call__(self) -> bytes:
        FreshIds.counter += 1
        return (self.prefix + b"%012d" % FreshIds.counter).join(self.parts)


def openai_client() -> openai.OpenAI:
    chat = FreshIds(recorded_body(openai_overhead.CHAT_CASSETTE), rb"chatcmpl-[A-Za-z0-9]+")
    with_usage, _ = openai_overhead.fifty_chunk_stream(recorded_body(openai_overhead.STREAM_CASSETTE))
    stream = FreshIds(with_usage, rb"chatcmpl-[A-Za-z0-9]+")

    def handler(request: httpx2.Request) -> httpx2.Response:
        if json.loads(request.content).get("stream"):
            return httpx2.Response(200, headers=SSE, content=stream())
        return httpx2.Response(200, headers=JSON, content=chat())

    http_client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key="sk-bench", max_retries=0, http_client=http_client)


def anthropic_client() -> anthropic.Anthropic:
    message = FreshIds(recorded_body(anthropic_overhead.MESSAGE_CASSETTE), rb"msg_[A-Za-z0-9]+")
    stream = FreshIds(recorded_body(anthropic_overhead.STREAM_CASSETTE), rb"msg_[A-Za-z0-9]+")

    def handler(request: httpx2.Request) -> httpx2.Response:
        if b'"stream":true' in request.content or b'"stream": true' in request.content:
            return httpx2.Response(200, headers=SSE, content=stream())
        return httpx2.Response(200, headers=JSON, content=message())

    http_client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return anthropic.Anthropic(api_key="bench", max_retries=0, http_client=http_client)


def workloads() -> Dict[str, Tuple[Callable[[], Any], Any]]:
    oa = openai_overhead.workloads(openai_client())
    an = anthropic_overhead.scenarios(anthropic_client())
    return {
        "openai chat": (oa["chat"], openai_integration),
        "openai stream (50 chunks)": (oa["stream-50"], openai_integration),
        "anthropic message": (an["message (`messages.create`)"], anthropic_integration),
        "anthropic stream (76 events)": (
            an["stream (`create(stream=True)`, 76 events)"],
            anthropic_integration,
        ),
    }


def delivered(exporter: Any) -> int:
    counts = exporter._counts  # (stats() reads the spool: its CPU would be counted against the exporter)
    return int(counts["delivered"]) + int(counts["duplicates"])


def run_batch(operation: Callable[[], Any], calls: int, exporter: Any = None) -> float:
    """CPU seconds of the whole process per call: the calls, then (metered) until all were delivered."""
    gc.collect()
    target = delivered(exporter) + calls if exporter is not None else 0
    started = time.process_time()
    for _ in range(calls):
        operation()
    if exporter is not None:
        deadline = time.monotonic() + 30
        while delivered(exporter) < target:
            if time.monotonic() > deadline:
                raise RuntimeError("the exporter did not deliver the batch within 30 s")
            time.sleep(0.02)
    return (time.process_time() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=1.0, help="about how long one batch of calls runs")
    args = parser.parse_args()

    runs = workloads()
    with running_service("sqlite") as service, tempfile.TemporaryDirectory() as spool_dir:
        bearlumen.instrument(
            api_key=service.api_key,
            base_url=service.base_url,
            integrations=["openai", "anthropic"],
            spool_dir=spool_dir,  # the default spool, in a temporary folder
        )
        exporter = _instrument._exporter
        assert exporter is not None
        sink = QueueSink()
        for integration in (openai_integration, anthropic_integration):
            integration.uninstall()
        rows: List[str] = []
        try:
            for name, (operation, integration) in runs.items():
                rows.append(measure(name, operation, integration, exporter, sink, args))
        finally:
            bearlumen.uninstrument()
        stats = exporter.stats()
        assert stats["dropped_queue_full"] == stats["dropped_spool_full"] == stats["quarantined"] == 0, stats

    print(
        f"openai {openai.__version__}, anthropic {anthropic.__version__}, "
        f"Python {platform.python_version()}, {args.rounds} interleaved rounds; "
        "process CPU time per call (all threads), medians\n"
    )
    print(
        "| workload | plain µs/call | default config µs/call | default config | sink only |\n"
        "|---|---:|---:|---:|---:|"
    )
    print("\n".join(rows))


def measure(
    name: str, operation: Callable[[], Any], integration: Any, exporter: Any, sink: QueueSink, args: Any
) -> str:
    # calibrate the batch size to about `seconds` of calls, and warm every path
    for _ in range(20):
        operation()
    started = time.perf_counter()
    for _ in range(20):
        operation()
    calls = max(50, int(args.seconds / ((time.perf_counter() - started) / 20)))
    integration.install()
    run_batch(operation, 50, exporter)
    integration.uninstall()

    cpu: Dict[str, List[float]] = {"plain": [], "default": [], "sink": []}
    order = ["plain", "default", "sink"]
    for round_index in range(args.rounds):
        for variant in order[round_index % 3 :] + order[: round_index % 3]:
            if variant == "plain":
                cpu["plain"].append(run_batch(operation, calls))
            elif variant == "default":
                integration.install()
                cpu["default"].append(run_batch(operation, calls, exporter))
                integration.uninstall()
            else:
                previous = record.set_sink(sink)
                integration.install()
                cpu["sink"].append(run_batch(operation, calls))
                integration.uninstall()
                record.set_sink(previous)
                sink.drain()
    base = statistics.median(cpu["plain"])
    ratios = {
        variant: statistics.median(v / b for v, b in zip(cpu[variant], cpu["plain"]))
        for variant in ("default", "sink")
    }
    spread = statistics.quantiles([v / b for v, b in zip(cpu["default"], cpu["plain"])], n=4)
    print(
        f"{name}: {calls} calls/batch; default-config ratio quartiles {spread[0]:.3f} / {spread[1]:.3f} / "
        f"{spread[2]:.3f}",
        file=sys.stderr,
    )
    default = statistics.median(cpu["default"])
    return (
        f"| {name} | {base * 1e6:,.0f} | {default * 1e6:,.0f} | **{ratios['default']:.3f}x** "
        f"({(ratios['default'] - 1) * base * 1e6:+.0f} µs) | {ratios['sink']:.3f}x |"
    )


if __name__ == "__main__":
    main()
