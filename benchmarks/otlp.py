"""OTLP ingest: one export request of a large span batch vs. the same model calls as one REST batch.

    .venv/bin/python benchmarks/otlp.py                       # SQLite, 20 rounds
    .venv/bin/python benchmarks/otlp.py --backend postgresql --rounds 40

Each round builds, with the real OpenTelemetry SDK, ``--spans`` spans (the BatchSpanProcessor's default
export size is 512) of which ``--model-share`` are model calls (GenAI attributes, usage, a response id) and
the rest ordinary spans (HTTP server spans, as an instrumented web app has), encoded by the real OTLP
encoder; the baseline is the same model calls as one ``POST /v1/usage/events/batch`` of SDK-built events
(priced by the client, as the SDK does). Every round uses new ids, so nothing is a duplicate. The two are
sent alternately to one ``bearlumen serve`` process (interleaved, so machine noise hits both alike) and the
median latency of each is reported, with their ratio. The service's time is all threads of its process.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from typing import Any, Dict, List, Tuple

import httpx
import orjson
from _service import running_service
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bearlumen.metering.event import build_event, idempotency_key
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall, TokenUsage
from bearlumen.scopes import Attribution


def _round(spans: int, model_calls: int, prices: PriceBook) -> Tuple[bytes, bytes]:
    """(OTLP protobuf body, REST batch body) for one round's calls, with fresh ids."""
    captured = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(captured))
    tracer = provider.get_tracer("bench")
    events: List[Dict[str, Any]] = []
    for index in range(spans):
        if index < model_calls:
            response_id = f"chatcmpl-{uuid.uuid4().hex}"
            attributes: Dict[str, Any] = {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.response.id": response_id,
                "gen_ai.usage.input_tokens": 1200 + index,
                "gen_ai.usage.output_tokens": 300,
                "gen_ai.usage.cache_read.input_tokens": 1024,
                "bearlumen.agent_id": f"agent-{index % 8}",
            }
            call = LLMCall(
                integration="openai",
                provider="openai",
                operation="chat",
                model_requested="gpt-4o-mini",
                model="gpt-4o-mini-2024-07-18",
                usage=TokenUsage(input_tokens=176 + index, cache_read_tokens=1024, output_tokens=300),
                response_id=response_id,
                attribution=Attribution(agent_id=f"agent-{index % 8}"),
            )
            events.append(build_event(call, prices, idempotency_key(call)))
        else:
            attributes = {"http.request.method": "GET", "url.path": f"/tickets/{index}", "http.route": "/t"}
        with tracer.start_as_current_span("span", attributes=attributes):
            pass
    otlp = encode_spans(captured.get_finished_spans()).SerializeToString()
    provider.shutdown()
    return otlp, orjson.dumps({"events": events})


def _cpu_seconds(pid: int) -> float:
    """User + system time of every thread of process ``pid`` (from /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / 100.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgresql"])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--spans", type=int, default=512)
    parser.add_argument("--model-share", type=float, default=0.5)
    args = parser.parse_args()
    prices = PriceBook()
    model_calls = int(args.spans * args.model_share)
    timings: Dict[str, List[float]] = {"otlp": [], "rest": []}
    cpu: Dict[str, List[float]] = {"otlp": [], "rest": []}
    with running_service(args.backend) as service:
        headers = {"Authorization": f"Bearer {service.api_key}"}
        with httpx.Client(base_url=service.base_url, headers=headers, timeout=120) as client:
            for round_index in range(args.rounds + 1):  # round 0 warms both paths up, and is not counted
                otlp, rest = _round(args.spans, model_calls, prices)
                order = [("otlp", otlp), ("rest", rest)]
                for name, body in order if round_index % 2 else reversed(order):
                    path, kind = (
                        ("/v1/traces", "application/x-protobuf")
                        if name == "otlp"
                        else ("/v1/usage/events/batch", "application/json")
                    )
                    before = _cpu_seconds(service.pid or 0)
                    started = time.perf_counter()
                    response = client.post(path, content=body, headers={"Content-Type": kind})
                    elapsed = time.perf_counter() - started
                    response.raise_for_status()
                    if round_index:
                        timings[name].append(elapsed)
                        cpu[name].append(_cpu_seconds(service.pid or 0) - before)
    otlp_ms, rest_ms = (statistics.median(timings[n]) * 1000 for n in ("otlp", "rest"))
    otlp_cpu, rest_cpu = (statistics.median(cpu[n]) * 1000 for n in ("otlp", "rest"))
    print(f"{args.spans} spans per request, {model_calls} model calls; {args.backend}; {args.rounds} rounds")
    print("| request | median latency (ms) | median service CPU (ms) |")
    print("|---|---|---|")
    print(f"| POST /v1/traces (OTLP protobuf, priced by the service) | {otlp_ms:.1f} | {otlp_cpu:.0f} |")
    print(f"| POST /v1/usage/events/batch (same calls, priced by the SDK) | {rest_ms:.1f} | {rest_cpu:.0f} |")
    print(f"| ratio | {otlp_ms / rest_ms:.2f} | {otlp_cpu / max(rest_cpu, 1e-9):.2f} |")


if __name__ == "__main__":
    main()
