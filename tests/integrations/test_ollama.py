"""Ollama integration: recorded traffic through the real `ollama` client (sync, async, module functions).

Ollama serves on 127.0.0.1, which the shared replay lets through (for the local Bear Lumen service), so
these replays intercept localhost; the end-to-end test therefore uses the embedded service (in-process).
Local models have no list price: tokens exact, cost unpriced unless the user prices the model.
"""

from __future__ import annotations

import gc
import importlib
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, List, cast

import ollama
import pytest

import bearlumen
from bearlumen.metering.event import build_event
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall
from tests.support.cassettes import replay
from tests.support.sinks import ListSink

_client = importlib.import_module("ollama._client")  # `ollama._client` is also a default Client instance
MESSAGES: Any = [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]
ORIGINALS = {name: vars(getattr(_client, name))["_request"] for name in ("Client", "AsyncClient")}


def local(path: str) -> Any:
    return replay(f"openllmetry/ollama/{path}", ignore_localhost=False)


@pytest.fixture
def calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("ollama")
    return sink.calls


def figures(call: LLMCall) -> tuple[str, str, int, int]:
    assert call.usage is not None
    return call.operation, str(call.model), call.usage.input_tokens, call.usage.output_tokens


def test_chat_generate_and_the_module_functions(calls: List[LLMCall]) -> None:
    client = ollama.Client()
    with bearlumen.agent("joker"), local("test_ollama_chat_legacy.yaml"):
        response = client.chat(model="llama3", messages=MESSAGES)
    with local("test_ollama_generation_legacy.yaml"):
        ollama.generate(model="llama3", prompt="Tell me a joke")  # a bound method of a default client
    with local("test_ollama_chat_tool_calls_legacy.yaml"):
        ollama.chat(model="llama3.1", messages=MESSAGES)

    assert response.eval_count == 66
    chat, generated, tools = calls
    assert (chat.integration, chat.provider, chat.model_requested) == ("ollama", "ollama", "llama3")
    assert figures(chat) == ("chat", "llama3", 17, 66)
    assert chat.attribution.agent_id == "joker"
    assert chat.response_id is None and chat.streamed is False
    assert figures(generated) == ("generate", "llama3", 17, 63)
    assert figures(tools) == ("chat", "llama3.1", 44, 113)
    event = build_event(chat, PriceBook(), "key")
    assert event["metadata"]["pricing_status"] == "unpriced" and "provider_cost_usd" not in event["metadata"]
    priced = build_event(chat, PriceBook(models={"llama3": {"input": "0.10", "output": "0.20"}}), "key")
    assert Decimal(priced["metadata"]["provider_cost_usd"]) == Decimal("0.0000149")  # 17x0.10 + 66x0.20 /1M


def test_stream_exhausted_broken_off_and_never_started(calls: List[LLMCall]) -> None:
    client = ollama.Client()
    with local("test_ollama_streaming_chat_legacy.yaml"):
        parts = list(client.chat(model="llama3", messages=MESSAGES, stream=True))
    with local("test_ollama_streaming_chat_legacy.yaml"):
        for _part in client.chat(model="llama3", messages=MESSAGES, stream=True):
            break
        gc.collect()
    with local("test_ollama_streaming_chat_legacy.yaml") as cassette:
        unstarted = client.chat(model="llama3", messages=MESSAGES, stream=True)
        del unstarted
        gc.collect()
        assert cassette.play_count == 0

    assert parts[-1].done is True
    whole, broken = calls
    assert (whole.streamed, whole.usage_source, figures(whole)) == (
        True,
        "stream",
        ("chat", "llama3", 17, 50),
    )
    assert (broken.usage_source, broken.usage) == ("unavailable", None)  # the counts come with `done`


async def test_async_chat_and_streamed_generation(calls: List[LLMCall]) -> None:
    client = ollama.AsyncClient()
    with local("test_ollama_async_chat_legacy.yaml"):
        await client.chat(model="llama3", messages=MESSAGES)
    with local("test_ollama_async_streaming_generation_legacy.yaml"):
        async for _part in await client.generate(model="llama3", prompt="Tell me a joke", stream=True):
            pass

    chat, generated = calls
    assert figures(chat) == ("chat", "llama3", 0, 79)  # the prompt was in the KV cache: not evaluated
    assert (generated.streamed, figures(generated)) == (True, ("generate", "llama3", 0, 58))


def test_failed_call_records_nothing(calls: List[LLMCall]) -> None:
    # Not a recording: nothing listens on port 9, so the request fails for real.
    with pytest.raises(ConnectionError):
        ollama.Client(host="http://127.0.0.1:9").chat(model="llama3", messages=MESSAGES)
    assert calls == []


def test_model_management_is_not_metered(calls: List[LLMCall]) -> None:
    with pytest.raises(ConnectionError):
        ollama.Client(host="http://127.0.0.1:9").list()
    assert calls == []


def test_uninstall_restores_the_very_methods(integration: Callable[[str], Any]) -> None:
    module = integration("ollama")
    assert all(vars(getattr(_client, name))["_request"] is not ORIGINALS[name] for name in ORIGINALS)
    module.uninstall()
    module.uninstall()
    assert all(vars(getattr(_client, name))["_request"] is ORIGINALS[name] for name in ORIGINALS)


def test_instrumented_ollama_lands_in_the_embedded_service_priced_by_the_user(tmp_path: Path) -> None:
    from bearlumen.server.keys import create_api_key

    url = f"sqlite:///{tmp_path / 'usage.db'}"
    key = create_api_key(url, "t_ollama")
    pricing = {"models": {"llama3": {"input": "0.10", "output": "0.20"}}}
    bearlumen.instrument(api_key=key, base_url=url, integrations=["ollama"], pricing=pricing, spool=False)
    reader = bearlumen.Client(api_key=key, base_url=url)
    try:
        with bearlumen.workflow("local"), local("test_ollama_chat_legacy.yaml"):
            ollama.Client().chat(model="llama3", messages=MESSAGES)
        with local("test_ollama_chat_tool_calls_legacy.yaml"):
            ollama.Client().chat(model="llama3.1", messages=MESSAGES)
        assert bearlumen.flush(timeout=60) is True
        events = cast(List[Dict[str, Any]], reader.usage.query(limit=100)["events"])
    finally:
        bearlumen.uninstrument()
        reader.close()

    by_model = {event["metadata"]["model"]: event for event in events}
    assert len(events) == 2
    priced, unpriced = by_model["llama3"], by_model["llama3.1"]
    assert (priced["quantity"], Decimal(priced["providerCostUsd"])) == (83, Decimal("0.0000149"))
    assert priced["workflowId"] == "local"
    assert (unpriced["quantity"], unpriced["providerCostUsd"]) == (157, None)
