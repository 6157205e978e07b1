"""Every LangChain model call recorded exactly once, with exact tokens and cost: real recorded traffic
replayed through the real langchain-core, langchain-openai, langchain-anthropic clients.

Each test runs in two modes (see conftest): the LangChain handler alone, and with the openai/anthropic
patches installed as well (`instrument()`), where every call is seen by both layers. Figures come from
tests/cassettes/INDEX.tsv; costs are computed by hand from the published per-million-token prices.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

import openai
import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAI
from pydantic import BaseModel, Field

from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import (
    USAGE_FROM_RESPONSE,
    USAGE_FROM_STREAM,
    USAGE_UNAVAILABLE,
    LLMCall,
    TokenUsage,
)
from tests.support.cassettes import replay
from tests.support.sinks import ListSink

PRICES = PriceBook()


def cost(call: LLMCall) -> Optional[Decimal]:
    return PRICES.price(
        call.provider, call.model or call.model_requested, call.usage, call.timestamp
    ).cost_usd


def per_million(*pairs: Tuple[int, str]) -> Decimal:
    """Hand-computed cost: sum of tokens x USD per 1M tokens."""
    return sum((Decimal(tokens) * Decimal(price) for tokens, price in pairs), Decimal(0)) / Decimal(1_000_000)


def openai_chat(model: str, **options: Any) -> ChatOpenAI:
    return ChatOpenAI(model=model, api_key="sk-test", max_retries=0, **options)  # type: ignore[arg-type]


def anthropic_chat(model: str, **options: Any) -> ChatAnthropic:
    return ChatAnthropic(model=model, api_key="sk-ant-test", max_retries=0, **options)  # type: ignore[call-arg,arg-type]


def expect(
    call: LLMCall,
    *,
    mode: str,
    provider: str,
    model: str,
    usage: Optional[TokenUsage],
    price: Optional[Decimal],
    streamed: bool = False,
    response_id: Optional[str] = None,
) -> None:
    """One recorded call, whichever layer measured it."""
    assert call.provider == provider
    assert call.model == model
    assert call.usage == usage
    assert cost(call) == price
    assert call.streamed is streamed
    if usage is None:
        assert call.usage_source == USAGE_UNAVAILABLE
    else:
        assert call.usage_source == (USAGE_FROM_STREAM if streamed else USAGE_FROM_RESPONSE)
    if response_id is not None:
        assert call.response_id == response_id
    # the LangChain run's facts are on the event in both modes: the handler built the call, or it took
    # the provider patch's call and laid its attribution over it
    assert call.extra["framework"] == "langchain"
    assert "langchain_run_id" in call.extra
    if mode == "callback":
        assert call.integration == "langchain"
    else:
        assert call.integration == provider  # the provider patch measured it; recorded once


def test_invoke(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    with replay("openllmetry/langchain/test_openai.yaml"):
        openai_chat("gpt-4o-mini").invoke("Tell me a joke about opentelemetry", config=config)

    # INDEX.tsv: prompt=1497 (cached=1408) completion=1037 -> uncached input 89
    (call,) = sink.calls
    expect(
        call,
        mode=mode,
        provider="openai",
        model="gpt-4o-mini-2024-07-18",
        usage=TokenUsage(input_tokens=89, cache_read_tokens=1408, output_tokens=1037),
        # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per 1M tokens
        price=per_million((89, "0.15"), (1408, "0.075"), (1037, "0.60")),
        response_id="chatcmpl-BPVp0tjSGV5NBPc7t1hqssC4kJ1MG",
    )
    assert cost(call) == Decimal("0.00074115")
    assert call.model_requested == "gpt-4o-mini"
    assert call.usage is not None and call.usage.total_tokens == 2534


def test_batch(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    with replay("openllmetry/openai/test_chat.yaml"):
        results = openai_chat("gpt-3.5-turbo").batch(
            ["a", "b", "c", "d"], config={**config, "max_concurrency": 1}
        )

    assert len(results) == 4
    # INDEX.tsv: four calls, prompt=15 and completion 19 / 31 / 22 / 19; gpt-3.5-turbo-0125 $0.50 / $1.50
    assert len(sink.calls) == 4
    for call, completion in zip(sink.calls, (19, 31, 22, 19)):
        expect(
            call,
            mode=mode,
            provider="openai",
            model="gpt-3.5-turbo-0125",
            usage=TokenUsage(input_tokens=15, output_tokens=completion),
            price=per_million((15, "0.5"), (completion, "1.5")),
        )
    assert len({call.response_id for call in sink.calls}) == 4
    assert len({call.extra["langchain_run_id"] for call in sink.calls}) == 4


async def test_abatch(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    with replay("openllmetry/openai/test_chat.yaml"):
        results = await openai_chat("gpt-3.5-turbo").abatch(["a", "b", "c", "d"], config=config)

    assert len(results) == 4
    assert len(sink.calls) == 4
    # concurrent tasks: which response each request got depends on scheduling, the set does not
    assert sorted(call.usage.output_tokens for call in sink.calls if call.usage) == [19, 19, 22, 31]
    for call in sink.calls:
        assert call.usage is not None
        expect(
            call,
            mode=mode,
            provider="openai",
            model="gpt-3.5-turbo-0125",
            usage=TokenUsage(input_tokens=15, output_tokens=call.usage.output_tokens),
            price=per_million((15, "0.5"), (call.usage.output_tokens, "1.5")),
        )


def test_stream(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    with replay("openinference/langchain/test_records_token_counts_for_streaming_openai_llm.yaml"):
        chunks = list(openai_chat("gpt-3.5-turbo").stream("Hi there", config=config))

    assert len(chunks) > 2
    # INDEX.tsv: prompt=18 completion=15, reported by the stream's final usage chunk
    (call,) = sink.calls
    expect(
        call,
        mode=mode,
        provider="openai",
        model="gpt-3.5-turbo-0125",
        usage=TokenUsage(input_tokens=18, output_tokens=15),
        price=per_million((18, "0.5"), (15, "1.5")),
        streamed=True,
    )
    assert cost(call) == Decimal("0.0000315")


def test_stream_without_usage_is_recorded_as_unavailable(
    mode: str, config: Dict[str, Any], sink: ListSink
) -> None:
    with replay("openllmetry/langchain/test_stream.yaml"):
        text = "".join(
            str(chunk.content) for chunk in openai_chat("gpt-4", temperature=0).stream("Hi", config=config)
        )

    assert text
    # INDEX.tsv: the recorded stream has no usage chunk: the call is recorded, with no invented numbers
    (call,) = sink.calls
    expect(call, mode=mode, provider="openai", model="gpt-4-0613", usage=None, price=None, streamed=True)


async def test_ainvoke(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    with replay("openllmetry/langchain/test_async_lcel.yaml"):
        prompt = PromptTemplate.from_template("Tell me a short joke about {topic}")
        chain = prompt | openai_chat("gpt-4", temperature=0) | StrOutputParser()
        joke = await chain.ainvoke({"topic": "chickens"}, config=config)

    assert joke
    # INDEX.tsv: prompt=19 completion=140; gpt-4-0613 $30 / $60
    (call,) = sink.calls
    expect(
        call,
        mode=mode,
        provider="openai",
        model="gpt-4-0613",
        usage=TokenUsage(input_tokens=19, output_tokens=140),
        price=per_million((19, "30"), (140, "60")),
        response_id="chatcmpl-8wqYahnZuVLVbnboy3hDJtXiprzYh",
    )
    assert cost(call) == Decimal("0.00897")


async def test_astream_anthropic(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    with replay("openinference/anthropic/test_anthropic_instrumentation_async_messages_streaming.yaml"):
        chunks = [chunk async for chunk in anthropic_chat("claude-sonnet-4-6").astream("Hi", config=config)]

    assert chunks
    # INDEX.tsv: prompt=21 completion=13 (the stream's message_delta carries the cumulative usage)
    (call,) = sink.calls
    expect(
        call,
        mode=mode,
        provider="anthropic",
        model="claude-sonnet-4-6",
        usage=TokenUsage(input_tokens=21, output_tokens=13),
        price=per_million((21, "3"), (13, "15")),
        streamed=True,
    )


async def test_astream_openai(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    with replay("otel-python-contrib/openai/test_async_chat_completion_streaming.yaml"):
        chunks = [chunk async for chunk in openai_chat("gpt-4").astream("Say this is a test", config=config)]

    assert chunks
    (call,) = sink.calls
    expect(
        call,
        mode=mode,
        provider="openai",
        model="gpt-4-0613",
        usage=TokenUsage(input_tokens=12, output_tokens=5),
        price=per_million((12, "30"), (5, "60")),
        streamed=True,
    )


class Food(BaseModel):
    name: str = Field(description="The name of the food item")
    healthy: bool = Field(description="Whether the food is good for you")
    calories: int = Field(description="Estimated calories per serving")


def test_structured_output(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    with replay("openllmetry/langchain/test_structured_output.yaml"):
        food = openai_chat("gpt-4o-mini").with_structured_output(Food).invoke("An avocado", config=config)

    assert isinstance(food, Food) and food.name == "Avocado"
    # INDEX.tsv: prompt=129 completion=33 (chat.completions.parse underneath)
    (call,) = sink.calls
    expect(
        call,
        mode=mode,
        provider="openai",
        model="gpt-4o-mini-2024-07-18",
        usage=TokenUsage(input_tokens=129, output_tokens=33),
        price=per_million((129, "0.15"), (33, "0.60")),
        response_id="chatcmpl-AsTQKFrdORcibcgnY7oJGPD7UBfJm",
    )


@tool
def food_analysis(food: str) -> str:
    """Analyze the nutritional value of a food."""
    return f"{food} is healthy"


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a given location."""
    return f"It is sunny in {location}"


def test_tool_calls_anthropic(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    model = anthropic_chat("claude-3-5-haiku-latest").bind_tools([food_analysis, get_weather])
    with replay("openllmetry/langchain/test_tool_calls_anthropic_text_block.yaml"):
        message = model.invoke("Analyze an apple and tell me the weather in SF", config=config)

    assert message.tool_calls
    # INDEX.tsv: prompt=374 completion=82, no cache; claude-3-5-haiku $0.80 / $4.00
    (call,) = sink.calls
    assert call.model is not None and call.model.startswith("claude-3-5-haiku")
    expect(
        call,
        mode=mode,
        provider="anthropic",
        model=call.model,
        usage=TokenUsage(input_tokens=374, output_tokens=82),
        price=per_million((374, "0.80"), (82, "4.00")),
    )
    assert cost(call) == Decimal("0.0006272")


def test_tool_loop_openai(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    """A model call, the tool it asked for, and the model call with the tool's result: two calls."""
    model = openai_chat("gpt-4o-mini").bind_tools([get_weather])
    with replay("otel-python-contrib/openai/test_chat_completion_tool_calls_with_content.yaml"):
        messages: List[Any] = [("user", "What's the weather in Seattle and San Francisco today?")]
        first = model.invoke(messages, config=config)
        assert first.tool_calls
        messages.append(first)
        for tool_call in first.tool_calls:
            messages.append(get_weather.invoke(tool_call, config=config))
        final = model.invoke(messages, config=config)

    assert final.content
    # INDEX.tsv: #1 prompt=75 completion=51, #2 prompt=99 completion=25
    assert len(sink.calls) == 2
    for call, (prompt, completion) in zip(sink.calls, ((75, 51), (99, 25))):
        expect(
            call,
            mode=mode,
            provider="openai",
            model="gpt-4o-mini-2024-07-18",
            usage=TokenUsage(input_tokens=prompt, output_tokens=completion),
            price=per_million((prompt, "0.15"), (completion, "0.60")),
        )


def test_streamed_tool_agent_without_usage(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    """Two streamed tool-calling model calls whose recording has no usage: two events, none invented."""
    model = openai_chat("gpt-4o-mini", temperature=0).bind_tools([get_weather])
    with replay("openinference/langchain/test_agent_with_raw_dict_messages.yaml"):
        messages: List[Any] = [("system", "You are a helpful assistant"), ("user", "What is the weather?")]
        first: Any = None
        for chunk in model.stream(messages, config=config):
            first = chunk if first is None else first + chunk
        messages.append(first)
        for tool_call in first.tool_calls:
            messages.append(get_weather.invoke(tool_call, config=config))
        final = "".join(str(chunk.content) for chunk in model.stream(messages, config=config))

    assert final
    assert len(sink.calls) == 2
    for call in sink.calls:
        expect(
            call,
            mode=mode,
            provider="openai",
            model="gpt-4o-mini-2024-07-18",
            usage=None,
            price=None,
            streamed=True,
        )


def test_llm_completions_chain(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    """A sequential chain of two completions-API LLM calls (`langchain_openai.OpenAI`, on_llm_start)."""
    llm = OpenAI(model="gpt-3.5-turbo-instruct", api_key="sk-test", max_retries=0)  # type: ignore[call-arg,arg-type]
    synopsis = (
        PromptTemplate.from_template("Write a synopsis for the play {title}.") | llm | StrOutputParser()
    )
    review = PromptTemplate.from_template("Review this play: {synopsis}") | llm | StrOutputParser()
    chain = {"synopsis": synopsis} | review
    with replay("openllmetry/langchain/test_sequential_chain.yaml"):
        assert chain.invoke({"title": "Tragedy at sunset on the beach"}, config=config)

    # INDEX.tsv: #1 prompt=61 completion=145, #2 prompt=192 completion=256; $1.50 / $2.00
    assert len(sink.calls) == 2
    for call, (prompt, completion) in zip(sink.calls, ((61, 145), (192, 256))):
        expect(
            call,
            mode=mode,
            provider="openai",
            model="gpt-3.5-turbo-instruct",
            usage=TokenUsage(input_tokens=prompt, output_tokens=completion),
            price=per_million((prompt, "1.5"), (completion, "2.0")),
        )
    assert [cost(call) for call in sink.calls] == [Decimal("0.0003815"), Decimal("0.0008")]
    if mode == "callback":
        assert {call.operation for call in sink.calls} == {"completions"}


def test_anthropic_prompt_caching(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    model = anthropic_chat("claude-3-5-sonnet-20240620")
    with replay("openllmetry/anthropic/test_anthropic_prompt_caching_legacy.yaml"):
        model.invoke("Summarize the document", config=config)
        model.invoke("Summarize the document", config=config)

    # INDEX.tsv: #1 prompt=4 completion=187 cache_creation=1163; #2 prompt=4 completion=202 cache_read=1163.
    # LangChain reports input_tokens=1167 (cache included); the buckets must not count the cache twice.
    first, second = sink.calls
    expect(
        first,
        mode=mode,
        provider="anthropic",
        model="claude-3-5-sonnet-20240620",
        usage=TokenUsage(input_tokens=4, cache_write_tokens=1163, output_tokens=187),
        # claude-3.5-sonnet: $3 input, $3.75 cache write (5m), $0.30 cache read, $15 output
        price=per_million((4, "3"), (1163, "3.75"), (187, "15")),
        response_id="msg_01EF3r8zYyZntM4Sg9a5kc6k",
    )
    expect(
        second,
        mode=mode,
        provider="anthropic",
        model="claude-3-5-sonnet-20240620",
        usage=TokenUsage(input_tokens=4, cache_read_tokens=1163, output_tokens=202),
        price=per_million((4, "3"), (1163, "0.30"), (202, "15")),
        response_id="msg_01YGB3PuEANUSkLuzemhtNVF",
    )


def test_anthropic_legacy_stream_input_is_flagged_or_exact(
    mode: str, config: Dict[str, Any], sink: ListSink
) -> None:
    """This 2024 recording reports input tokens only in `message_start`, which LangChain does not surface.

    Alone, the handler cannot know the input and says so (`stream_partial`); with the anthropic patch
    installed, its exact figures are recorded (INDEX.tsv: prompt=4 completion=201 cache_creation=1165).
    """
    model = anthropic_chat("claude-3-5-sonnet-20240620")
    with replay("openllmetry/anthropic/test_anthropic_prompt_caching_stream_legacy.yaml"):
        for _ in model.stream("Summarize the document", config=config):
            pass
        for _ in model.stream("Summarize the document", config=config):
            pass

    first, second = sink.calls
    if mode == "callback":
        assert first.usage == TokenUsage(output_tokens=201)
        assert first.usage_source == "stream_partial"
        assert first.extra["usage_note"] == "input tokens not reported by the stream"
        assert second.usage == TokenUsage(output_tokens=221)
    else:
        assert first.usage == TokenUsage(input_tokens=4, cache_write_tokens=1165, output_tokens=201)
        assert second.usage == TokenUsage(input_tokens=4, cache_read_tokens=1165, output_tokens=221)
        assert first.usage_source == second.usage_source == USAGE_FROM_STREAM
        assert cost(first) == per_million((4, "3"), (1165, "3.75"), (201, "15"))
        assert first.extra["langchain_run_id"] != second.extra["langchain_run_id"]


def test_claude_2_messages(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    with replay("openllmetry/langchain/test_anthropic.yaml"):
        anthropic_chat("claude-2.1").invoke(
            [("system", "You are a helpful assistant"), ("user", "hi")], config=config
        )

    (call,) = sink.calls
    expect(
        call,
        mode=mode,
        provider="anthropic",
        model="claude-2.1",
        usage=TokenUsage(input_tokens=19, output_tokens=22),
        price=per_million((19, "8"), (22, "24")),
        response_id="msg_017fMG9SRDFTBhcD1ibtN1nK",
    )


def test_failed_call_records_nothing_and_the_error_reaches_the_caller(
    mode: str, config: Dict[str, Any], sink: ListSink
) -> None:
    missing = openai_chat("this-model-does-not-exist")
    not_found = "otel-python-contrib/openai/test_chat_completion_404.yaml"
    with replay(not_found), pytest.raises(openai.NotFoundError):
        missing.invoke("hi", config=config)

    assert sink.calls == []


def test_many_sequential_calls_in_one_thread_each_once(
    mode: str, config: Dict[str, Any], sink: ListSink
) -> None:
    """Runs opened and closed one after the other in one context never hand calls to each other."""
    with replay("openllmetry/openai/test_chat.yaml"):
        model = openai_chat("gpt-3.5-turbo")
        for text in ("a", "b", "c", "d"):
            model.invoke(text, config=config)

    assert [call.usage.output_tokens for call in sink.calls if call.usage] == [19, 31, 22, 19]
    assert len({call.extra["langchain_run_id"] for call in sink.calls}) == 4


def test_async_gather_of_models(mode: str, config: Dict[str, Any], sink: ListSink, combined: Any) -> None:
    """OpenAI and Anthropic calls running concurrently as tasks: each recorded once, with its own run."""

    async def main() -> List[Any]:
        return list(
            await asyncio.gather(
                openai_chat("gpt-4o-mini").ainvoke("joke", config=config),
                anthropic_chat("claude-2.1").ainvoke("hi", config=config),
            )
        )

    with replay(
        combined("openllmetry/langchain/test_openai.yaml", "openllmetry/langchain/test_anthropic.yaml")
    ):
        asyncio.run(main())

    by_provider = {call.provider: call for call in sink.calls}
    assert len(sink.calls) == 2 and set(by_provider) == {"openai", "anthropic"}
    assert by_provider["openai"].usage == TokenUsage(
        input_tokens=89, cache_read_tokens=1408, output_tokens=1037
    )
    assert by_provider["anthropic"].usage == TokenUsage(input_tokens=19, output_tokens=22)
