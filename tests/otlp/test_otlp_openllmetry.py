"""OpenLLMetry's openai instrumentation (Traceloop's `opentelemetry-instrumentation-openai`) replaying
recorded openai traffic with a prompt-cache hit, exported by the real OTLP exporter to a real
`bearlumen serve`.

Its spans count cached tokens inside `gen_ai.usage.input_tokens` and report them in
`gen_ai.usage.cache_read.input_tokens`; the service bills them as the SDK does. gpt-4o-mini: 0.15 input,
0.075 cache read, 0.60 output (USD per million tokens).
"""

from __future__ import annotations

from decimal import Decimal

from opentelemetry.instrumentation.openai import OpenAIInstrumentor

from tests.otlp.helpers import chat_calls, otel, read, with_sdk_and_otel
from tests.support.service import ServiceHandle

CACHED = (
    "openinference/openai/test_cached_tokens.yaml"  # 1370 in / 22 out; then 1370 in (1280 cached) / 155 out
)


def two_calls() -> None:
    chat_calls(CACHED, 2)


def test_cache_reads_are_billed_at_their_rate(
    sqlite_service: ServiceHandle, tenant: str, openllmetry: OpenAIInstrumentor
) -> None:
    with otel(sqlite_service, tenant) as provider:
        openllmetry.instrument(tracer_provider=provider)
        two_calls()
    cold, warm = read(sqlite_service, tenant)
    assert (cold["metadata"]["input_tokens"], cold["metadata"]["cache_read_tokens"]) == (1370, 0)
    assert Decimal(cold["providerCostUsd"]) == Decimal("0.0002187")  # 1370x0.15 + 22x0.60
    warm_buckets = (warm["metadata"]["input_tokens"], warm["metadata"]["cache_read_tokens"])
    assert warm_buckets == (90, 1280) and warm["metadata"]["output_tokens"] == 155
    assert Decimal(warm["providerCostUsd"]) == Decimal("0.0002025")  # 90x0.15 + 1280x0.075 + 155x0.60
    assert warm["metadata"]["otel_scope"] == "opentelemetry.instrumentation.openai.v1"


def test_with_the_sdk_on_too_each_call_is_billed_once_at_the_same_cost(
    sqlite_service: ServiceHandle, tenant: str, openllmetry: OpenAIInstrumentor
) -> None:
    events = with_sdk_and_otel(sqlite_service, tenant, openllmetry, two_calls)
    assert sorted(Decimal(e["providerCostUsd"]) for e in events) == [
        Decimal("0.0002025"),
        Decimal("0.0002187"),
    ]
