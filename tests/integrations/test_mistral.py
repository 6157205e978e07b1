"""Mistral integration: recorded traffic through the real `mistralai` client (3.x, `mistralai.client`).

Exact buckets per call and costs computed by hand from Mistral's list prices: mistral-tiny $0.25 / 1M in
and out (no cache rate in the list: cached tokens are billed as input), mistral-embed $0.10 / 1M.
"""

from __future__ import annotations

import gc
import importlib
from decimal import Decimal
from typing import Any, Callable, Dict, List, Tuple

import pytest
from bearlumen.integrations.mistral import TARGETS
from mistralai.client import Mistral
from mistralai.client.utils.eventstreaming import EventStream

import bearlumen
from bearlumen.metering.event import build_event
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall
from tests.support.cassettes import replay
from tests.support.sinks import ListSink

MESSAGES: Any = [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]
ORIGINALS: Dict[Tuple[str, str, str], Any] = {
    (module, owner, method): vars(getattr(importlib.import_module(module), owner))[method]
    for module, owner, method, _how in TARGETS
}


@pytest.fixture
def calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("mistral")
    return sink.calls


def client() -> Mistral:
    return Mistral(api_key="test")


def buckets(call: LLMCall) -> Tuple[int, int, int]:
    assert call.usage is not None
    return call.usage.input_tokens, call.usage.cache_read_tokens, call.usage.output_tokens


def cost(call: LLMCall) -> Decimal:
    return Decimal(build_event(call, PriceBook(), "key")["metadata"]["provider_cost_usd"])


def test_chat_complete_cached_and_embeddings(calls: List[LLMCall]) -> None:
    mistral = client()
    with bearlumen.agent("joker"), replay("openllmetry/mistral/test_mistralai_chat_legacy.yaml"):
        response = mistral.chat.complete(model="mistral-tiny", messages=MESSAGES)
    with replay("openllmetry/mistral/test_mistralai_chat_with_cache_tokens.yaml"):
        mistral.chat.complete(model="mistral-tiny", messages=MESSAGES)
    with replay("openllmetry/mistral/test_mistral_embeddings_legacy.yaml"):
        mistral.embeddings.create(model="mistral-embed", inputs=["Tell me a joke"])

    chat, cached, embedded = calls
    assert (chat.integration, chat.provider, chat.operation) == ("mistral", "mistral", "chat.completions")
    assert (chat.model, chat.response_id) == ("mistral-tiny", response.id)
    assert chat.attribution.agent_id == "joker"
    assert buckets(chat) == (11, 0, 96)
    assert cost(chat) == Decimal("0.00002675")  # 107 x 0.25 /1M
    assert buckets(cached) == (10, 10, 18)  # 20 prompt of which 10 cached
    assert cost(cached) == Decimal("0.0000095")  # 38 x 0.25 /1M
    assert (embedded.operation, buckets(embedded)) == ("embeddings", (10, 0, 0))
    assert cost(embedded) == Decimal("0.000001")  # 10 x 0.10 /1M


async def test_async_chat(calls: List[LLMCall]) -> None:
    with replay("openllmetry/mistral/test_mistralai_async_chat_legacy.yaml"):
        await client().chat.complete_async(model="mistral-tiny", messages=MESSAGES)

    [call] = calls
    assert buckets(call) == (11, 0, 99)


def test_stream_is_the_same_event_stream_and_records_at_its_end(calls: List[LLMCall]) -> None:
    mistral = client()
    with replay("openllmetry/mistral/test_mistralai_streaming_chat_legacy.yaml"):
        stream = mistral.chat.stream(model="mistral-tiny", messages=MESSAGES)
        assert type(stream) is EventStream
        assert calls == []
        with stream:
            events = list(stream)

    assert len(events) == 81
    [call] = calls  # exhausted, then closed by `with`: once
    assert (call.streamed, call.usage_source, buckets(call)) == (True, "stream", (11, 0, 80))
    assert call.response_id == events[0].data.id


def test_stream_closed_early_records_once(calls: List[LLMCall]) -> None:
    with replay("openllmetry/mistral/test_mistralai_streaming_chat_legacy.yaml"):
        stream = client().chat.stream(model="mistral-tiny", messages=MESSAGES)
        next(iter(stream))
        stream.close()
        stream.close()
        del stream
        gc.collect()

    [call] = calls
    assert call.usage_source == "unavailable"  # usage comes with the last chunk
    assert call.model == "mistral-tiny"


def test_stream_dropped_unread_records_once(calls: List[LLMCall]) -> None:
    with replay("openllmetry/mistral/test_mistralai_streaming_chat_legacy.yaml"):
        stream = client().chat.stream(model="mistral-tiny", messages=MESSAGES)
        del stream
        gc.collect()

    [call] = calls  # the request was answered (billed) before a single event was read
    assert (call.usage_source, call.model) == ("unavailable", "mistral-tiny")


def test_failed_call_records_nothing(calls: List[LLMCall]) -> None:
    # Not a recording: nothing listens on port 9, so the request fails for real.
    mistral = Mistral(api_key="test", server_url="http://127.0.0.1:9")
    with pytest.raises(Exception) as raised:
        mistral.chat.complete(model="mistral-tiny", messages=MESSAGES)
    assert "bearlumen" not in type(raised.value).__module__
    assert calls == []


def test_uninstall_restores_the_very_methods(integration: Callable[[str], Any]) -> None:
    module = integration("mistral")

    def current() -> Dict[Tuple[str, str, str], Any]:
        return {key: vars(getattr(importlib.import_module(key[0]), key[1]))[key[2]] for key in ORIGINALS}

    assert all(current()[key] is not ORIGINALS[key] for key in ORIGINALS)
    module.uninstall()
    module.uninstall()
    assert current() == ORIGINALS


def test_instrumented_mistral_lands_in_the_service(deployment: Tuple[str, str]) -> None:
    base_url, key = deployment
    bearlumen.instrument(api_key=key, base_url=base_url, integrations=["mistral"], spool=False)
    reader = bearlumen.Client(api_key=key, base_url=base_url)
    try:
        mistral = client()
        with bearlumen.workflow("jokes"), replay("openllmetry/mistral/test_mistralai_chat_legacy.yaml"):
            response = mistral.chat.complete(model="mistral-tiny", messages=MESSAGES)
        bearlumen.track(response)  # tracked by hand as well: recorded once
        with replay("openllmetry/mistral/test_mistralai_streaming_chat_legacy.yaml"):
            for _event in mistral.chat.stream(model="mistral-tiny", messages=MESSAGES):
                pass
        assert bearlumen.flush(timeout=60) is True
        events: List[Dict[str, Any]] = reader.usage.query(limit=100)["events"]  # type: ignore[assignment]
    finally:
        bearlumen.uninstrument()
        reader.close()

    by_quantity = {event["quantity"]: event for event in events}
    assert sorted(by_quantity) == [91, 107]
    assert Decimal(by_quantity[107]["providerCostUsd"]) == Decimal("0.00002675")  # 107 x 0.25 /1M
    assert by_quantity[107]["workflowId"] == "jokes"
    assert Decimal(by_quantity[91]["providerCostUsd"]) == Decimal("0.00002275")  # 91 x 0.25 /1M
    assert by_quantity[91]["metadata"]["streamed"] is True
