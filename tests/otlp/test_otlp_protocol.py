"""`POST /v1/traces` against a real `bearlumen serve`: the conventions of the major instrumentations, the
spans that are not billed, and the OTLP/HTTP answers (401, 400 with a google.rpc.Status, 415,
partial_success).

The spans here are made by the real OpenTelemetry SDK and encoded by its real OTLP encoders; their attributes
are set by the test, written as OpenLLMetry / OpenInference / the GenAI conventions write them, because no
recording of those instrumentations' spans exists in this repository. Malformed bodies are hand-made (that is
their point).

Prices (genai-prices, USD per million tokens): claude-3-5-haiku 0.80 input / 0.08 cache read / 1.00 cache
write / 4.00 output; gpt-4o-mini 0.15 / 0.075 cache read / 0.60; o3-mini 1.10 / 4.40; text-embedding-3-small
0.02.
"""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from typing import Any, Dict, List

import httpx
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.otlp.helpers import exporter, otel, post, read
from tests.support.service import ServiceHandle

PROTOBUF = "application/x-protobuf"
HAIKU = "claude-3-5-haiku-20241022"


def spans_with(*attribute_sets: Dict[str, Any]) -> List[ReadableSpan]:
    """One finished span per attribute set, made by the real SDK (nothing exported yet)."""
    captured = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(captured))
    tracer = provider.get_tracer("test")
    for attributes in attribute_sets:
        with tracer.start_as_current_span("span", attributes=attributes):
            pass
    return list(captured.get_finished_spans())


def send(service: ServiceHandle, key: str, spans: List[ReadableSpan]) -> ExportTraceServiceResponse:
    body = encode_spans(spans).SerializeToString()
    response = post(service, key, body, PROTOBUF)
    assert response.status_code == 200, response.content
    assert response.headers["content-type"] == PROTOBUF
    return ExportTraceServiceResponse.FromString(response.content)


def by_model(events: List[Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
    return {e["metadata"]["model"]: e for e in events}


def buckets(event: Dict[str, Any]) -> tuple[int, ...]:
    m = event["metadata"]
    return (m["input_tokens"], m["cache_read_tokens"], m["cache_write_tokens"], m["output_tokens"])


def test_the_conventions_of_the_major_instrumentations(sqlite_service: ServiceHandle, tenant: str) -> None:
    openllmetry_anthropic = {  # input counts cache reads and writes (OpenLLMetry adds them)
        "llm.request.type": "chat",
        "gen_ai.system": "Anthropic",
        "gen_ai.request.model": HAIKU,
        "gen_ai.response.model": HAIKU,
        "gen_ai.usage.input_tokens": 1500,
        "gen_ai.usage.output_tokens": 50,
        "gen_ai.usage.cache_read_input_tokens": 1200,
        "gen_ai.usage.cache_creation_input_tokens": 200,
    }
    openinference_openai = {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.model_name": "gpt-4o-mini-2024-07-18",
        "llm.token_count.prompt": 1370,
        "llm.token_count.completion": 155,
        "llm.token_count.prompt_details.cache_read": 1280,
        "llm.token_count.total": 1525,
    }
    semconv_reasoning = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "o3-mini",
        "gen_ai.response.model": "o3-mini",
        "gen_ai.usage.input_tokens": 20,
        "gen_ai.usage.output_tokens": 300,
        "gen_ai.usage.reasoning.output_tokens": 256,
    }
    old_openllmetry_embedding = {
        "llm.request.type": "embedding",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "text-embedding-3-small",
        "gen_ai.usage.prompt_tokens": 6,
    }
    answer = send(
        sqlite_service,
        tenant,
        spans_with(openllmetry_anthropic, openinference_openai, semconv_reasoning, old_openllmetry_embedding),
    )
    assert not answer.HasField("partial_success")

    events = by_model(read(sqlite_service, tenant))
    assert set(events) == {HAIKU, "gpt-4o-mini-2024-07-18", "o3-mini", "text-embedding-3-small"}
    haiku = events[HAIKU]
    assert buckets(haiku) == (100, 1200, 200, 50)
    assert haiku["metadata"]["provider"] == "anthropic"
    assert Decimal(haiku["providerCostUsd"]) == Decimal("0.000576")  # 100x0.8 + 1200x0.08 + 200x1 + 50x4
    mini = events["gpt-4o-mini-2024-07-18"]
    assert buckets(mini) == (90, 1280, 0, 155)
    assert Decimal(mini["providerCostUsd"]) == Decimal("0.0002025")  # 90x0.15 + 1280x0.075 + 155x0.6
    o3 = events["o3-mini"]
    assert buckets(o3) == (20, 0, 0, 300) and o3["metadata"]["reasoning_tokens"] == 256
    assert Decimal(o3["providerCostUsd"]) == Decimal("0.001342")  # 20x1.1 + 300x4.4
    embedding = events["text-embedding-3-small"]
    assert embedding["quantity"] == 6
    assert Decimal(embedding["providerCostUsd"]) == Decimal("0.00000012")


def test_an_input_count_smaller_than_its_cache_parts_excludes_them(
    sqlite_service: ServiceHandle, tenant: str
) -> None:
    exclusive = {  # Anthropic's own input_tokens passed through: 100 uncached, cache reads beside it
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.response.model": HAIKU,
        "gen_ai.usage.input_tokens": 100,
        "gen_ai.usage.cache_read.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 50,
    }
    send(sqlite_service, tenant, spans_with(exclusive))
    (event,) = read(sqlite_service, tenant)
    assert buckets(event) == (100, 1200, 0, 50)
    assert Decimal(event["providerCostUsd"]) == Decimal("0.000376")  # 100x0.8 + 1200x0.08 + 50x4


def test_spans_that_are_not_billable_model_calls_are_ignored(
    sqlite_service: ServiceHandle, tenant: str
) -> None:
    usage = {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}
    ignored = spans_with(
        {"http.request.method": "GET"},
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "triage", **usage},  # sums its calls
        {"gen_ai.operation.name": "execute_tool", **usage},
        {"openinference.span.kind": "CHAIN", "llm.token_count.prompt": 100},
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"},  # failed: no usage
    )
    answer = send(sqlite_service, tenant, ignored)
    assert not answer.HasField("partial_success")
    assert read(sqlite_service, tenant) == []


def test_attribution_and_timestamp_from_the_span_and_its_resource(
    sqlite_service: ServiceHandle, tenant: str
) -> None:
    with otel(sqlite_service, tenant, resource={"bearlumen.workflow_id": "onboarding"}) as provider:
        tracer = provider.get_tracer("app")
        span = tracer.start_span(
            "chat gpt-4o-mini",
            attributes={
                "gen_ai.operation.name": "chat",
                "gen_ai.system": "openai",
                "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
                "gen_ai.usage.input_tokens": 12,
                "gen_ai.usage.output_tokens": 5,
                "gen_ai.agent.name": "planner",
                "bearlumen.end_user_id": "acme-7",
                "bearlumen.subscription_id": "sub_pro",
            },
        )
        span.end(end_time=1_767_225_600_123_456_000)  # 2026-01-01T00:00:00.123456Z
    (event,) = read(sqlite_service, tenant)
    assert (event["workflowId"], event["agentId"], event["subscriptionId"]) == (
        "onboarding",
        "planner",
        "sub_pro",
    )
    assert event["endUserId"].startswith("eu_")
    assert event["timestamp"].startswith("2026-01-01T00:00:00.123456")
    assert (
        event["idempotencyKey"]
        == f"otel_{event['metadata']['otel_trace_id']}{event['metadata']['otel_span_id']}"
    )


def test_spans_that_cannot_be_billed_are_refused_alone(sqlite_service: ServiceHandle, tenant: str) -> None:
    chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai"}
    spans = spans_with(
        {**chat, "gen_ai.response.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": -5},
        {**chat, "gen_ai.response.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1.5},
        {**chat, "gen_ai.response.model": "m" * 300, "gen_ai.usage.input_tokens": 1},  # model name too long
        {**chat, "gen_ai.response.model": "gpt-4o-mini-2024-07-18", "gen_ai.usage.input_tokens": 12},
    )
    answer = send(sqlite_service, tenant, spans)
    assert answer.partial_success.rejected_spans == 3
    assert "token counts" in answer.partial_success.error_message
    assert [e["quantity"] for e in read(sqlite_service, tenant)] == [12]


def test_a_wrong_key_is_refused(sqlite_service: ServiceHandle, tenant: str) -> None:
    spans = spans_with(
        {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.usage.input_tokens": 3}
    )
    sender = exporter(sqlite_service, "blm_not_a_key")
    try:
        assert sender.export(spans) == SpanExportResult.FAILURE
    finally:
        sender.shutdown()
    body = encode_spans(spans).SerializeToString()
    assert post(sqlite_service, "blm_not_a_key", body, PROTOBUF).status_code == 401
    response = httpx.post(
        f"{sqlite_service.base_url}/v1/traces", content=body, headers={"Content-Type": PROTOBUF}
    )
    assert response.status_code == 401
    assert read(sqlite_service, tenant) == []


def _status(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.content
    if response.headers["content-type"] == PROTOBUF:
        return str(Status.FromString(response.content).message)
    return str(response.json()["message"])


def test_malformed_requests_answer_a_status_and_store_nothing(
    backend_tenant: tuple[ServiceHandle, str],
) -> None:
    service, tenant = backend_tenant  # SQLite, then PostgreSQL
    good = encode_spans(
        spans_with(
            {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.usage.input_tokens": 3},
            {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.usage.input_tokens": 4},
        )
    ).SerializeToString()
    assert "not an OTLP" in _status(post(service, tenant, good[:-7], PROTOBUF), 400)  # truncated
    assert "not an OTLP" in _status(post(service, tenant, b"\xff\xff\xff\xff", PROTOBUF), 400)
    assert "gzip" in _status(post(service, tenant, good, PROTOBUF, **{"Content-Encoding": "gzip"}), 400)
    truncated_gzip = gzip.compress(good)[:-10]
    message = _status(post(service, tenant, truncated_gzip, PROTOBUF, **{"Content-Encoding": "gzip"}), 400)
    assert "truncated" in message
    json_type = "application/json"
    assert "JSON" in _status(post(service, tenant, b'{"resourceSpans": [', json_type), 400)
    assert "JSON object" in _status(post(service, tenant, b"[1, 2]", json_type), 400)
    bad_id = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz", "spanId": "00"}]}]}]}
    assert "hex" in _status(post(service, tenant, json.dumps(bad_id).encode(), json_type), 400)
    for not_objects in ([[]], ["abc"]):  # the protobuf JSON parser would read both as empty objects
        items = json.dumps({"resourceSpans": not_objects}).encode()
        assert "JSON object" in _status(post(service, tenant, items, json_type), 400)
    wrong_shape = {"resourceSpans": [{"scopeSpans": [{"spans": [{"name": {"not": "a string"}}]}]}]}
    assert "not an OTLP" in _status(post(service, tenant, json.dumps(wrong_shape).encode(), json_type), 400)
    assert "Content-Type" in _status(post(service, tenant, good, "text/plain"), 415)
    assert "Content-Encoding" in _status(
        post(service, tenant, good, PROTOBUF, **{"Content-Encoding": "br"}), 415
    )
    assert read(service, tenant) == []
    # The same bytes, whole and gzipped, are recorded (so the refusals above were about the damage alone).
    response = post(service, tenant, gzip.compress(good), PROTOBUF, **{"Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert sorted(e["quantity"] for e in read(service, tenant)) == [3, 4]


def test_otlp_json_as_other_languages_send_it(sqlite_service: ServiceHandle, tenant: str) -> None:
    # OTLP/JSON as the specification writes it (hex ids, int64 as strings, camelCase), e.g. from a Node app.
    body = {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.name", "value": {"stringValue": "checkout-node"}},
                        {"key": "bearlumen.agent_id", "value": {"stringValue": "cart-agent"}},
                    ]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "ai"},
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "ai.generateText.doGenerate",
                                "startTimeUnixNano": "1767225600000000000",
                                "endTimeUnixNano": "1767225601000000000",
                                "attributes": [
                                    {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                    {"key": "gen_ai.system", "value": {"stringValue": "openai.chat"}},
                                    {"key": "gen_ai.provider.name", "value": {"stringValue": "openai"}},
                                    {"key": "gen_ai.response.model", "value": {"stringValue": "gpt-4o-mini"}},
                                    {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
                                    {"key": "gen_ai.usage.output_tokens", "value": {"intValue": 5}},
                                ],
                            },
                            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "aaa19b7ec3c1b174"},
                        ],
                    }
                ],
            }
        ]
    }
    for _attempt in range(2):  # an exporter retry: no response id, so trace id + span id make the key
        response = post(sqlite_service, tenant, json.dumps(body).encode(), "application/json; charset=utf-8")
        assert response.status_code == 200 and response.json() == {}
    (event,) = read(sqlite_service, tenant)
    assert event["idempotencyKey"] == "otel_5b8efff798038103d269b633813fc60ceee19b7ec3c1b174"
    assert (event["agentId"], event["metadata"]["service_name"]) == ("cart-agent", "checkout-node")
    assert event["timestamp"].startswith("2026-01-01T00:00:01")
    assert Decimal(event["providerCostUsd"]) == Decimal("0.0000048")  # 12x0.15 + 5x0.60


def test_extreme_inputs_are_answered_never_5xx(sqlite_service: ServiceHandle, tenant: str) -> None:
    bomb = gzip.compress(b"\0" * (33 * 1024 * 1024))  # 33 MiB of zeros in about 33 KiB
    assert "exceeds" in _status(
        post(sqlite_service, tenant, bomb, PROTOBUF, **{"Content-Encoding": "gzip"}), 400
    )
    deep = b'{"resourceSpans": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert post(sqlite_service, tenant, deep, "application/json").status_code == 400
    assert send(sqlite_service, tenant, []).HasField("partial_success") is False  # an empty request is fine
    chat = {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai",
        "gen_ai.response.model": "gpt-4o-mini",
    }
    spans = spans_with(
        {**chat, "gen_ai.usage.input_tokens": 2**63 - 1},  # past the 1e12 quantity bound: refused alone
        {**chat, "gen_ai.usage.input_tokens": True},
        {**chat, "gen_ai.usage.input_tokens": "12", "gen_ai.usage.output_tokens": 2.0},  # readable as whole
        {**chat, "gen_ai.usage.input_tokens": 1, "gen_ai.provider.name": ""},
    )
    request = encode_spans(spans)
    request.resource_spans[0].scope_spans[0].spans[3].end_time_unix_nano = 2**64 - 1  # year 2554: re-stamped
    response = post(sqlite_service, tenant, request.SerializeToString(), PROTOBUF)
    assert response.status_code == 200
    assert ExportTraceServiceResponse.FromString(response.content).partial_success.rejected_spans == 2
    events = read(sqlite_service, tenant)
    assert sorted(e["quantity"] for e in events) == [1, 14]
    restamped = next(e for e in events if e["quantity"] == 1)
    assert restamped["metadata"]["client_timestamp"].startswith("2554-")
