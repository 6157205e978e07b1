"""The official OTel openai-v2 instrumentation replaying recorded openai traffic through the real openai
client; its spans exported by the real OTLP/HTTP exporters to a real `bearlumen serve`, billed like SDK
events.

Costs by hand (genai-prices, USD per million tokens): gpt-4o-mini 0.15 input / 0.60 output,
text-embedding-3-small 0.02 input.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import openai
import pytest
from opentelemetry import baggage, context
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import bearlumen
from tests.otlp.helpers import chat_calls, exporter, otel, read, with_sdk_and_otel
from tests.support.cassettes import replay
from tests.support.metered import metered
from tests.support.service import ServiceHandle

CHAT = "otel-python-contrib/openai/test_chat_completion_with_content.yaml"  # 12 in, 5 out
CHAT_ID = "chatcmpl-ASYMQRl3A3DXL9FWCK9tnGRcKIO7q"
EMBEDDINGS = "otel-python-contrib/openai/test_embeddings_with_content.yaml"  # 6 in


def chat() -> None:
    chat_calls(CHAT)


def test_each_model_call_is_one_event_with_exact_tokens_and_cost(
    backend_tenant: tuple[ServiceHandle, str], openai_v2: OpenAIInstrumentor
) -> None:
    service, tenant = backend_tenant  # SQLite, then PostgreSQL
    with otel(service, tenant, resource={"bearlumen.workflow_id": "support"}) as provider:
        openai_v2.instrument(tracer_provider=provider)
        attribution = baggage.set_baggage("bearlumen.agent_id", "triage")
        attribution = baggage.set_baggage("bearlumen.end_user_id", "cust-42", attribution)
        token = context.attach(attribution)
        try:
            with provider.get_tracer("app").start_as_current_span("handle ticket"):  # not a model call
                chat()
                with replay(EMBEDDINGS):
                    openai.OpenAI(api_key="sk-test", max_retries=0).embeddings.create(
                        model="text-embedding-3-small", input="This is a test"
                    )
        finally:
            context.detach(token)

    events = read(service, tenant)
    assert len(events) == 2
    chat_event, embedding = events
    assert chat_event["quantity"] == 17
    assert Decimal(chat_event["providerCostUsd"]) == Decimal("0.0000048")  # (12x0.15 + 5x0.60) / 1M
    assert (chat_event["workflowId"], chat_event["agentId"]) == ("support", "triage")
    metadata = chat_event["metadata"]
    assert (metadata["provider"], metadata["model"], metadata["model_requested"]) == (
        "openai",
        "gpt-4o-mini-2024-07-18",
        "gpt-4o-mini",
    )
    assert (metadata["input_tokens"], metadata["cache_read_tokens"], metadata["output_tokens"]) == (12, 0, 5)
    assert metadata["integration"] == "otlp" and metadata["operation"] == "chat"
    assert metadata["response_id"] == CHAT_ID
    assert metadata["otel_scope"] == "opentelemetry.instrumentation.openai_v2"
    assert metadata["service_name"] == "otlp-test"
    assert embedding["quantity"] == 6
    assert Decimal(embedding["providerCostUsd"]) == Decimal("0.00000012")  # 6 x 0.02 / 1M
    assert embedding["metadata"]["operation"] == "embeddings"
    with service.client(tenant) as client:
        end_user = client.get(f"/v1/end_users/{chat_event['endUserId']}").json()
    assert end_user["endUser"]["externalId"] == "cust-42"  # registered on first use, as for REST events


@pytest.mark.parametrize("encoding", ["protobuf", "json"])
@pytest.mark.parametrize("gzip", [False, True])
def test_every_encoding_and_a_resent_payload_counted_once(
    sqlite_service: ServiceHandle, tenant: str, openai_v2: OpenAIInstrumentor, encoding: str, gzip: bool
) -> None:
    captured = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(captured))
    openai_v2.instrument(tracer_provider=provider)
    chat()
    spans = captured.get_finished_spans()
    assert len(spans) == 1
    sender = exporter(sqlite_service, tenant, encoding=encoding, gzip=gzip)
    try:
        # An exporter retry (the answer was lost) sends the same spans again.
        assert sender.export(spans) == SpanExportResult.SUCCESS
        assert sender.export(spans) == SpanExportResult.SUCCESS
    finally:
        sender.shutdown()
    events = read(sqlite_service, tenant)
    assert [e["quantity"] for e in events] == [17]
    assert Decimal(events[0]["providerCostUsd"]) == Decimal("0.0000048")
    assert events[0]["metadata"]["otel_trace_id"] == format(spans[0].context.trace_id, "032x")


# -- an app that sends both OTel spans and SDK events is billed once per call ----------------------------
# The span's idempotency key derives from gen_ai.response.id exactly as the SDK's does from the response id.


def by_span(service: ServiceHandle, tenant: str, instrumentor: OpenAIInstrumentor) -> None:
    with otel(service, tenant) as provider:
        instrumentor.instrument(tracer_provider=provider)
        chat()
    instrumentor.uninstrument()


def by_sdk(service: ServiceHandle, tenant: str, _instrumentor: OpenAIInstrumentor) -> None:
    with metered((service.base_url, tenant), "openai"):
        chat()
        assert bearlumen.flush(timeout=60) is True


@pytest.mark.parametrize(("first", "then", "kept"), [(by_span, by_sdk, "otlp"), (by_sdk, by_span, "openai")])
def test_the_same_call_as_span_and_sdk_event_is_one_event_in_either_order(
    sqlite_service: ServiceHandle,
    tenant: str,
    openai_v2: OpenAIInstrumentor,
    first: Any,
    then: Any,
    kept: str,
) -> None:
    first(sqlite_service, tenant, openai_v2)
    assert len(read(sqlite_service, tenant)) == 1
    then(sqlite_service, tenant, openai_v2)  # the same recorded response, reported the other way
    (event,) = read(sqlite_service, tenant)
    assert event["metadata"]["integration"] == kept  # the first report is the one kept
    assert event["quantity"] == 17
    assert Decimal(event["providerCostUsd"]) == Decimal("0.0000048")


def test_both_on_at_once_is_one_event(
    sqlite_service: ServiceHandle, tenant: str, openai_v2: OpenAIInstrumentor
) -> None:
    events = with_sdk_and_otel(sqlite_service, tenant, openai_v2, chat)
    assert len(events) == 1
    assert events[0]["quantity"] == 17
    assert Decimal(events[0]["providerCostUsd"]) == Decimal("0.0000048")
