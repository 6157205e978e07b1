"""End to end: `bearlumen.instrument()` -> recorded openai traffic -> delivery -> the real service.

Each test uses a fresh tenant (its own API key): the idempotency key of an LLM event derives from the
provider's response id, so replaying the same cassette into one tenant twice records it once (which
`test_same_response_reported_twice_is_recorded_once` relies on).

Three deployments of the service: over HTTP on SQLite and on PostgreSQL (`sqlite_service` /
`postgres_service` of tests/conftest.py: `.base_url`, `.create_key(tenant)`), and embedded (a database URL
as `base_url`, the service in-process).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Dict, Iterator, List, cast

import openai
import pytest

import bearlumen
from tests.support.cassettes import replay
from tests.support.metered import metered

MESSAGES: Any = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]


@pytest.fixture
def instrumented(deployment: tuple[str, str]) -> Iterator[bearlumen.Client]:
    with metered(deployment, "openai") as reader:
        yield reader


def events_of(reader: bearlumen.Client) -> List[Dict[str, Any]]:
    assert bearlumen.flush(timeout=60) is True
    listing = reader.usage.query(limit=1000)
    events = cast(List[Dict[str, Any]], listing["events"])
    return sorted(events, key=lambda e: e["metadata"].get("response_id") or "")


def test_instrumented_calls_land_in_the_service(instrumented: bearlumen.Client) -> None:
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    with bearlumen.workflow("jokes"):
        with bearlumen.agent("writer"), replay("openllmetry/openai/test_openai_prompt_caching.yaml"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with (
            bearlumen.agent("critic"),
            replay("otel-python-contrib/openai/test_chat_completion_streaming.yaml"),
        ):
            for _chunk in client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True):
                pass
    with replay("otel-python-contrib/openai/test_chat_completion_streaming_not_complete.yaml"):
        list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))
    with (
        replay("otel-python-contrib/openai/test_chat_completion_404.yaml"),
        pytest.raises(openai.NotFoundError),
    ):
        client.chat.completions.create(model="this-model-does-not-exist", messages=MESSAGES)

    events = events_of(instrumented)

    assert len(events) == 4
    by_id = {e["metadata"]["response_id"]: e for e in events}
    cached = by_id[
        "chatcmpl-BNi420iFNtIOHzy8Gq2fVS5utTus7"
    ]  # INDEX.tsv #2: 1149 prompt, 1024 cached, 353 out
    assert cached["eventType"] == "token_usage" and cached["metricName"] == "llm_tokens"
    assert cached["quantity"] == 1502
    assert Decimal(cached["providerCostUsd"]) == Decimal("0.00030735")  # 125x0.15 + 1024x0.075 + 353x0.60 /1M
    assert (cached["workflowId"], cached["agentId"]) == ("jokes", "writer")
    metadata = cached["metadata"]
    assert (metadata["provider"], metadata["model"], metadata["model_requested"]) == (
        "openai",
        "gpt-4o-mini-2024-07-18",
        "gpt-4o-mini",
    )
    assert (metadata["input_tokens"], metadata["cache_read_tokens"], metadata["output_tokens"]) == (
        125,
        1024,
        353,
    )
    assert metadata["operation"] == "chat.completions" and metadata["streamed"] is False

    first = by_id["chatcmpl-BNi3xzj4EEAzo6vce1IwHwie9IRhH"]  # #1: 1149 prompt, 315 out
    assert first["quantity"] == 1464
    assert Decimal(first["providerCostUsd"]) == Decimal("0.00036135")  # 1149x0.15 + 315x0.60 /1M

    streamed = by_id["chatcmpl-ASYMZ4oSykiIFK4lXLReDiKyAjsQl"]  # gpt-4-0613, 12 / 5, usage added by us
    assert streamed["quantity"] == 17
    assert Decimal(streamed["providerCostUsd"]) == Decimal("0.00066")  # 12x30 + 5x60 /1M
    assert (streamed["workflowId"], streamed["agentId"]) == ("jokes", "critic")
    assert streamed["metadata"]["streamed"] is True and streamed["metadata"]["usage_source"] == "stream"

    unknown = by_id["chatcmpl-ASYMZbRqo8Bkz53FVzaTj7W7feOn4"]  # the server reported no usage
    assert unknown["quantity"] == 0
    assert unknown["providerCostUsd"] is None
    assert unknown["metadata"]["usage_source"] == "unavailable"
    assert unknown["metadata"]["pricing_status"] == "unpriced"
    assert unknown.get("agentId") is None and unknown.get("workflowId") is None


def test_same_response_reported_twice_is_recorded_once(instrumented: bearlumen.Client) -> None:
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    for _ in range(2):
        with replay("otel-python-contrib/openai/test_chat_completion_with_content.yaml"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    events = events_of(instrumented)

    assert len(events) == 1
    assert events[0]["quantity"] == 17
    assert Decimal(events[0]["providerCostUsd"]) == Decimal("0.0000048")  # 12x0.15 + 5x0.60 /1M
