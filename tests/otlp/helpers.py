"""Real spans to a real `bearlumen serve`: the OpenTelemetry SDK and its OTLP/HTTP exporters.

`otel(...)` builds a TracerProvider whose spans go, one export request per span, through the real OTLP
exporter (protobuf, or JSON with `encoding="json"`) to the service's `/v1/traces`; `read(key)` lists what
the tenant recorded.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional

import httpx
import openai
from opentelemetry.processor.baggage import ALLOW_ALL_BAGGAGE_KEYS, BaggageSpanProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import bearlumen
from tests.support.cassettes import replay
from tests.support.metered import metered
from tests.support.service import ServiceHandle


def exporter(service: ServiceHandle, key: str, *, encoding: str = "protobuf", gzip: bool = False) -> Any:
    endpoint, headers = f"{service.base_url}/v1/traces", {"Authorization": f"Bearer {key}"}
    if encoding == "json":
        from opentelemetry.exporter.otlp.common.http import Compression as JsonCompression
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as JsonExporter

        compression = JsonCompression.GZIP if gzip else JsonCompression.NONE
        return JsonExporter(endpoint=endpoint, headers=headers, compression=compression)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = Compression.Gzip if gzip else Compression.NoCompression
    return OTLPSpanExporter(endpoint=endpoint, headers=headers, compression=compression)


@contextmanager
def otel(
    service: ServiceHandle, key: str, *, resource: Optional[Dict[str, Any]] = None, **options: Any
) -> Iterator[TracerProvider]:
    provider = TracerProvider(resource=Resource.create({"service.name": "otlp-test", **(resource or {})}))
    # Baggage entries (bearlumen.agent_id, ...) copied onto every span, as the README shows.
    provider.add_span_processor(BaggageSpanProcessor(ALLOW_ALL_BAGGAGE_KEYS))
    provider.add_span_processor(SimpleSpanProcessor(exporter(service, key, **options)))
    try:
        yield provider
    finally:
        provider.shutdown()


def read(service: ServiceHandle, key: str) -> List[Dict[str, Any]]:
    with service.client(key) as client:
        response = client.get("/v1/usage/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    events: List[Dict[str, Any]] = response.json()["events"]
    return sorted(events, key=lambda e: e["timestamp"])


def post(service: ServiceHandle, key: str, body: bytes, content_type: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{service.base_url}/v1/traces",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type, **headers},
        timeout=30,
    )


def chat_calls(cassette: str, count: int = 1) -> None:
    """``count`` chat completions through the real openai client, replaying ``cassette``."""
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    with replay(cassette):
        for _ in range(count):
            client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "Say this is a test"}]
            )


def with_sdk_and_otel(
    service: ServiceHandle, key: str, instrumentor: Any, calls: Callable[[], None]
) -> List[Dict[str, Any]]:
    """Run ``calls`` with both the Bear Lumen SDK and the OTel ``instrumentor`` on; the events recorded."""
    with metered((service.base_url, key), "openai"), otel(service, key) as provider:
        instrumentor.instrument(tracer_provider=provider)
        calls()
        assert bearlumen.flush(timeout=60) is True
    return read(service, key)
