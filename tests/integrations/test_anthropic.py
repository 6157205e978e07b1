"""anthropic integration: real recorded traffic through the real `anthropic` clients.

Each test replays vendored cassettes (figures from tests/cassettes/INDEX.tsv) through `anthropic.Anthropic`
/ `anthropic.AsyncAnthropic` (`max_retries=0`) with the integration installed, and asserts exactly one
LLMCall per provider call, its exact token buckets, and its exact cost: the event's `provider_cost_usd`
(genai-prices, through the price book) must equal a figure computed by hand from Anthropic's published
per-million-token prices.
"""

from __future__ import annotations

import asyncio
import gc
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional, Tuple

import anthropic
import pydantic
import pytest

import bearlumen
from bearlumen.metering.event import build_event
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
from tests.support.sinks import ListSink

MESSAGES: List[Any] = [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]
PRICE_BOOK = PriceBook()

# Anthropic's published list prices, USD per million tokens:
# (input, 5-minute cache write, 1-hour cache write, cache read, output).
SONNET = ("3", "3.75", "6", "0.30", "15")
PRICES: Dict[str, Tuple[str, str, str, str, str]] = {
    "claude-3-opus-20240229": ("15", "18.75", "30", "1.50", "75"),
    "claude-3-haiku-20240307": ("0.25", "0.30", "0.50", "0.03", "1.25"),
    "claude-3-5-haiku-20241022": ("0.80", "1", "1.6", "0.08", "4"),
    "claude-3-5-sonnet-20240620": SONNET,
    "claude-3-7-sonnet-20250219": SONNET,
    "claude-sonnet-4-5-20250929": SONNET,
    "claude-sonnet-4-6": SONNET,
}

DEPRECATED_MODEL = pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5:DeprecationWarning")


@pytest.fixture
def calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("anthropic")
    return sink.calls


def client() -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", max_retries=0)


def async_client() -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="test", max_retries=0)


def hand_cost(model: str, usage: TokenUsage) -> Decimal:
    """The cost of `usage` from the published prices above, computed without the price book."""
    inp, write_5m, write_1h, read, out = (Decimal(price) for price in PRICES[model])
    total = (
        usage.input_tokens * inp
        + usage.cache_write_tokens * write_5m
        + usage.cache_write_1h_tokens * write_1h
        + usage.cache_read_tokens * read
        + usage.output_tokens * out
    )
    return total / Decimal(1_000_000)


def check(
    call: LLMCall,
    *,
    model: str,
    response_id: str,
    usage: TokenUsage,
    cost: str,
    streamed: bool = False,
    source: str = USAGE_FROM_RESPONSE,
    provider: str = "anthropic",
    model_requested: Optional[str] = None,
) -> None:
    """Everything the integration reports for one call, and the cost the event will carry."""
    assert call.integration == "anthropic"
    assert call.provider == provider
    assert call.operation == "messages"
    assert call.model == model
    assert call.model_requested == (model_requested or model)
    assert call.response_id == response_id
    assert call.usage == usage
    assert call.usage_source == source
    assert call.streamed is streamed
    assert call.latency_ms is not None and call.latency_ms >= 0
    event = build_event(call, PRICE_BOOK, "key")
    assert event["quantity"] == usage.total_tokens
    assert event["metadata"]["pricing_status"] == "priced"
    assert event["metadata"]["provider_cost_usd"] == cost
    assert Decimal(cost) == hand_cost(model, usage)


# -- messages.create -------------------------------------------------------------------------------------


def test_create_prompt_caching_exact_buckets_and_cost(calls: List[LLMCall]) -> None:
    api = client()
    with replay("openllmetry/anthropic/test_anthropic_prompt_caching_legacy.yaml"):
        first = api.messages.create(model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES)
        second = api.messages.create(model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES)

    assert len(calls) == 2
    # #1: input 4, cache_creation 1163 (no 5m/1h breakdown: all 5-minute writes), output 187.
    # 4 x $3 + 1163 x $3.75 + 187 x $15 per 1M = $0.00717825.
    check(
        calls[0],
        model="claude-3-5-sonnet-20240620",
        response_id=first.id,
        usage=TokenUsage(input_tokens=4, cache_write_tokens=1163, output_tokens=187),
        cost="0.00717825",
    )
    # #2: input 4, cache_read 1163, output 202: 4 x $3 + 1163 x $0.30 + 202 x $15 per 1M.
    check(
        calls[1],
        model="claude-3-5-sonnet-20240620",
        response_id=second.id,
        usage=TokenUsage(input_tokens=4, cache_read_tokens=1163, output_tokens=202),
        cost="0.0033909",
    )
    assert calls[0].usage is not None and calls[0].usage.total_tokens == 4 + 1163 + 187


def test_create_token_counts_with_cache_openinference(calls: List[LLMCall]) -> None:
    api = client()
    with replay("openinference/anthropic/test_anthropic_instrumentation_messages_token_counts.yaml"):
        first = api.messages.create(model="claude-3-7-sonnet-20250219", max_tokens=1024, messages=MESSAGES)
        second = api.messages.create(model="claude-3-7-sonnet-20250219", max_tokens=1024, messages=MESSAGES)

    assert len(calls) == 2
    check(
        calls[0],
        model="claude-3-7-sonnet-20250219",
        response_id=first.id,
        usage=TokenUsage(input_tokens=21, cache_write_tokens=1733, output_tokens=561),
        cost="0.01497675",
    )
    check(
        calls[1],
        model="claude-3-7-sonnet-20250219",
        response_id=second.id,
        usage=TokenUsage(input_tokens=21, cache_read_tokens=1733, output_tokens=568),
        cost="0.0091029",
    )


def test_create_sync(calls: List[LLMCall]) -> None:
    with replay("openllmetry/anthropic/test_anthropic_message_create_legacy.yaml"):
        message = client().messages.create(model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES)

    assert isinstance(message, anthropic.types.Message)
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-3-opus-20240229",
        response_id="msg_01TPXhkPo8jy6yQMrMhjpiAE",
        usage=TokenUsage(input_tokens=17, output_tokens=220),
        cost="0.016755",
    )


async def test_create_async(calls: List[LLMCall]) -> None:
    with replay("openllmetry/anthropic/test_async_anthropic_message_create_legacy.yaml"):
        message = await async_client().messages.create(
            model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES
        )

    assert message.usage.output_tokens == 189
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-3-opus-20240229",
        response_id="msg_01UFDDjsFn5BPQnfNwmsMnAY",
        usage=TokenUsage(input_tokens=17, output_tokens=189),
        cost="0.01443",
    )


def test_create_with_tools(calls: List[LLMCall]) -> None:
    with replay("openllmetry/anthropic/test_anthropic_tools_legacy.yaml"):
        message = client().messages.create(
            model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES, tools=[]
        )

    assert [block.type for block in message.content] == ["text", "tool_use", "tool_use"]
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-3-5-sonnet-20240620",
        response_id="msg_01RBkXFe9TmDNNWThMz2HmGt",
        usage=TokenUsage(input_tokens=514, output_tokens=152),
        cost="0.003822",
    )


def test_create_with_thinking(calls: List[LLMCall]) -> None:
    with replay("openllmetry/anthropic/test_anthropic_thinking_legacy.yaml"):
        message = client().messages.create(
            model="claude-3-7-sonnet-20250219",
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=MESSAGES,
        )

    assert [block.type for block in message.content] == ["thinking", "text"]
    assert len(calls) == 1
    # This recording reports no thinking-token count: the thinking is part of the 215 output tokens.
    check(
        calls[0],
        model="claude-3-7-sonnet-20250219",
        response_id="msg_01Ayp2LhrapBJLPf22sskg4c",
        usage=TokenUsage(input_tokens=52, output_tokens=215),
        cost="0.003381",
    )


# -- create(stream=True) ---------------------------------------------------------------------------------


def test_create_stream_prompt_caching(calls: List[LLMCall]) -> None:
    api = client()
    with replay("openllmetry/anthropic/test_anthropic_prompt_caching_stream_legacy.yaml"):
        stream = api.messages.create(
            model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES, stream=True
        )
        assert isinstance(stream, anthropic.Stream)
        first_events = [event.type for event in stream]
        assert len(calls) == 1  # recorded at its message_stop
        with api.messages.create(
            model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES, stream=True
        ) as second:
            second_events = [event.type for event in second]

    assert first_events[0] == "message_start" and first_events[-1] == "message_stop"
    assert second_events[-1] == "message_stop"
    assert len(calls) == 2
    # message_start: input 4, cache_creation 1165, output 1; message_delta: output 201 (cumulative).
    check(
        calls[0],
        model="claude-3-5-sonnet-20240620",
        response_id="msg_017FfRkh9PCC8YbjnhDMrPuK",
        usage=TokenUsage(input_tokens=4, cache_write_tokens=1165, output_tokens=201),
        cost="0.00739575",
        streamed=True,
        source=USAGE_FROM_STREAM,
    )
    check(
        calls[1],
        model="claude-3-5-sonnet-20240620",
        response_id="msg_01XQRA3bs4SB4yTBMwD3dbUi",
        usage=TokenUsage(input_tokens=4, cache_read_tokens=1165, output_tokens=221),
        cost="0.0036765",
        streamed=True,
        source=USAGE_FROM_STREAM,
    )


def test_create_stream_with_tools(calls: List[LLMCall]) -> None:
    with replay("openllmetry/anthropic/test_anthropic_tools_streaming_legacy.yaml"):
        stream = client().messages.create(
            model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES, tools=[], stream=True
        )
        deltas = [e.delta.type for e in stream if e.type == "content_block_delta"]

    assert "input_json_delta" in deltas
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-3-5-sonnet-20240620",
        response_id="msg_0138UNF3YbNp49KkqZtUBWqz",
        usage=TokenUsage(input_tokens=506, output_tokens=153),
        cost="0.003813",
        streamed=True,
        source=USAGE_FROM_STREAM,
    )


async def test_create_stream_async(calls: List[LLMCall]) -> None:
    with replay("openinference/anthropic/test_anthropic_instrumentation_async_messages_streaming.yaml"):
        stream = await async_client().messages.create(
            model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES, stream=True
        )
        assert isinstance(stream, anthropic.AsyncStream)
        events = [event.type async for event in stream]

    assert events[-1] == "message_stop"
    assert len(calls) == 1
    # Modern deltas repeat the cumulative input / cache counts: overwritten, never added (21, not 42).
    check(
        calls[0],
        model="claude-sonnet-4-6",
        response_id="msg_01VtWT6cAKHFZxepjCR9Bwk8",
        usage=TokenUsage(input_tokens=21, output_tokens=13),
        cost="0.000258",
        streamed=True,
        source=USAGE_FROM_STREAM,
    )


# -- messages.stream() -----------------------------------------------------------------------------------


def test_stream_helper_text_stream_and_final_message(calls: List[LLMCall]) -> None:
    api = client()
    with (
        replay("openllmetry/anthropic/test_anthropic_message_stream_manager_legacy.yaml"),
        api.messages.stream(model="claude-3-5-haiku-20241022", max_tokens=1024, messages=MESSAGES) as stream,
    ):
        assert isinstance(stream, anthropic.MessageStream)
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        final_text = stream.get_final_text()

    assert text == final_text and text
    assert final.usage.output_tokens == 108
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-3-5-haiku-20241022",
        response_id=final.id,
        usage=TokenUsage(input_tokens=17, output_tokens=108),
        cost="0.0004456",
        streamed=True,
        source=USAGE_FROM_STREAM,
    )


def test_stream_helper_until_done_and_tools(calls: List[LLMCall]) -> None:
    with (
        replay("openinference/anthropic/test_anthropic_instrumentation_multiple_tool_calling_streaming.yaml"),
        client().messages.stream(model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES) as stream,
    ):
        stream.until_done()
        final = stream.get_final_message()

    assert [block.type for block in final.content].count("tool_use") >= 1
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-sonnet-4-6",
        response_id=final.id,
        usage=TokenUsage(input_tokens=721, output_tokens=113),
        cost="0.003858",
        streamed=True,
        source=USAGE_FROM_STREAM,
    )


def test_stream_helper_thinking(calls: List[LLMCall]) -> None:
    with replay("openllmetry/anthropic/test_anthropic_thinking_streaming_legacy.yaml"):
        with client().messages.stream(
            model="claude-3-7-sonnet-20250219",
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=MESSAGES,
        ) as stream:
            kinds = [event.type for event in stream]
        final = stream.get_final_message()

    assert "thinking" in kinds and [block.type for block in final.content] == ["thinking", "text"]
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-3-7-sonnet-20250219",
        response_id="msg_01SZKz6DEhWnfZcxPQDQz49Y",
        usage=TokenUsage(input_tokens=52, output_tokens=216),
        cost="0.003396",
        streamed=True,
        source=USAGE_FROM_STREAM,
    )


async def test_stream_helper_async(calls: List[LLMCall]) -> None:
    with replay("openinference/anthropic/test_anthropic_instrumentation_async_messages_streaming.yaml"):
        async with async_client().messages.stream(
            model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES
        ) as stream:
            assert isinstance(stream, anthropic.AsyncMessageStream)
            text = "".join([chunk async for chunk in stream.text_stream])
            final = await stream.get_final_message()
            final_text = await stream.get_final_text()

    assert text == final_text and text
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-sonnet-4-6",
        response_id=final.id,
        usage=TokenUsage(input_tokens=21, output_tokens=13),
        cost="0.000258",
        streamed=True,
        source=USAGE_FROM_STREAM,
    )


# -- beta.messages, parse --------------------------------------------------------------------------------


class Joke(pydantic.BaseModel):
    joke: str
    rating: int


STRUCTURED = "openllmetry/anthropic/test_anthropic_structured_outputs_legacy.yaml"
STRUCTURED_USAGE = TokenUsage(input_tokens=222, output_tokens=39)


@DEPRECATED_MODEL
def test_beta_messages_create(calls: List[LLMCall]) -> None:
    with replay(STRUCTURED):
        message = client().beta.messages.create(
            model="claude-sonnet-4-5-20250929",
            max_tokens=1024,
            messages=MESSAGES,
            betas=["structured-outputs-2025-11-13"],
        )

    assert isinstance(message, anthropic.types.beta.BetaMessage)
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-sonnet-4-5-20250929",
        response_id="msg_01RRuttC1Mzd1RUPyP68mcB5",
        usage=STRUCTURED_USAGE,
        cost="0.001251",
    )


@DEPRECATED_MODEL
def test_beta_messages_parse(calls: List[LLMCall]) -> None:
    with replay(STRUCTURED):
        parsed = client().beta.messages.parse(
            model="claude-sonnet-4-5-20250929", max_tokens=1024, messages=MESSAGES, output_format=Joke
        )

    assert parsed.parsed_output is not None and parsed.parsed_output.rating == 7
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-sonnet-4-5-20250929",
        response_id="msg_01RRuttC1Mzd1RUPyP68mcB5",
        usage=STRUCTURED_USAGE,
        cost="0.001251",
    )


@DEPRECATED_MODEL
async def test_messages_parse_async(calls: List[LLMCall]) -> None:
    with replay(STRUCTURED):
        parsed = await async_client().messages.parse(
            model="claude-sonnet-4-5-20250929", max_tokens=1024, messages=MESSAGES, output_format=Joke
        )

    assert parsed.parsed_output is not None and parsed.parsed_output.rating == 7
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-sonnet-4-5-20250929",
        response_id="msg_01RRuttC1Mzd1RUPyP68mcB5",
        usage=STRUCTURED_USAGE,
        cost="0.001251",
    )


def test_beta_stream_helper(calls: List[LLMCall]) -> None:
    api = client()
    with (
        replay("openllmetry/anthropic/test_anthropic_message_stream_manager_legacy.yaml"),
        api.beta.messages.stream(
            model="claude-3-5-haiku-20241022", max_tokens=1024, messages=MESSAGES
        ) as stream,
    ):
        final = stream.get_final_message()

    assert isinstance(final, anthropic.types.beta.BetaMessage)
    assert len(calls) == 1
    check(
        calls[0],
        model="claude-3-5-haiku-20241022",
        response_id=final.id,
        usage=TokenUsage(input_tokens=17, output_tokens=108),
        cost="0.0004456",
        streamed=True,
        source=USAGE_FROM_STREAM,
    )


@anthropic.beta_tool
def get_weather(location: str) -> str:
    """Look up the weather.

    Args:
        location: the city
    """
    return "sunny"


def test_tool_runner_and_thread_count_each_call_once(calls: List[LLMCall]) -> None:
    api = client()
    with replay("openllmetry/anthropic/test_anthropic_message_create_legacy.yaml"):
        replies = list(
            api.beta.messages.tool_runner(
                model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES, tools=[get_weather]
            )
        )
    with replay("openllmetry/anthropic/test_anthropic_message_streaming_legacy.yaml"):
        for stream in api.beta.messages.tool_runner(
            model="claude-3-haiku-20240307",
            max_tokens=1024,
            messages=MESSAGES,
            tools=[get_weather],
            stream=True,
        ):
            stream.until_done()
    # `beta.messages.thread` exists in later anthropic releases only; without it the tool runner is all.
    rounds = 2 if hasattr(api.beta.messages, "thread") else 1
    if rounds == 2:
        with replay("openllmetry/anthropic/test_anthropic_message_create_legacy.yaml"):
            api.beta.messages.thread(model="claude-3-opus-20240229", max_tokens=1024).send(MESSAGES[0])
        with replay("openllmetry/anthropic/test_anthropic_message_streaming_legacy.yaml"):
            thread = api.beta.messages.thread(model="claude-3-haiku-20240307", max_tokens=1024)
            with thread.stream(MESSAGES[0]) as stream:
                stream.get_final_message()

    assert len(replies) == 1
    # Each goes through beta.messages.create (the streaming ones inside a stream manager too): once each.
    assert [(c.response_id, c.streamed, c.usage_source) for c in calls] == [
        ("msg_01TPXhkPo8jy6yQMrMhjpiAE", False, USAGE_FROM_RESPONSE),
        ("msg_01MXWxhWoPSgrYhjTuMDM6F1", True, USAGE_FROM_STREAM),
    ] * rounds
    haiku = TokenUsage(input_tokens=17, output_tokens=171)
    assert [c.usage for c in calls] == [TokenUsage(input_tokens=17, output_tokens=220), haiku] * rounds
    assert calls[1].model_requested == "claude-3-haiku-20240307"


# -- streams that end early ------------------------------------------------------------------------------

HAIKU_STREAM = "openllmetry/anthropic/test_anthropic_message_streaming_legacy.yaml"  # 17 in, 3 -> 171 out


def test_break_then_garbage_collection_records_partial_usage_once(calls: List[LLMCall]) -> None:
    with replay(HAIKU_STREAM):
        stream = client().messages.create(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES, stream=True
        )
        for event in stream:
            if event.type == "content_block_delta":
                break
        assert calls == []  # still open: nothing yet
        del stream, event
        gc.collect()

    assert len(calls) == 1
    # The usage seen so far: message_start said input 17, output 3.
    check(
        calls[0],
        model="claude-3-haiku-20240307",
        response_id="msg_01MXWxhWoPSgrYhjTuMDM6F1",
        usage=TokenUsage(input_tokens=17, output_tokens=3),
        cost="0.000008",
        streamed=True,
        source=USAGE_PARTIAL_STREAM,
    )


def test_close_records_partial_usage_once(calls: List[LLMCall]) -> None:
    with replay(HAIKU_STREAM):
        stream = client().messages.create(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES, stream=True
        )
        iterator = iter(stream)
        assert next(iterator).type == "message_start"
        stream.close()
        stream.close()
        list(iterator)  # whatever the SDK still yields after close() (a replayed body is in memory)
        del stream, iterator
        gc.collect()

    assert len(calls) == 1
    assert calls[0].usage == TokenUsage(input_tokens=17, output_tokens=3)
    assert calls[0].usage_source == USAGE_PARTIAL_STREAM


def test_full_stream_records_complete_usage_once_even_after_close(calls: List[LLMCall]) -> None:
    with replay(HAIKU_STREAM):
        with client().messages.create(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES, stream=True
        ) as stream:
            for _ in stream:
                pass
        stream.close()
        gc.collect()

    assert len(calls) == 1
    check(
        calls[0],
        model="claude-3-haiku-20240307",
        response_id="msg_01MXWxhWoPSgrYhjTuMDM6F1",
        usage=TokenUsage(input_tokens=17, output_tokens=171),
        cost="0.000218",
        streamed=True,
        source=USAGE_FROM_STREAM,
    )


def test_stream_helper_left_early_by_an_exception(calls: List[LLMCall]) -> None:
    class Stop(Exception):
        pass

    with (
        replay(HAIKU_STREAM),
        pytest.raises(Stop),
        client().messages.stream(model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES) as s,
    ):
        for event in s:
            if event.type == "content_block_delta":
                raise Stop
    gc.collect()

    assert len(calls) == 1
    assert calls[0].usage == TokenUsage(input_tokens=17, output_tokens=3)
    assert calls[0].usage_source == USAGE_PARTIAL_STREAM
    assert calls[0].streamed is True


async def test_async_stream_closed_early(calls: List[LLMCall]) -> None:
    with replay("openinference/anthropic/test_anthropic_instrumentation_async_messages_streaming.yaml"):
        stream = await async_client().messages.create(
            model="claude-sonnet-4-6", max_tokens=1024, messages=MESSAGES, stream=True
        )
        async for event in stream:
            assert event.type == "message_start"
            break
        await stream.close()
        await stream.close()

    assert len(calls) == 1
    # message_start only: input 21, output 7 so far.
    assert calls[0].usage == TokenUsage(input_tokens=21, output_tokens=7)
    assert calls[0].usage_source == USAGE_PARTIAL_STREAM


def test_stream_never_iterated_is_recorded_without_usage(calls: List[LLMCall]) -> None:
    with replay(HAIKU_STREAM):
        stream = client().messages.create(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES, stream=True
        )
        stream.close()

    assert len(calls) == 1
    assert calls[0].usage is None
    assert calls[0].usage_source == USAGE_UNAVAILABLE
    assert calls[0].model == calls[0].model_requested == "claude-3-haiku-20240307"


def test_stream_dropped_without_being_iterated_is_recorded_once(calls: List[LLMCall]) -> None:
    with replay(HAIKU_STREAM):
        stream = client().messages.create(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES, stream=True
        )
        del stream
        gc.collect()

    assert len(calls) == 1
    assert (calls[0].usage, calls[0].usage_source, calls[0].streamed) == (None, USAGE_UNAVAILABLE, True)


def test_stream_helper_text_stream_left_early_then_dropped(calls: List[LLMCall]) -> None:
    with replay(HAIKU_STREAM):
        manager = client().messages.stream(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES
        )
        stream = manager.__enter__()
        first_text = next(iter(stream.text_stream))
        assert first_text and calls == []
        del manager, stream
        gc.collect()

    assert len(calls) == 1
    assert calls[0].usage == TokenUsage(input_tokens=17, output_tokens=3)
    assert calls[0].usage_source == USAGE_PARTIAL_STREAM


# -- attribution -----------------------------------------------------------------------------------------


def test_attribution_from_nested_scopes(calls: List[LLMCall]) -> None:
    api = client()
    cassette = replay("openllmetry/anthropic/test_anthropic_prompt_caching_legacy.yaml")
    with cassette, bearlumen.workflow("onboarding"), bearlumen.agent("planner"):
        api.messages.create(model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES)
        with bearlumen.agent("writer"), bearlumen.attributes(end_user_id="eu_1", plan="pro"):
            api.messages.create(model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES)

    assert [(c.attribution.workflow_id, c.attribution.agent_id) for c in calls] == [
        ("onboarding", "planner"),
        ("onboarding", "writer"),
    ]
    assert calls[1].attribution.end_user_id == "eu_1"
    event = build_event(calls[1], PRICE_BOOK, "key")
    assert (event["workflow_id"], event["agent_id"], event["end_user_id"]) == ("onboarding", "writer", "eu_1")
    assert event["metadata"]["plan"] == "pro"


async def test_attribution_in_concurrent_asyncio_tasks(calls: List[LLMCall]) -> None:
    api = async_client()

    async def agent_call(name: str) -> str:
        with bearlumen.agent(name):
            await asyncio.sleep(0)
            message = await api.messages.create(
                model="claude-3-7-sonnet-20250219", max_tokens=1024, messages=MESSAGES
            )
            return message.id

    cassette = replay("openinference/anthropic/test_anthropic_instrumentation_messages_token_counts.yaml")
    with cassette, bearlumen.workflow("research"):
        ids = await asyncio.gather(
            asyncio.create_task(agent_call("searcher")), asyncio.create_task(agent_call("critic"))
        )

    assert sorted(ids) == sorted(c.response_id or "" for c in calls) and len(calls) == 2
    by_id = {c.response_id: c.attribution for c in calls}
    assert (by_id[ids[0]].agent_id, by_id[ids[0]].workflow_id) == ("searcher", "research")
    assert (by_id[ids[1]].agent_id, by_id[ids[1]].workflow_id) == ("critic", "research")


def test_stream_is_attributed_to_the_scope_of_its_call(calls: List[LLMCall]) -> None:
    with replay(HAIKU_STREAM):
        with bearlumen.workflow("chat"), bearlumen.agent("responder"):
            stream = client().messages.create(
                model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES, stream=True
            )
        with bearlumen.agent("someone-else"):
            for _ in stream:
                pass

    assert len(calls) == 1
    assert (calls[0].attribution.workflow_id, calls[0].attribution.agent_id) == ("chat", "responder")


def test_attribution_in_a_thread_pool(calls: List[LLMCall]) -> None:
    api = client()
    cassette = replay("openllmetry/anthropic/test_anthropic_prompt_caching_legacy.yaml")
    pool = bearlumen.scopes.ContextThreadPoolExecutor(max_workers=1)
    with cassette, pool, bearlumen.workflow("batch"), bearlumen.agent("worker"):
        pool.submit(
            api.messages.create, model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES
        ).result()

    assert len(calls) == 1
    assert (calls[0].attribution.workflow_id, calls[0].attribution.agent_id) == ("batch", "worker")


# -- with_raw_response / with_streaming_response ---------------------------------------------------------

OPUS = "openllmetry/anthropic/test_anthropic_message_create_legacy.yaml"
OPUS_USAGE = TokenUsage(input_tokens=17, output_tokens=220)


def test_with_raw_response_reads_the_cached_parse(calls: List[LLMCall]) -> None:
    with replay(OPUS):
        raw = client().messages.with_raw_response.create(
            model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES
        )
    assert isinstance(raw, anthropic._response.APIResponse)
    assert len(calls) == 1
    message = raw.parse()
    assert message is raw.parse()  # the caller gets the very object that was read
    assert message.usage.output_tokens == 220
    check(
        calls[0],
        model="claude-3-opus-20240229",
        response_id=message.id,
        usage=OPUS_USAGE,
        cost="0.016755",
    )


def test_with_raw_response_stream(calls: List[LLMCall]) -> None:
    with replay(HAIKU_STREAM):
        raw = client().messages.with_raw_response.create(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES, stream=True
        )
        assert calls == []
        events = list(raw.parse())

    assert events[-1].type == "message_stop"
    assert len(calls) == 1
    assert calls[0].usage == TokenUsage(input_tokens=17, output_tokens=171)
    assert (calls[0].streamed, calls[0].usage_source) == (True, USAGE_FROM_STREAM)


async def test_with_raw_response_async(calls: List[LLMCall]) -> None:
    with replay("openllmetry/anthropic/test_async_anthropic_message_create_legacy.yaml"):
        raw = await async_client().messages.with_raw_response.create(
            model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES
        )
    message = await raw.parse()
    assert len(calls) == 1
    assert calls[0].usage == TokenUsage(input_tokens=17, output_tokens=189)
    assert calls[0].response_id == message.id


def test_with_streaming_response_never_reads_the_body_itself(calls: List[LLMCall]) -> None:
    api = client()
    with (
        replay(OPUS),
        api.messages.with_streaming_response.create(
            model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES
        ) as response,
    ):
        assert calls == []
        assert not response.http_response.is_stream_consumed  # untouched until the caller reads it
        lines = list(response.iter_lines())
    assert lines  # the caller read the raw body itself: its usage is unknown to us
    assert len(calls) == 1
    assert calls[0].usage is None and calls[0].usage_source == USAGE_UNAVAILABLE

    calls.clear()
    with (
        replay(OPUS),
        api.messages.with_streaming_response.create(
            model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES
        ) as response,
    ):
        message = response.parse()
    assert len(calls) == 1  # metered at close, from the body the caller read
    check(calls[0], model="claude-3-opus-20240229", response_id=message.id, usage=OPUS_USAGE, cost="0.016755")


def test_with_streaming_response_stream(calls: List[LLMCall]) -> None:
    with (
        replay(HAIKU_STREAM),
        client().messages.with_streaming_response.create(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES, stream=True
        ) as response,
    ):
        events = [event.type for event in response.parse()]
    assert events[-1] == "message_stop"
    assert len(calls) == 1
    assert calls[0].usage == TokenUsage(input_tokens=17, output_tokens=171)
    assert calls[0].usage_source == USAGE_FROM_STREAM


def test_client_and_raw_helper_made_before_install_are_metered(sink: ListSink, integration: Any) -> None:
    api = client()
    messages = api.messages  # a resource cached on the client before instrumenting
    raw_helper = api.messages.with_raw_response  # bound to the unpatched method
    streaming_helper = api.messages.with_streaming_response
    integration("anthropic")
    with replay(OPUS):
        messages.create(model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES)
    with replay(OPUS):
        api.messages.with_raw_response.create(
            model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES
        )
    with replay(OPUS):
        raw_helper.create(model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES)
    with (
        replay(OPUS),
        streaming_helper.create(
            model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES
        ) as response,
    ):
        response.parse()

    assert [c.usage for c in sink.calls] == [OPUS_USAGE] * 4


async def test_async_raw_helper_made_before_install_is_metered(sink: ListSink, integration: Any) -> None:
    api = async_client()
    raw_helper = api.messages.with_raw_response  # bound to the unpatched method
    integration("anthropic")
    with replay("openllmetry/anthropic/test_async_anthropic_message_create_legacy.yaml"):
        raw = await raw_helper.create(model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES)
    message = await raw.parse()

    assert len(sink.calls) == 1
    assert sink.calls[0].response_id == message.id
    assert sink.calls[0].usage == TokenUsage(input_tokens=17, output_tokens=189)


# -- install / uninstall ---------------------------------------------------------------------------------


def _attributes() -> Dict[Tuple[str, str, str], Any]:
    import importlib

    from bearlumen.integrations import anthropic as integration

    found: Dict[Tuple[str, str, str], Any] = {}
    for module, owner, attribute, _ in integration.TARGETS + integration.REBINDS:
        cls = getattr(importlib.import_module(module), owner)
        found[(module, owner, attribute)] = vars(cls).get(attribute, "<absent>")
    return found


def _cloud_beta_raw_parse_helpers() -> int:
    """How many of Bedrock's and Vertex's (sync, async) beta raw-response helpers define `parse`."""
    bedrock = {"aws_region": "us-east-1", "aws_access_key": "a", "aws_secret_key": "b"}
    vertex = {"region": "us-east5", "project_id": "p", "access_token": "t"}
    clients = [
        anthropic.AnthropicBedrock(**bedrock),
        anthropic.AsyncAnthropicBedrock(**bedrock),
        anthropic.AnthropicVertex(**vertex),
        anthropic.AsyncAnthropicVertex(**vertex),
    ]
    return sum(hasattr(c.beta.messages.with_raw_response, "parse") for c in clients)


def test_uninstall_restores_every_attribute_exactly() -> None:
    import wrapt
    from bearlumen.integrations import anthropic as integration

    before = _attributes()
    assert len(before) == 28 + 24
    integration.install()
    integration.install()  # idempotent
    try:
        during = _attributes()
        wrapped = [key for key in before if during[key] is not before[key]]
        # Every create / parse / stream / manager entry, and the helper methods set per instance (18, plus
        # the parse of Bedrock's and Vertex's beta MessagesWithRawResponse in the releases that have one;
        # the stable MessagesWithRawResponse has no parse), each wrapped once.
        assert len(wrapped) == 28 + 18 + _cloud_beta_raw_parse_helpers()
        for module, owner, attribute, _ in integration.TARGETS:
            value = during[(module, owner, attribute)]
            assert isinstance(value, wrapt.FunctionWrapper)
            assert value.__wrapped__ is before[(module, owner, attribute)]  # one layer: never twice
        # The Bedrock and Vertex copies are wrapped on their own classes.
        from anthropic.lib.bedrock import _beta_messages as bedrock
        from anthropic.lib.vertex import _beta_messages as vertex

        assert isinstance(vars(bedrock.Messages)["create"], wrapt.FunctionWrapper)
        assert isinstance(vars(vertex.AsyncMessages)["stream"], wrapt.FunctionWrapper)
    finally:
        integration.uninstall()
        integration.uninstall()
    after = _attributes()
    assert all(after[key] is before[key] for key in before)


def test_nothing_is_metered_after_uninstall(sink: ListSink) -> None:
    from bearlumen.integrations import anthropic as integration

    api = client()
    integration.install()
    raw_helper = api.messages.with_raw_response  # built around the wrapped method
    integration.uninstall()
    with replay(OPUS):
        api.messages.create(model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES)
    with replay(OPUS):
        raw_helper.create(model="claude-3-opus-20240229", max_tokens=1024, messages=MESSAGES)
    assert sink.calls == []
