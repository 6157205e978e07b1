"""anthropic integration through the real clients on an in-process transport (`httpx2.MockTransport`).

Two kinds of bodies are served here:

- Real recorded bodies (the vendored cassettes), re-served for hosts no recording covers: Bedrock (the
  recorded Messages JSON, and the recorded stream events in AWS event-stream frames as Bedrock sends them)
  and Vertex (the same JSON and SSE bodies, which Vertex sends unchanged).
- Hand-written bodies: a FAKE, used only for shapes no recording has (missing usage, None or wrongly typed
  fields, unknown event and content block types, 1-hour cache writes and thinking-token counts, errors in
  the middle of a stream, HTTP errors). Each such test says so.

Either way the real `anthropic` client does all the work: request building, SSE / event-stream decoding,
pydantic models, stream helpers.
"""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import anthropic
import httpx2
import pytest
from bearlumen.integrations import anthropic as integration

from bearlumen.metering import record
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
from tests.support.sinks import ListSink
from tests.support.versions import ANTHROPIC

MESSAGES: List[Any] = [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]
PRICE_BOOK = PriceBook()
OPUS_JSON = "openllmetry/anthropic/test_anthropic_message_create_legacy.yaml"  # 17 in, 220 out
HAIKU_SSE = "openllmetry/anthropic/test_anthropic_message_streaming_legacy.yaml"  # 17 in, 171 out
SONNET_JSON = "openllmetry/anthropic/test_anthropic_prompt_caching_legacy.yaml"  # 4 in, 1163 write, 187 out


@pytest.fixture
def calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("anthropic")
    return sink.calls


def cost_of(call: LLMCall) -> Optional[str]:
    value = build_event(call, PRICE_BOOK, "key")["metadata"].get("provider_cost_usd")
    return value if value is None else str(value)


def per_million(*pairs: Tuple[int, str]) -> str:
    total = sum((Decimal(tokens) * Decimal(price) for tokens, price in pairs), Decimal(0)) / 1_000_000
    text = format(total, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def sse_events(body: bytes) -> List[Dict[str, Any]]:
    """The JSON events of a recorded SSE body, in order (pings included)."""
    return [json.loads(line[len(b"data: ") :]) for line in body.splitlines() if line.startswith(b"data: ")]


def sse(*events: Dict[str, Any]) -> httpx2.Response:
    text = "".join(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n" for event in events)
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=text.encode())


def aws_event_stream(*events: Dict[str, Any]) -> httpx2.Response:
    """Bedrock's `invoke-with-response-stream` body: each event, base64 in a JSON `chunk`, in an AWS
    event-stream frame (prelude, headers, payload, CRC32s)."""

    def frame(payload: bytes) -> bytes:
        headers = b""
        for name, value in (
            (":event-type", "chunk"),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ):
            headers += struct.pack(">B", len(name)) + name.encode() + b"\x07"
            headers += struct.pack(">H", len(value)) + value.encode()
        prelude = struct.pack(">II", 12 + len(headers) + len(payload) + 4, len(headers))
        prelude += struct.pack(">I", zlib.crc32(prelude) & 0xFFFFFFFF)
        message = prelude + headers + payload
        return message + struct.pack(">I", zlib.crc32(message) & 0xFFFFFFFF)

    body = b"".join(
        frame(json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode()}).encode())
        for event in events
    )
    return httpx2.Response(200, headers={"content-type": "application/vnd.amazon.eventstream"}, content=body)


def sync_http(transport: httpx2.MockTransport) -> httpx2.Client:
    return httpx2.Client(transport=transport)


def async_http(transport: httpx2.MockTransport) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(transport=transport)


def message_json(usage: Any, **fields: Any) -> Dict[str, Any]:
    body = {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-6",
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
    }
    if usage is not ...:
        body["usage"] = usage
    body.update(fields)
    return body


# -- Bedrock ---------------------------------------------------------------------------------------------

BEDROCK_MODEL = "anthropic.claude-3-haiku-20240307-v1:0"


def bedrock_stream_events(recorded: Any) -> List[Dict[str, Any]]:
    events = [event for event in sse_events(recorded(HAIKU_SSE)[0].body) if event["type"] != "ping"]
    # Bedrock adds its own invocation metrics to message_stop (a field the SDK does not know).
    events[-1]["amazon-bedrock-invocationMetrics"] = {"inputTokenCount": 17, "outputTokenCount": 171}
    return events


def bedrock(transport: httpx2.MockTransport) -> anthropic.AnthropicBedrock:
    return anthropic.AnthropicBedrock(
        aws_region="us-east-1",
        aws_access_key="AKIDEXAMPLE",
        aws_secret_key="secret",
        max_retries=0,
        http_client=sync_http(transport),
    )


def test_bedrock_messages_and_beta_messages(calls: List[LLMCall], serve: Any, recorded: Any) -> None:
    opus = recorded(OPUS_JSON)[0]
    events = bedrock_stream_events(recorded)
    transport = serve(
        opus, aws_event_stream(*events), opus, aws_event_stream(*events), aws_event_stream(*events)
    )
    client: Any = bedrock(transport)  # Any: the SDK types the beta copies with the first-party self

    message = client.messages.create(model=BEDROCK_MODEL, max_tokens=1024, messages=MESSAGES)
    streamed = [
        event.type
        for event in client.messages.create(
            model=BEDROCK_MODEL, max_tokens=1024, messages=MESSAGES, stream=True
        )
    ]
    beta_message = client.beta.messages.create(model=BEDROCK_MODEL, max_tokens=1024, messages=MESSAGES)
    with client.beta.messages.stream(model=BEDROCK_MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        beta_final = stream.get_final_message()
    with client.messages.stream(model=BEDROCK_MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        text = "".join(stream.text_stream)

    paths = [request.url.path for request in transport.requests]
    assert paths == [
        f"/model/{BEDROCK_MODEL}/invoke",
        f"/model/{BEDROCK_MODEL}/invoke-with-response-stream",
    ] * 2 + [f"/model/{BEDROCK_MODEL}/invoke-with-response-stream"]
    assert (
        isinstance(beta_message, anthropic.types.beta.BetaMessage) and streamed[-1] == "message_stop" and text
    )
    assert len(calls) == 5
    assert {call.provider for call in calls} == {"aws"}
    assert {call.model_requested for call in calls} == {BEDROCK_MODEL}
    opus_usage, haiku_usage = (
        TokenUsage(input_tokens=17, output_tokens=220),
        TokenUsage(input_tokens=17, output_tokens=171),
    )
    assert [(c.response_id, c.usage, c.usage_source, c.streamed) for c in calls] == [
        (message.id, opus_usage, USAGE_FROM_RESPONSE, False),
        ("msg_01MXWxhWoPSgrYhjTuMDM6F1", haiku_usage, USAGE_FROM_STREAM, True),
        (beta_message.id, opus_usage, USAGE_FROM_RESPONSE, False),
        (beta_final.id, haiku_usage, USAGE_FROM_STREAM, True),
        ("msg_01MXWxhWoPSgrYhjTuMDM6F1", haiku_usage, USAGE_FROM_STREAM, True),
    ]
    # Priced with AWS Bedrock's list (on-demand, same as Anthropic's for claude-3-haiku: $0.25 / $1.25).
    assert cost_of(calls[1]) == per_million((17, "0.25"), (171, "1.25")) == "0.000218"
    # Bedrock bills the model the request's URL names (claude-3-haiku here), whatever model the body
    # served by this test names (a recorded Opus body): the billed model is the one priced.
    assert cost_of(calls[0]) == per_million((17, "0.25"), (220, "1.25")) == "0.00027925"


async def test_bedrock_async_beta_copy(calls: List[LLMCall], serve: Any, recorded: Any) -> None:
    transport = serve(recorded(OPUS_JSON)[0], aws_event_stream(*bedrock_stream_events(recorded)))
    client: Any = anthropic.AsyncAnthropicBedrock(
        aws_region="us-east-1",
        aws_access_key="AKIDEXAMPLE",
        aws_secret_key="secret",
        max_retries=0,
        http_client=async_http(transport),
    )
    await client.beta.messages.create(model=BEDROCK_MODEL, max_tokens=1024, messages=MESSAGES)
    async with client.beta.messages.stream(model=BEDROCK_MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        await stream.until_done()

    assert [(c.provider, c.usage, c.streamed) for c in calls] == [
        ("aws", TokenUsage(input_tokens=17, output_tokens=220), False),
        ("aws", TokenUsage(input_tokens=17, output_tokens=171), True),
    ]


# -- Vertex ----------------------------------------------------------------------------------------------

VERTEX_MODEL = "claude-3-5-sonnet@20240620"


def vertex(transport: httpx2.MockTransport) -> anthropic.AnthropicVertex:
    return anthropic.AnthropicVertex(
        region="us-east5",
        project_id="project",
        access_token="test",
        max_retries=0,
        http_client=sync_http(transport),
    )


def test_vertex_messages_and_beta_messages(calls: List[LLMCall], serve: Any, recorded: Any) -> None:
    sonnet = recorded(SONNET_JSON)[0]
    haiku_stream = recorded(HAIKU_SSE)[0]
    transport = serve(sonnet, sonnet, haiku_stream, haiku_stream, {"input_tokens": 12})
    client: Any = vertex(transport)  # (see above)

    client.messages.create(model=VERTEX_MODEL, max_tokens=1024, messages=MESSAGES)
    client.beta.messages.create(model=VERTEX_MODEL, max_tokens=1024, messages=MESSAGES)
    for _ in client.beta.messages.create(model=VERTEX_MODEL, max_tokens=1024, messages=MESSAGES, stream=True):
        pass
    with client.beta.messages.stream(model=VERTEX_MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        stream.get_final_message()
    assert client.beta.messages.count_tokens(model=VERTEX_MODEL, messages=MESSAGES).input_tokens == 12  # free

    assert [request.url.path.rsplit("/", 1)[-1] for request in transport.requests] == [
        f"{VERTEX_MODEL}:rawPredict",
        f"{VERTEX_MODEL}:rawPredict",
        f"{VERTEX_MODEL}:streamRawPredict",
        f"{VERTEX_MODEL}:streamRawPredict",
        "count-tokens:rawPredict",
    ]
    assert len(calls) == 4
    assert {call.provider for call in calls} == {"vertex"}
    cached = TokenUsage(input_tokens=4, cache_write_tokens=1163, output_tokens=187)
    assert [c.usage for c in calls] == [cached, cached] + [TokenUsage(input_tokens=17, output_tokens=171)] * 2
    assert calls[0].model == "claude-3-5-sonnet-20240620" and calls[0].model_requested == VERTEX_MODEL
    # Priced with Google's list for Claude on Vertex: $3 in, $3.75 5-minute cache write, $15 out.
    assert cost_of(calls[0]) == per_million((4, "3"), (1163, "3.75"), (187, "15")) == "0.00717825"


async def test_vertex_async(calls: List[LLMCall], serve: Any, recorded: Any) -> None:
    transport = serve(recorded(SONNET_JSON)[0], recorded(HAIKU_SSE)[0])
    client: Any = anthropic.AsyncAnthropicVertex(
        region="us-east5",
        project_id="project",
        access_token="test",
        max_retries=0,
        http_client=async_http(transport),
    )
    await client.beta.messages.create(model=VERTEX_MODEL, max_tokens=1024, messages=MESSAGES)
    async with client.messages.stream(model=VERTEX_MODEL, max_tokens=1024, messages=MESSAGES) as stream:
        await stream.get_final_message()

    assert [(c.provider, c.streamed, c.usage_source) for c in calls] == [
        ("vertex", False, USAGE_FROM_RESPONSE),
        ("vertex", True, USAGE_FROM_STREAM),
    ]


# -- free and failed calls -------------------------------------------------------------------------------


async def test_count_tokens_is_never_metered(calls: List[LLMCall], serve: Any) -> None:
    transport = serve(answer=lambda request: {"input_tokens": 12})
    client = anthropic.Anthropic(api_key="test", max_retries=0, http_client=sync_http(transport))
    aclient = anthropic.AsyncAnthropic(api_key="test", max_retries=0, http_client=async_http(transport))
    client.messages.count_tokens(model="claude-sonnet-4-6", messages=MESSAGES)
    client.beta.messages.count_tokens(model="claude-sonnet-4-6", messages=MESSAGES)
    client.messages.with_raw_response.count_tokens(model="claude-sonnet-4-6", messages=MESSAGES).parse()
    await aclient.messages.count_tokens(model="claude-sonnet-4-6", messages=MESSAGES)
    assert len(transport.requests) == 4
    assert calls == []


def failing_call(kind: str) -> Callable[[anthropic.Anthropic], Any]:
    def call(client: anthropic.Anthropic) -> Any:
        if kind == "stream":
            return list(
                client.messages.create(
                    model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES, stream=True
                )
            )
        if kind == "helper":
            with client.messages.stream(model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES) as stream:
                return stream.get_final_message()
        if kind == "raw":
            return client.messages.with_raw_response.create(
                model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES
            )
        return client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES)

    return call


def raise_connection_error(request: httpx2.Request) -> httpx2.Response:
    raise httpx2.ConnectError("connection refused", request=request)


FAILURES = {
    "400": lambda request: httpx2.Response(
        400,
        json={"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: too big"}},
    ),
    "529": lambda request: httpx2.Response(
        529, json={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    ),
    "connection": raise_connection_error,
}


@pytest.mark.parametrize("failure", sorted(FAILURES))
@pytest.mark.parametrize("kind", ["create", "stream", "helper", "raw"])
def test_failed_call_records_nothing_and_the_exception_is_unchanged(
    sink: ListSink, failure: str, kind: str
) -> None:
    def attempt() -> BaseException:
        client = anthropic.Anthropic(
            api_key="test", max_retries=0, http_client=sync_http(httpx2.MockTransport(FAILURES[failure]))
        )
        with pytest.raises(anthropic.APIError) as caught:
            failing_call(kind)(client)
        return caught.value

    expected = attempt()  # uninstrumented
    integration.install()
    try:
        actual = attempt()
    finally:
        integration.uninstall()
    assert type(actual) is type(expected)
    assert str(actual) == str(expected)
    assert getattr(actual, "status_code", None) == getattr(expected, "status_code", None)
    assert getattr(actual, "body", None) == getattr(expected, "body", None)
    assert type(actual.__cause__) is type(expected.__cause__)
    assert sink.calls == []


async def test_failed_async_calls_record_nothing(calls: List[LLMCall]) -> None:
    client = anthropic.AsyncAnthropic(
        api_key="test", max_retries=0, http_client=async_http(httpx2.MockTransport(FAILURES["529"]))
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        await client.messages.create(model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES)
    assert caught.value.status_code == 529
    with pytest.raises(anthropic.APIStatusError):
        async with client.messages.stream(
            model="claude-sonnet-4-6", max_tokens=5, messages=MESSAGES
        ) as stream:
            await stream.until_done()
    assert calls == []


# -- malformed and new shapes (FAKE bodies: no recording has them) ---------------------------------------


def twice(
    make_response: Callable[[], Any], call: Callable[[anthropic.Anthropic], Any]
) -> Tuple[Any, Any, List[LLMCall]]:
    """`call` once uninstrumented and once instrumented, each on a fresh client; the calls recorded."""
    results = []
    sink = ListSink()
    previous = record.set_sink(sink)
    try:
        for instrumented in (False, True):
            if instrumented:
                integration.install()
            try:
                transport = httpx2.MockTransport(lambda request: make_response())
                results.append(
                    call(anthropic.Anthropic(api_key="test", max_retries=0, http_client=sync_http(transport)))
                )
            finally:
                if instrumented:
                    integration.uninstall()
    finally:
        record.set_sink(previous)
    return results[0], results[1], sink.calls


def create(client: anthropic.Anthropic) -> Any:
    return client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES).model_dump(
        warnings=False
    )


def stream_events(client: anthropic.Anthropic) -> Any:
    return [
        event.model_dump(warnings=False)
        for event in client.messages.create(
            model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES, stream=True
        )
    ]


def helper_events(client: anthropic.Anthropic) -> Any:
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES) as stream:
        events = [event.model_dump(warnings=False) for event in stream]
        return events, stream.get_final_message().model_dump(warnings=False)


def test_fake_message_without_usage() -> None:
    plain, metered, calls = twice(lambda: httpx2.Response(200, json=message_json(...)), create)
    assert plain == metered
    assert len(calls) == 1
    assert calls[0].usage is None and calls[0].usage_source == USAGE_UNAVAILABLE
    event = build_event(calls[0], PRICE_BOOK, "key")
    assert event["quantity"] == 0 and event["metadata"]["pricing_status"] == "unpriced"
    assert "provider_cost_usd" not in event["metadata"]


@pytest.mark.parametrize(
    ("usage", "expected"),
    [
        (None, None),
        ({}, None),
        ({"input_tokens": None, "output_tokens": None}, None),
        ({"input_tokens": None, "output_tokens": 12}, TokenUsage(output_tokens=12)),
        (
            {
                "input_tokens": 9,
                "output_tokens": 3,
                "cache_creation_input_tokens": None,
                "cache_read_input_tokens": None,
                "cache_creation": None,
                "output_tokens_details": None,
                "server_tool_use": None,
            },
            TokenUsage(input_tokens=9, output_tokens=3),
        ),
        (
            {"input_tokens": "12", "output_tokens": 5.0, "cache_creation_input_tokens": -3},
            TokenUsage(12, output_tokens=5),
        ),
        ({"input_tokens": [1], "output_tokens": {"x": 1}, "cache_read_input_tokens": True}, None),
        (
            {"input_tokens": 5, "output_tokens": 2, "cache_creation": {"ephemeral_5m_input_tokens": None}},
            TokenUsage(5, output_tokens=2),
        ),
        ("not an object", None),
    ],
)
def test_fake_malformed_usage(usage: Any, expected: Optional[TokenUsage]) -> None:
    plain, metered, calls = twice(lambda: httpx2.Response(200, json=message_json(usage)), create)
    assert plain == metered
    assert len(calls) == 1
    assert calls[0].usage == expected
    assert calls[0].usage_source == (USAGE_FROM_RESPONSE if expected is not None else USAGE_UNAVAILABLE)


def test_fake_one_hour_cache_writes_and_thinking_tokens() -> None:
    usage = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 40,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
        "output_tokens": 7,
        "output_tokens_details": {"thinking_tokens": 4},
        "server_tool_use": {"web_search_requests": 2},
        "service_tier": "priority",
    }
    plain, metered, calls = twice(lambda: httpx2.Response(200, json=message_json(usage)), create)
    assert plain == metered and len(calls) == 1
    assert calls[0].usage == TokenUsage(
        input_tokens=10,
        cache_read_tokens=40,
        cache_write_tokens=100,
        cache_write_1h_tokens=200,
        output_tokens=7,
        reasoning_tokens=4,
        web_searches=2,
    )
    assert calls[0].extra == {"service_tier": "priority", "web_search_requests": 2}
    assert calls[0].tier == "priority"
    # Anthropic's Priority Tier is committed capacity: no public per-token price, so no cost rather than
    # the standard one (the standard-tier figure is checked in tests/integrations/test_pricing_dimensions).
    metadata = build_event(calls[0], PRICE_BOOK, "key")["metadata"]
    assert cost_of(calls[0]) is None
    assert metadata["pricing_status"] == "unpriced"
    assert metadata["pricing_source"].startswith("no price for tier 'priority'")


@pytest.mark.parametrize(
    ("creation", "expected_5m", "expected_1h"),
    [
        ({"cache_creation_input_tokens": 50}, 50, 0),  # no breakdown: all 5-minute (default TTL)
        (
            {
                "cache_creation_input_tokens": 50,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            },
            50,
            0,
        ),  # an empty breakdown does not hide the total
        ({"cache_creation_input_tokens": 50, "cache_creation": {"ephemeral_1h_input_tokens": 50}}, 0, 50),
        ({"cache_creation": {"ephemeral_5m_input_tokens": 7, "ephemeral_1h_input_tokens": 8}}, 7, 8),
    ],
)
def test_fake_cache_write_split(creation: Dict[str, Any], expected_5m: int, expected_1h: int) -> None:
    usage = {"input_tokens": 1, "output_tokens": 1, **creation}
    _, _, calls = twice(lambda: httpx2.Response(200, json=message_json(usage)), create)
    assert calls[0].usage is not None
    assert (calls[0].usage.cache_write_tokens, calls[0].usage.cache_write_1h_tokens) == (
        expected_5m,
        expected_1h,
    )


def start_event(usage: Any, **message: Any) -> Dict[str, Any]:
    body = message_json(usage, content=[], stop_reason=None)
    body.update(message)
    return {"type": "message_start", "message": body}


def fake_stream_with_new_shapes() -> httpx2.Response:
    """A stream with an unknown event type, a new content block type, a thinking block, and cumulative
    `message_delta` usage that repeats input and cache counts (and later revises them)."""
    start_usage = {
        "input_tokens": 30,
        "cache_read_input_tokens": 500,
        "cache_creation_input_tokens": 200,
        "cache_creation": {"ephemeral_5m_input_tokens": 50, "ephemeral_1h_input_tokens": 150},
        "output_tokens": 1,
    }
    return sse(
        start_event(start_usage),
        {"type": "ping"},
        {"type": "brand_new_event", "payload": {"anything": [1, 2]}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "hologram", "frames": 3}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "hologram_delta", "frame": "x"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hello"}},
        {
            "type": "message_delta",
            "delta": {"stop_reason": None},
            "usage": {"output_tokens": 20, "input_tokens": 30, "cache_read_input_tokens": 500},
        },
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": " world"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {
                "output_tokens": 45,
                "input_tokens": 30,
                "cache_read_input_tokens": 500,
                "cache_creation_input_tokens": 200,
                "output_tokens_details": {"thinking_tokens": 12},
            },
        },
        {"type": "message_stop"},
    )


def test_fake_stream_unknown_events_and_cumulative_usage() -> None:
    plain, metered, calls = twice(fake_stream_with_new_shapes, stream_events)
    assert plain == metered  # the caller sees exactly the events it would see uninstrumented
    # Recent anthropic releases hand an event type they do not know to the caller; anthropic 1.0 drops it.
    # Either way the caller sees what it would see uninstrumented, and the usage after it is still read.
    seen = [event["type"] for event in metered]
    assert seen[:3] == ["message_start", "brand_new_event", "content_block_start"] or (
        ANTHROPIC < (2,) and seen[:2] == ["message_start", "content_block_start"]
    )
    assert len(calls) == 1
    # Overwritten by each cumulative delta, never summed: output 45 (not 1 + 20 + 45), input 30 (not 90).
    assert calls[0].usage == TokenUsage(
        input_tokens=30,
        cache_read_tokens=500,
        cache_write_tokens=50,
        cache_write_1h_tokens=150,
        output_tokens=45,
        reasoning_tokens=12,
    )
    assert calls[0].usage_source == USAGE_FROM_STREAM


def test_fake_stream_helper_with_new_shapes() -> None:
    def make() -> httpx2.Response:
        return sse(
            start_event({"input_tokens": 8, "output_tokens": 1}),
            {"type": "brand_new_event"},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
            {"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 6}},
            {"type": "message_stop"},
        )

    plain, metered, calls = twice(make, helper_events)
    assert plain == metered
    assert len(calls) == 1 and calls[0].usage == TokenUsage(input_tokens=8, output_tokens=6)


@pytest.mark.parametrize(
    "events",
    [
        [
            {"type": "message_start", "message": None},
            {"type": "message_delta", "usage": None},
            {"type": "message_stop"},
        ],
        [
            {"type": "message_start"},
            {"type": "message_delta", "delta": {}, "usage": "nope"},
            {"type": "message_stop"},
        ],
        [{"type": "message_start", "message": {"usage": {"input_tokens": None}}}, {"type": "message_stop"}],
        [{"type": "message_delta", "usage": {"output_tokens": 4}}],  # no message_start, no message_stop
        [],
    ],
)
def test_fake_malformed_streams(events: List[Dict[str, Any]]) -> None:
    plain, metered, calls = twice(lambda: sse(*events), stream_events)
    assert plain == metered
    assert len(calls) == 1
    usage = calls[0].usage
    if events and events[0]["type"] == "message_delta":
        assert usage == TokenUsage(output_tokens=4) and calls[0].usage_source == USAGE_FROM_STREAM
    else:
        assert usage is None and calls[0].usage_source == USAGE_UNAVAILABLE


def test_fake_error_event_mid_stream_reaches_the_caller_and_records_partial_usage() -> None:
    def make() -> httpx2.Response:
        return sse(
            start_event({"input_tokens": 11, "output_tokens": 1}),
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            {"type": "message_delta", "delta": {}, "usage": {"output_tokens": 9}},
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        )

    def consume(client: anthropic.Anthropic) -> Any:
        seen = []
        with pytest.raises(anthropic.APIStatusError) as caught:
            for event in client.messages.create(
                model="claude-sonnet-4-6", max_tokens=64, messages=MESSAGES, stream=True
            ):
                seen.append(event.type)
        return seen, type(caught.value), str(caught.value)

    plain, metered, calls = twice(make, consume)
    assert plain == metered
    assert len(calls) == 1
    assert calls[0].usage == TokenUsage(input_tokens=11, output_tokens=9)
    assert calls[0].usage_source == USAGE_PARTIAL_STREAM


# -- never break the host app ----------------------------------------------------------------------------


class Exploding:
    def submit(self, call: LLMCall) -> None:
        raise RuntimeError("sink down")

    def offer(self, call: LLMCall) -> bool:
        raise RuntimeError("collector down")


def test_a_failing_sink_or_collector_never_reaches_the_caller(
    integration: Any, serve: Any, recorded: Any
) -> None:
    integration("anthropic")
    previous = record.set_sink(Exploding())
    token = record.active_collector.set(Exploding())
    try:
        transport = serve(recorded(OPUS_JSON)[0], recorded(HAIKU_SSE)[0])
        client = anthropic.Anthropic(api_key="test", max_retries=0, http_client=sync_http(transport))
        message = client.messages.create(model="claude-3-opus-20240229", max_tokens=5, messages=MESSAGES)
        events = list(
            client.messages.create(
                model="claude-3-haiku-20240307", max_tokens=5, messages=MESSAGES, stream=True
            )
        )
    finally:
        record.active_collector.reset(token)
        record.set_sink(previous)
    assert message.usage.output_tokens == 220 and events[-1].type == "message_stop"


def test_an_internal_failure_leaves_the_call_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("bearlumen bug")

    monkeypatch.setattr(integration._Counts, "overwrite_from", broken)
    monkeypatch.setattr(integration._MessageStreamObserver, "on_item", broken)
    monkeypatch.setattr(integration._MessageStreamObserver, "on_end", broken)
    usage = {"input_tokens": 3, "output_tokens": 4}
    plain, metered, calls = twice(lambda: httpx2.Response(200, json=message_json(usage)), create)
    assert plain == metered
    assert calls == []  # nothing could be built: nothing recorded, and the caller never noticed
    plain, metered, calls = twice(fake_stream_with_new_shapes, stream_events)
    assert plain == metered
    plain, metered, calls = twice(fake_stream_with_new_shapes, helper_events)
    assert plain == metered


# -- install before import, late class copies (fresh interpreters) ---------------------------------------

ROOT = Path(__file__).resolve().parents[2]


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


PRELUDE = """
import sys, base64, json, httpx2, wrapt
from bearlumen.integrations import anthropic as integration
from bearlumen.metering import record
from tests.support.sinks import ListSink
sink = ListSink(); record.set_sink(sink)
BODY = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-haiku-20240307",
        "content": [], "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 4}}
def bedrock_beta_create():
    import anthropic
    transport = httpx2.MockTransport(lambda request: httpx2.Response(200, json=BODY))
    client = anthropic.AnthropicBedrock(aws_region="us-east-1", aws_access_key="a", aws_secret_key="b",
        max_retries=0, http_client=httpx2.Client(transport=transport))
    client.beta.messages.create(model="anthropic.claude-3-haiku-20240307-v1:0", max_tokens=5,
        messages=[{"role": "user", "content": "hi"}])
"""


def test_install_before_anthropic_is_imported_wraps_once_and_uninstalls_exactly() -> None:
    out = run_python(
        PRELUDE
        + """
integration.install()
assert "anthropic" not in sys.modules
import anthropic
from anthropic.resources.beta.messages.messages import Messages as Beta
from anthropic.lib.bedrock._beta_messages import Messages as BedrockBeta
beta = vars(Beta)["create"]
# The Bedrock class body ran after the beta class was patched: it copied our wrapper (bound to the class
# by the attribute access), which was then left alone (one layer).
copy = vars(BedrockBeta)["create"]
assert isinstance(copy, wrapt.BoundFunctionWrapper) and copy.__wrapped__ is beta.__wrapped__
bedrock_beta_create()
assert len(sink.calls) == 1 and sink.calls[0].provider == "aws", sink.calls
integration.uninstall()
assert not isinstance(vars(Beta)["create"], wrapt.FunctionWrapper)
assert vars(BedrockBeta)["create"] is vars(Beta)["create"]  # the copy is the plain function again
bedrock_beta_create()
assert len(sink.calls) == 1
print("ok")
"""
    )
    assert out.strip() == "ok"


def test_a_class_that_copied_our_wrapper_is_restored_by_uninstall() -> None:
    out = run_python(
        PRELUDE
        + """
import importlib, anthropic
import anthropic.lib.bedrock._beta_messages as module
original = vars(module.Messages)["create"]
integration.install()
module = importlib.reload(module)  # the class body runs again, copying the (now wrapped) beta method
copy = vars(module.Messages)["create"]
assert isinstance(copy, wrapt.BoundFunctionWrapper) and copy.__wrapped__ is original
integration.uninstall()
assert vars(module.Messages)["create"] is original  # no handle of ours covered it: restored all the same
print("ok")
"""
    )
    assert out.strip() == "ok"
