"""LiteLLM integration: recorded traffic through the real litellm library (and the openai client under it).

LiteLLM fetches its model cost map from the network at import unless `LITELLM_LOCAL_MODEL_COST_MAP` is set.
Costs computed by hand from the list prices (USD / 1M tokens): Claude 3.5 Haiku 0.80 in / 4.00 out / 1.00
cache write / 0.08 cache read, text-embedding-3-small 0.02, gpt-4o-mini 0.15 / 0.60.
"""

from __future__ import annotations

import asyncio
import gc
import os
from decimal import Decimal
from typing import Any, Callable, Dict, List, Tuple

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper

import bearlumen
from bearlumen.metering.record import LLMCall
from tests.support.cassettes import replay
from tests.support.figures import buckets, cost
from tests.support.metered import metered
from tests.support.sinks import ListSink

MESSAGES: Any = [{"role": "user", "content": "Hello"}]
ORIGINAL = litellm.completion


@pytest.fixture
def calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("litellm")
    integration("openai")
    integration("anthropic")
    return sink.calls


def test_completion_over_litellms_own_http_is_recorded_once(calls: List[LLMCall]) -> None:
    with bearlumen.agent("support"), replay("openinference/litellm/TestTokenCounts.test_anthropic.yaml"):
        response = litellm.completion(
            model="anthropic/claude-3-5-haiku-20241022", messages=MESSAGES, api_key="test", max_retries=0
        )

    [call] = calls
    assert (call.integration, call.provider, call.operation) == ("litellm", "anthropic", "chat.completions")
    assert (call.model_requested, call.model) == ("anthropic/claude-3-5-haiku-20241022", response.model)
    assert call.response_id == response.id
    assert call.attribution.agent_id == "support"
    # LiteLLM's prompt_tokens 107 = 100 input + 5 cache write + 2 cache read
    assert buckets(call) == (100, 2, 5, 21)
    assert cost(call) == Decimal("0.00016916")  # 100x0.8 + 2x0.08 + 5x1.0 + 21x4 /1M


def test_embedding_through_the_openai_client_is_recorded_once(calls: List[LLMCall]) -> None:
    with replay("openinference/litellm/test_batch_embedding_with_different_model.yaml"):
        response = litellm.embedding(
            model="openai/text-embedding-3-small", input=["a", "b"], api_key="test", max_retries=0
        )

    [call] = calls
    assert (call.integration, call.provider) == ("litellm", "openai")
    assert (call.operation, call.model) == ("embeddings", response.model)
    assert buckets(call) == (4, 0, 0, 0)
    assert cost(call) == Decimal("0.00000008")  # 4x0.02 /1M


def test_async_stream_through_the_openai_client_is_recorded_once_at_its_end(calls: List[LLMCall]) -> None:
    async def main() -> List[Any]:
        stream = await litellm.acompletion(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            api_key="test",
            stream=True,
            stream_options={"include_usage": True},
            max_retries=0,
        )
        assert isinstance(stream, CustomStreamWrapper)
        assert calls == []
        return [chunk async for chunk in stream]

    with bearlumen.agent("writer"), replay("crewai/litellm/test_litellm_async_streaming.yaml"):
        chunks = asyncio.run(main())

    assert chunks[-1].usage.prompt_tokens == 10  # the caller's stream is unchanged
    # litellm 1.110 posts through the openai client's `post`, not `chat.completions.create`: one event,
    # from LiteLLM's stream (see test_inner_openai_client_call_is_taken_once_with_its_exact_buckets)
    [call] = calls
    assert (call.integration, call.provider) == ("litellm", "openai")
    assert (call.streamed, call.usage_source) == (True, "stream")
    assert call.attribution.agent_id == "writer"
    assert call.model == chunks[-1].model == "gpt-4o-mini"
    assert buckets(call) == (10, 0, 0, 4)
    assert cost(call) == Decimal("0.0000039")  # 10x0.15 + 4x0.6 /1M


STREAM_THINKING = "openinference/litellm/test_completion_streaming_with_extended_thinking_anthropic.yaml"


def _thinking_stream() -> Any:
    return litellm.completion(
        model="anthropic/claude-sonnet-4-5",
        messages=MESSAGES,
        api_key="test",
        stream=True,
        thinking={"type": "enabled", "budget_tokens": 1024},
        max_retries=0,
    )


def test_stream_without_include_usage_reads_the_usage_litellm_keeps(calls: List[LLMCall]) -> None:
    with replay(STREAM_THINKING):
        chunks = list(_thinking_stream())

    assert getattr(chunks[-1], "usage", None) is None  # not shown to the caller
    [call] = calls
    assert (call.provider, call.usage_source, call.streamed) == ("anthropic", "stream", True)
    assert call.usage is not None and call.usage.input_tokens == 50
    assert call.usage.output_tokens > 0
    assert cost(call) == (Decimal(50) * 3 + Decimal(call.usage.output_tokens) * 15) / 1_000_000


def test_stream_closed_early_records_once(calls: List[LLMCall]) -> None:
    # (A stream dropped mid-way is recorded when LiteLLM lets it go: its logging object keeps a reference
    # to it, so it is not collected when the caller drops it.)
    with replay(STREAM_THINKING):
        stream = _thinking_stream()
        first = next(stream)
        stream.close()
        stream.close()
        gc.collect()
    [closed] = calls
    assert (closed.usage_source, closed.usage) == ("unavailable", None)  # no usage before the end
    assert closed.response_id == first.id


def test_failed_call_raises_unchanged_and_records_nothing(calls: List[LLMCall]) -> None:
    # Not a recording: nothing listens on port 9, so the request fails for real.
    with pytest.raises(Exception) as raised:
        litellm.completion(
            model="openai/gpt-4o-mini",
            messages=MESSAGES,
            api_key="test",
            api_base="http://127.0.0.1:9/v1",
            max_retries=0,
            num_retries=0,
        )
    assert "bearlumen" not in type(raised.value).__module__
    assert calls == []


def test_uninstall_restores_the_very_functions(integration: Callable[[str], Any]) -> None:
    next_before = vars(CustomStreamWrapper)["__next__"]
    module = integration("litellm")
    assert litellm.completion is not ORIGINAL
    module.uninstall()
    module.uninstall()
    assert litellm.completion is ORIGINAL
    assert vars(CustomStreamWrapper)["__next__"] is next_before


class _OpenAIHandler(litellm.CustomLLM):
    """A LiteLLM custom provider that calls the openai client's `chat.completions.create` underneath (as
    LiteLLM's own OpenAI handler did before it began posting through the client's `post`)."""

    def completion(self, *args: Any, **kwargs: Any) -> Any:
        import openai

        client = openai.OpenAI(api_key="test", max_retries=0)
        reply = client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)
        return litellm.ModelResponse(**reply.model_dump())


@pytest.fixture
def openai_handler() -> Any:
    previous = list(litellm.custom_provider_map)
    litellm.custom_provider_map = [{"provider": "via-openai", "custom_handler": _OpenAIHandler()}]
    litellm.utils.custom_llm_setup()
    try:
        yield
    finally:
        litellm.custom_provider_map = previous


def test_inner_openai_client_call_is_taken_once_with_its_exact_buckets(
    calls: List[LLMCall], openai_handler: Any
) -> None:
    with bearlumen.agent("router"), replay("openllmetry/openai/test_chat.yaml"):
        response = litellm.completion(model="via-openai/anything", messages=MESSAGES)

    [call] = calls  # the openai integration's record was taken by LiteLLM's call, not delivered
    assert (call.integration, call.extra["client"], call.provider) == ("litellm", "openai", "openai")
    assert call.attribution.agent_id == "router"
    assert call.usage is not None and call.usage.output_tokens == response.usage.completion_tokens
    assert buckets(call) == (15, 0, 0, 19)
    assert cost(call) == Decimal("0.000036")  # gpt-3.5-turbo-0125: 15x0.5 + 19x1.5 /1M


def test_instrumented_litellm_lands_in_the_service(deployment: Tuple[str, str]) -> None:
    with metered(deployment, "litellm") as reader:
        with bearlumen.agent("support"), replay("openinference/litellm/TestTokenCounts.test_anthropic.yaml"):
            response = litellm.completion(
                model="anthropic/claude-3-5-haiku-20241022", messages=MESSAGES, api_key="test", max_retries=0
            )
        assert bearlumen.flush(timeout=60) is True
        events: List[Dict[str, Any]] = reader.usage.query(limit=100)["events"]  # type: ignore[assignment]

    [event] = events
    assert event["quantity"] == 128
    assert Decimal(event["providerCostUsd"]) == Decimal("0.00016916")
    assert (event["agentId"], event["metadata"]["response_id"]) == ("support", response.id)
