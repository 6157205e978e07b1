"""End to end: `bearlumen.instrument()` -> recorded anthropic traffic -> delivery -> the real service.

Each test uses a fresh tenant (its own API key): the idempotency key of an LLM event derives from the
provider's response id, so replaying the same cassette into one tenant twice records it once.

Three deployments of the service: `bearlumen serve` over HTTP on SQLite and on PostgreSQL (the session
services of tests/conftest.py: `.base_url`, `.create_key(tenant)`), and embedded (a database URL as
`base_url`, the service in-process).
"""

from __future__ import annotations

import asyncio
import gc
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, Iterator, List, Optional, Tuple

import anthropic
import httpx2
import pytest

import bearlumen
from tests.support.cassettes import replay
from tests.support.metered import metered

MESSAGES: List[Any] = [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]


@pytest.fixture
def reader(deployment: Tuple[str, str]) -> Iterator[bearlumen.Client]:
    """`instrument()` on (anthropic only, no spool), and a client to read what the service recorded."""
    with metered(deployment, "anthropic") as client:
        yield client


def recorded_events(reader: bearlumen.Client) -> Dict[Optional[str], Dict[str, Any]]:
    assert bearlumen.flush(timeout=60) is True
    events: List[Dict[str, Any]] = [dict(event) for event in reader.usage.query(limit=1000)["events"]]
    by_response = {event["metadata"].get("response_id"): event for event in events}
    assert len(by_response) == len(events)
    return by_response


def anthropic_client() -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", max_retries=0)


def overloaded(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(529, json={"type": "error", "error": {"type": "overloaded_error", "message": "x"}})


def test_instrumented_anthropic_calls_land_in_the_service(reader: bearlumen.Client) -> None:
    api = anthropic_client()
    with bearlumen.workflow("onboarding"):
        with (
            bearlumen.agent("planner"),
            replay("openllmetry/anthropic/test_anthropic_prompt_caching_legacy.yaml"),
        ):
            api.messages.create(model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES)
            api.messages.create(model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES)
        with (
            bearlumen.agent("writer"),
            replay("openllmetry/anthropic/test_anthropic_message_stream_manager_legacy.yaml"),
            api.messages.stream(
                model="claude-3-5-haiku-20241022", max_tokens=1024, messages=MESSAGES
            ) as stream,
        ):
            "".join(stream.text_stream)

        async def critic() -> None:
            with bearlumen.agent("critic"):
                await anthropic.AsyncAnthropic(api_key="test", max_retries=0).messages.create(
                    model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES
                )

        with replay("openllmetry/anthropic/test_async_anthropic_message_create_legacy.yaml"):
            asyncio.run(critic())
    # Outside any scope: a stream left after its first delta, and a call that fails (records nothing).
    with replay("openllmetry/anthropic/test_anthropic_message_streaming_legacy.yaml"):
        events = api.messages.create(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES, stream=True
        )
        for event in events:
            if event.type == "content_block_delta":
                break
        del events, event
        gc.collect()
    failing = anthropic.Anthropic(
        api_key="test", max_retries=0, http_client=httpx2.Client(transport=httpx2.MockTransport(overloaded))
    )
    with pytest.raises(anthropic.APIStatusError):
        failing.messages.create(model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES)

    by_response = recorded_events(reader)

    assert len(by_response) == 5
    first = by_response["msg_01EF3r8zYyZntM4Sg9a5kc6k"]  # INDEX.tsv #1: input 4, cache write 1163, out 187
    assert (first["eventType"], first["metricName"], first["quantity"]) == ("token_usage", "llm_tokens", 1354)
    assert Decimal(first["providerCostUsd"]) == Decimal("0.00717825")  # 4x3 + 1163x3.75 + 187x15 /1M
    assert (first["workflowId"], first["agentId"]) == ("onboarding", "planner")
    metadata = first["metadata"]
    assert (metadata["provider"], metadata["model"], metadata["model_requested"], metadata["operation"]) == (
        "anthropic",
        "claude-3-5-sonnet-20240620",
        "claude-3-5-sonnet-20240620",
        "messages",
    )
    assert (metadata["input_tokens"], metadata["cache_write_tokens"], metadata["output_tokens"]) == (
        4,
        1163,
        187,
    )
    assert (metadata["streamed"], metadata["usage_source"], metadata["pricing_status"]) == (
        False,
        "response",
        "priced",
    )

    second = by_response["msg_01YGB3PuEANUSkLuzemhtNVF"]  # #2: input 4, cache read 1163, out 202
    assert second["quantity"] == 1369
    assert Decimal(second["providerCostUsd"]) == Decimal("0.0033909")  # 4x3 + 1163x0.30 + 202x15 /1M

    streamed = by_response["msg_01MCkQZZtEKF3nVbFaExwATe"]  # claude-3-5-haiku, 17 in, 108 out
    assert streamed["quantity"] == 125
    assert Decimal(streamed["providerCostUsd"]) == Decimal("0.0004456")  # 17x0.80 + 108x4 /1M
    assert (streamed["workflowId"], streamed["agentId"]) == ("onboarding", "writer")
    assert streamed["metadata"]["streamed"] is True and streamed["metadata"]["usage_source"] == "stream"

    critic_event = by_response["msg_01UFDDjsFn5BPQnfNwmsMnAY"]  # opus, async, 17 in, 189 out
    assert Decimal(critic_event["providerCostUsd"]) == Decimal("0.01443")  # 17x15 + 189x75 /1M
    assert (critic_event["workflowId"], critic_event["agentId"]) == ("onboarding", "critic")

    partial = by_response["msg_01MXWxhWoPSgrYhjTuMDM6F1"]  # left early: message_start's 17 in, 3 out
    assert partial["quantity"] == 20
    assert Decimal(partial["providerCostUsd"]) == Decimal("0.000008")  # 17x0.25 + 3x1.25 /1M
    assert partial["metadata"]["usage_source"] == "stream_partial"
    assert partial.get("agentId") is None and partial.get("workflowId") is None

    today = datetime.now(timezone.utc).date()
    start, end = (today - timedelta(days=1)).isoformat(), (today + timedelta(days=2)).isoformat()
    by_agent = reader.cost_attribution.by_agent(start, end)
    assert {i["attributionValue"]: Decimal(str(i["totalCost"])) for i in by_agent["items"]} == {
        "planner": Decimal("0.01056915"),
        "critic": Decimal("0.01443"),
        "writer": Decimal("0.0004456"),
        None: Decimal("0.000008"),
    }
    by_workflow = reader.cost_attribution.by_workflow(start, end)
    assert {i["attributionValue"]: Decimal(str(i["totalCost"])) for i in by_workflow["items"]} == {
        "onboarding": Decimal("0.02544475"),
        None: Decimal("0.000008"),
    }
    assert Decimal(str(by_workflow["totalCost"])) == Decimal("0.02545275")


def test_the_same_response_reported_twice_is_recorded_once(reader: bearlumen.Client) -> None:
    api = anthropic_client()
    for _ in range(2):
        with replay("openllmetry/anthropic/test_anthropic_message_create_legacy.yaml"):
            api.messages.create(model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES)

    by_response = recorded_events(reader)

    assert list(by_response) == ["msg_01TPXhkPo8jy6yQMrMhjpiAE"]
    assert by_response["msg_01TPXhkPo8jy6yQMrMhjpiAE"]["quantity"] == 237
    assert Decimal(by_response["msg_01TPXhkPo8jy6yQMrMhjpiAE"]["providerCostUsd"]) == Decimal("0.016755")
