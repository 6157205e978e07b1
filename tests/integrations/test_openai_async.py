"""openai integration, `AsyncOpenAI`: recorded traffic through the real async client.

The async wrappers are separate code (async def wrappers, async stream observers): every path is
checked again here, with exact figures from tests/cassettes/INDEX.tsv.
"""

from __future__ import annotations

import asyncio
import gc
import json
from decimal import Decimal
from typing import Any, Callable, List

import openai
import pydantic
import pytest

import bearlumen
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import (
    USAGE_FROM_RESPONSE,
    USAGE_FROM_STREAM,
    USAGE_PARTIAL_STREAM,
    USAGE_UNAVAILABLE,
    LLMCall,
    TokenUsage,
)
from tests.support.cassettes import replay
from tests.support.clienthttp import openai_httpx
from tests.support.sinks import ListSink

PRICES = PriceBook()
MESSAGES: Any = [{"role": "user", "content": "Say this is a test"}]
STREAM: Any = {"messages": MESSAGES, "stream": True}
CHAT_WITH_USAGE = "otel-python-contrib/openai/test_async_chat_completion_streaming.yaml"  # 12 / 5


def make_client(**options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key="sk-test", max_retries=0, **options)


def dumps(items: List[Any]) -> List[Any]:
    return [item.model_dump() for item in items]


@pytest.fixture
def calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("openai")
    return sink.calls


async def test_async_chat_create(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("otel-python-contrib/openai/test_async_chat_completion_with_content.yaml"):
        result = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert len(calls) == 1
    call = calls[0]
    assert call.usage == TokenUsage(input_tokens=12, output_tokens=12)
    assert (call.operation, call.model, call.response_id) == ("chat.completions", result.model, result.id)
    assert call.usage_source == USAGE_FROM_RESPONSE
    # gpt-4o-mini: $0.15 input, $0.60 output per 1M.
    assert PRICES.price(call.provider, call.model, call.usage, call.timestamp).cost_usd == Decimal(
        "0.0000090"
    )


async def test_async_prompt_caching(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openinference/openai/test_cached_tokens.yaml"):
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert [c.usage for c in calls] == [
        TokenUsage(input_tokens=1370, output_tokens=22),
        TokenUsage(input_tokens=90, cache_read_tokens=1280, output_tokens=155),
    ]
    second = calls[1]
    # 90 x $0.15 + 1280 x $0.075 + 155 x $0.60 per 1M = 0.0002025
    assert PRICES.price(second.provider, second.model, second.usage, second.timestamp).cost_usd == Decimal(
        "0.0002025"
    )


class StructuredAnswer(pydantic.BaseModel):
    rating: int
    joke: str


async def test_async_parse(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_parsed_completion.yaml"):
        parsed = await client.chat.completions.parse(
            model="gpt-4o", messages=MESSAGES, response_format=StructuredAnswer
        )

    assert parsed.choices[0].message.parsed is not None
    assert [c.usage for c in calls] == [TokenUsage(input_tokens=68, output_tokens=41)]


async def test_async_stream_explicit_usage(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay(CHAT_WITH_USAGE):
        stream = await client.chat.completions.create(
            model="gpt-4", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        assert isinstance(stream, openai.AsyncStream)
        chunks = [chunk async for chunk in stream]

    assert chunks[-1].usage is not None
    assert len(calls) == 1
    assert calls[0].usage == TokenUsage(input_tokens=12, output_tokens=5)
    assert (calls[0].usage_source, calls[0].streamed) == (USAGE_FROM_STREAM, True)


async def test_async_stream_added_usage_is_hidden(integration: Callable[[str], Any], sink: ListSink) -> None:
    client = make_client()
    with replay(CHAT_WITH_USAGE):
        plain = [
            c
            async for c in await client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        ]
    integration("openai")
    with replay(CHAT_WITH_USAGE):
        metered = [
            c
            async for c in await client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        ]

    assert dumps(metered) == dumps(plain[:-1])  # the recording has the usage chunk; the API would not send it
    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=12, output_tokens=5)]


async def test_async_streams_without_usage(integration: Callable[[str], Any], sink: ListSink) -> None:
    client = make_client()
    cassette = "openllmetry/openai/test_chat_async_streaming.yaml"
    with replay(cassette):
        plain = [[c async for c in await client.chat.completions.create(model="gpt-3.5-turbo", **STREAM)]]
    integration("openai")
    with replay(cassette):
        metered = []
        for _ in range(3):
            metered.append(
                [c async for c in await client.chat.completions.create(model="gpt-3.5-turbo", **STREAM)]
            )

    assert dumps(metered[0]) == dumps(plain[0])
    assert [(c.usage, c.usage_source, c.model) for c in sink.calls] == [
        (None, USAGE_UNAVAILABLE, "gpt-3.5-turbo-0125")
    ] * 3


async def test_async_async_with_and_early_exit(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay(CHAT_WITH_USAGE):
        async with await client.chat.completions.create(
            model="gpt-4", messages=MESSAGES, stream=True
        ) as stream:
            async for _chunk in stream:
                break

    assert [(c.usage, c.usage_source) for c in calls] == [(None, USAGE_PARTIAL_STREAM)]


async def test_async_aclose_records_partial_once(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay(CHAT_WITH_USAGE):
        stream = await client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        await stream.__anext__()
        if hasattr(stream, "aclose"):  # openai 2.x streams have close() only
            await stream.aclose()
        await stream.close()
        del stream
        gc.collect()

    assert [c.usage_source for c in calls] == [USAGE_PARTIAL_STREAM]


async def test_async_stream_helper(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay(CHAT_WITH_USAGE):
        async with client.chat.completions.stream(
            model="gpt-4", messages=MESSAGES, stream_options={"include_usage": True}
        ) as stream:
            final = await stream.get_final_completion()

    assert final.usage is not None
    assert [c.usage for c in calls] == [TokenUsage(input_tokens=12, output_tokens=5)]


async def test_async_responses_stream_and_helper(calls: List[LLMCall]) -> None:
    client = make_client()
    prompt = "Tell me a three sentence bedtime story about a unicorn."
    with replay("openllmetry/openai/test_responses_streaming_async.yaml"):
        events = [
            e async for e in await client.responses.create(model="gpt-4.1-nano", input=prompt, stream=True)
        ]
        async with client.responses.stream(model="gpt-4.1-nano", input=prompt) as stream:
            final = await stream.get_final_response()

    assert events[-1].type == "response.completed"
    assert final.usage is not None
    assert [c.usage for c in calls] == [
        TokenUsage(input_tokens=18, output_tokens=77),
        TokenUsage(input_tokens=18, output_tokens=75),
    ]
    assert all(c.streamed and c.operation == "responses" for c in calls)


async def test_async_responses_create(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("otel-python-contrib/openai/test_responses_create_basic[content_mode0].yaml"):
        response = await client.responses.create(model="gpt-4o-mini", input="Say this is a test")

    assert [c.usage for c in calls] == [TokenUsage(input_tokens=22, output_tokens=6)]
    assert calls[0].response_id == response.id


async def test_async_legacy_completions_stream(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_async_completion_streaming.yaml"):
        for _ in range(3):
            async for _chunk in await client.completions.create(
                model="davinci-002", prompt="joke", stream=True
            ):
                pass

    assert [(c.operation, c.usage_source) for c in calls] == [("completions", USAGE_UNAVAILABLE)] * 3


async def test_async_embeddings(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("otel-python-contrib/openai/test_async_embeddings_with_encoding_format.yaml"):
        await client.embeddings.create(
            model="text-embedding-3-small", input="Say this is a test", encoding_format="base64"
        )

    assert [(c.operation, c.usage) for c in calls] == [("embeddings", TokenUsage(input_tokens=9))]


async def test_async_failure_records_nothing(calls: List[LLMCall]) -> None:
    client = make_client()
    with (
        replay("otel-python-contrib/openai/test_chat_completion_404.yaml"),
        pytest.raises(openai.NotFoundError),
    ):
        await client.chat.completions.create(model="this-model-does-not-exist", messages=MESSAGES)

    assert calls == []


async def test_asyncio_tasks_inherit_the_scope(
    calls: List[LLMCall], recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    """The recorded body served to several concurrent tasks, each under its own agent scope."""
    body = recorded("otel-python-contrib/openai/test_async_chat_completion_with_content.yaml")[0].body
    transport = serve(
        answer=lambda request: openai_httpx.Response(
            200, headers={"content-type": "application/json"}, content=body
        )
    )
    client = make_client(http_client=openai_httpx.AsyncClient(transport=transport))

    async def agent_task(name: str) -> None:
        with bearlumen.agent(name):
            await asyncio.sleep(0)
            await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    with bearlumen.workflow("research"):
        await asyncio.gather(*(asyncio.create_task(agent_task(f"agent-{i}")) for i in range(5)))

    assert sorted((c.attribution.workflow_id, c.attribution.agent_id) for c in calls) == [
        ("research", f"agent-{i}") for i in range(5)
    ]
    assert json.loads(transport.requests[0].content)["model"] == "gpt-4o-mini"
