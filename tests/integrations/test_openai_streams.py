"""openai integration, sync streams: recorded SSE bodies through the real client.

Streams are recorded once, however they end, with the usage the stream reported (or `unavailable` /
`stream_partial`, never an invented number), and the caller iterates exactly the chunks it would see
without instrumentation.

Some tests serve a recorded body "faithfully": like the real API, the usage-only chunk is sent only when
the request asked for `stream_options.include_usage`. That is how the instrumented and uninstrumented
runs are compared on equal terms (the cassette alone always contains the chunk).
"""

from __future__ import annotations

import gc
import json
from decimal import Decimal
from typing import Any, Callable, List

import openai
import pytest

from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import (
    USAGE_FROM_STREAM,
    USAGE_PARTIAL_STREAM,
    USAGE_UNAVAILABLE,
    TokenUsage,
)
from tests.support.cassettes import replay
from tests.support.clienthttp import openai_httpx
from tests.support.sinks import ListSink

PRICES = PriceBook()
MESSAGES: Any = [{"role": "user", "content": "Say this is a test"}]
CHAT_WITH_USAGE = "otel-python-contrib/openai/test_chat_completion_streaming.yaml"  # 12 / 5, gpt-4-0613
CHAT_WITHOUT_USAGE = "otel-python-contrib/openai/test_chat_completion_streaming_not_complete.yaml"
RESPONSES_STREAM = "openllmetry/openai/test_responses_streaming.yaml"  # 18/79 and 18/80


def sent_bodies() -> tuple[List[Any], Any]:
    """Bodies of the requests the client sent during a replay (`replay(..., before_record_request=hook)`)."""
    bodies: List[Any] = []

    def hook(request: Any) -> Any:
        bodies.append(json.loads(request.body))
        return request

    return bodies, hook


def make_client(**options: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", max_retries=0, **options)


def dumps(items: List[Any]) -> List[Any]:
    return [item.model_dump() for item in items]


def is_usage_only_event(event: bytes) -> bool:
    for line in event.split(b"\n"):
        if line.startswith(b"data: {"):
            data = json.loads(line[6:])
            return data.get("choices") == [] and data.get("usage") is not None
    return False


def strip_usage_chunk(body: bytes) -> bytes:
    return b"\n\n".join(event for event in body.split(b"\n\n") if not is_usage_only_event(event))


def faithful(interaction: Any) -> Callable[[openai_httpx.Request], openai_httpx.Response]:
    """Answer like the API: the usage-only chunk only when the request asked for include_usage."""

    def answer(request: openai_httpx.Request) -> openai_httpx.Response:
        options = json.loads(request.content).get("stream_options") or {}
        body = (
            interaction.body if options.get("include_usage") is True else strip_usage_chunk(interaction.body)
        )
        return openai_httpx.Response(interaction.status, headers=interaction.headers, content=body)

    return answer


@pytest.fixture
def openai_integration(integration: Callable[[str], Any]) -> Any:
    return integration("openai")


# -- include_usage policy --------------------------------------------------------------------------------


def test_explicit_include_usage_keeps_the_usage_chunk_visible(
    openai_integration: Any, sink: ListSink
) -> None:
    client = make_client()
    sent, hook = sent_bodies()
    with replay(CHAT_WITH_USAGE, before_record_request=hook):
        chunks = list(
            client.chat.completions.create(
                model="gpt-4", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )

    assert sent[-1]["stream_options"] == {"include_usage": True}
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # the caller asked for it
    assert len(sink.calls) == 1
    call = sink.calls[0]
    assert call.usage == TokenUsage(input_tokens=12, output_tokens=5)
    assert call.usage_source == USAGE_FROM_STREAM
    assert call.streamed is True
    assert call.model == "gpt-4-0613"
    assert call.model_requested == "gpt-4"
    assert call.response_id == "chatcmpl-ASYMZ4oSykiIFK4lXLReDiKyAjsQl"
    assert "include_usage_added" not in call.extra
    # gpt-4-0613: $30 input, $60 output per 1M tokens.
    assert PRICES.price(call.provider, call.model, call.usage, call.timestamp).cost_usd == Decimal("0.00066")


def test_added_include_usage_chunk_is_hidden_cassette(
    integration: Callable[[str], Any], sink: ListSink
) -> None:
    client = make_client()
    sent, hook = sent_bodies()
    with replay(CHAT_WITH_USAGE, before_record_request=hook):
        plain = list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))
    assert "stream_options" not in sent[-1]

    integration("openai")
    with replay(CHAT_WITH_USAGE, before_record_request=hook):
        metered = list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))

    assert sent[-1]["stream_options"] == {"include_usage": True}
    # The recording contains the usage chunk either way; the API would not send it uninstrumented.
    assert plain[-1].choices == [] and plain[-1].usage is not None
    assert dumps(metered) == dumps(plain[:-1])
    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=12, output_tokens=5)]
    assert sink.calls[0].usage_source == USAGE_FROM_STREAM
    assert sink.calls[0].extra == {"include_usage_added": True}


@pytest.mark.parametrize(
    "cassette_path, usage",
    [
        (CHAT_WITH_USAGE, TokenUsage(input_tokens=12, output_tokens=5)),
        (
            "otel-python-contrib/openai/test_chat_completion_multiple_choices_streaming.yaml",
            TokenUsage(input_tokens=26, output_tokens=104),
        ),
        (
            "otel-python-contrib/openai/test_chat_completion_multiple_tools_streaming_with_content.yaml",
            TokenUsage(input_tokens=75, output_tokens=51),
        ),
    ],
)
def test_added_include_usage_user_sees_same_chunks_as_uninstrumented(
    integration: Callable[[str], Any],
    sink: ListSink,
    recorded: Callable[[str], Any],
    serve: Callable[..., Any],
    cassette_path: str,
    usage: TokenUsage,
) -> None:
    interaction = recorded(cassette_path)[0]
    plain_transport = serve(answer=faithful(interaction))
    plain = list(
        make_client(http_client=openai_httpx.Client(transport=plain_transport)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
    )

    integration("openai")
    metered_transport = serve(answer=faithful(interaction))
    metered = list(
        make_client(http_client=openai_httpx.Client(transport=metered_transport)).chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
    )

    assert "stream_options" not in plain_transport.request_json()
    assert metered_transport.request_json()["stream_options"] == {"include_usage": True}
    assert dumps(metered) == dumps(plain)
    assert all(chunk.usage is None for chunk in metered)
    assert [c.usage for c in sink.calls] == [usage]


@pytest.mark.parametrize(
    "options, sent",
    [
        ({"stream_options": {"include_usage": False}}, {"include_usage": False}),
        ({"stream_options": None}, None),
        ({"extra_body": {"stream_options": {"include_usage": False}}}, {"include_usage": False}),
    ],
)
def test_explicit_stream_options_are_never_overridden(
    openai_integration: Any,
    sink: ListSink,
    recorded: Callable[[str], Any],
    serve: Callable[..., Any],
    options: Any,
    sent: Any,
) -> None:
    interaction = recorded(CHAT_WITH_USAGE)[0]
    transport = serve(answer=faithful(interaction))
    client = make_client(http_client=openai_httpx.Client(transport=transport))

    chunks = list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True, **options))

    assert transport.request_json()["stream_options"] == sent
    assert len(chunks) == 7
    assert len(sink.calls) == 1
    call = sink.calls[0]
    assert call.usage is None
    assert call.usage_source == USAGE_UNAVAILABLE
    assert call.streamed is True
    assert call.model == "gpt-4-0613"


def test_stream_without_usage_is_unavailable_not_invented(
    integration: Callable[[str], Any], sink: ListSink
) -> None:
    client = make_client()
    with replay(CHAT_WITHOUT_USAGE):
        plain = list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))
    integration("openai")
    with replay(CHAT_WITHOUT_USAGE):
        metered = list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))

    assert dumps(metered) == dumps(plain)
    assert len(sink.calls) == 1
    call = sink.calls[0]
    assert call.usage is None
    assert call.usage_source == USAGE_UNAVAILABLE
    assert call.model == "gpt-4-0613"
    assert call.response_id == "chatcmpl-ASYMZbRqo8Bkz53FVzaTj7W7feOn4"


def test_tools_stream_without_usage(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    tools: Any = [
        {"type": "function", "function": {"name": "get_current_weather", "parameters": {"type": "object"}}}
    ]
    with replay("openllmetry/openai/test_chat_tools_streaming.yaml"):
        chunks = list(
            client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES, stream=True, tools=tools)
        )

    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert [(c.usage, c.usage_source, c.model) for c in sink.calls] == [
        (None, USAGE_UNAVAILABLE, "gpt-3.5-turbo-0125")
    ]


@pytest.mark.parametrize(
    "base_url, policy, added",
    [
        ("http://localhost:8000/v1", "auto", False),
        ("http://localhost:8000/v1", "always", True),
        ("https://api.openai.com/v1", "never", False),
        ("https://eu.api.openai.com/v1", "auto", True),
    ],
)
def test_include_usage_policy_by_server(
    openai_integration: Any,
    sink: ListSink,
    recorded: Callable[[str], Any],
    serve: Callable[..., Any],
    base_url: str,
    policy: str,
    added: bool,
) -> None:
    interaction = recorded(CHAT_WITH_USAGE)[0]
    transport = serve(answer=faithful(interaction))
    client = make_client(base_url=base_url, http_client=openai_httpx.Client(transport=transport))
    openai_integration.set_stream_usage_policy(policy)
    try:
        chunks = list(client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True))
    finally:
        openai_integration.set_stream_usage_policy("auto")

    assert ("stream_options" in transport.request_json()) is added
    assert len(chunks) == 7
    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=12, output_tokens=5) if added else None]


def test_unknown_policy_is_rejected(openai_integration: Any) -> None:
    with pytest.raises(ValueError):
        openai_integration.set_stream_usage_policy("sometimes")


@pytest.mark.parametrize(
    "api_version, added", [("2024-10-21", True), ("2024-06-01", False), ("preview", True)]
)
def test_azure_stream_include_usage_by_api_version(
    openai_integration: Any,
    sink: ListSink,
    recorded: Callable[[str], Any],
    serve: Callable[..., Any],
    api_version: str,
    added: bool,
) -> None:
    """No Azure recording exists: the recorded OpenAI stream is served faithfully on the Azure URL."""
    interaction = recorded(CHAT_WITH_USAGE)[0]
    transport = serve(answer=faithful(interaction))
    client = openai.AzureOpenAI(
        api_key="azure-test",
        api_version=api_version,
        azure_endpoint="https://example-resource.openai.azure.com",
        max_retries=0,
        http_client=openai_httpx.Client(transport=transport),
    )

    chunks = list(client.chat.completions.create(model="prod-gpt4", messages=MESSAGES, stream=True))

    assert ("stream_options" in transport.request_json()) is added
    assert len(chunks) == 7
    call = sink.calls[0]
    assert (call.provider, call.model_requested, call.model) == ("azure", "prod-gpt4", "gpt-4-0613")
    assert call.usage == (TokenUsage(input_tokens=12, output_tokens=5) if added else None)


# -- however the stream ends, one event ----------------------------------------------------------------


def test_with_statement(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    with (
        replay(CHAT_WITH_USAGE),
        client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True) as stream,
    ):
        assert isinstance(stream, openai.Stream)
        texts = [c.choices[0].delta.content for c in stream]

    assert "".join(t or "" for t in texts) == '"This is a test."'
    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=12, output_tokens=5)]


def test_manual_next_loop(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    with replay(CHAT_WITH_USAGE):
        stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        seen = 0
        while True:
            try:
                next(stream)
            except StopIteration:
                break
            seen += 1

    assert seen == 7
    assert [c.usage_source for c in sink.calls] == [USAGE_FROM_STREAM]


def test_break_then_garbage_collection_records_partial_once(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    with replay(CHAT_WITH_USAGE):
        stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        for index, _chunk in enumerate(stream):
            if index == 1:
                break
        assert sink.calls == []  # still open: the caller may come back for more
        del stream
        gc.collect()

    assert len(sink.calls) == 1
    call = sink.calls[0]
    assert call.usage is None
    assert call.usage_source == USAGE_PARTIAL_STREAM
    assert call.model == "gpt-4-0613"
    assert call.response_id == "chatcmpl-ASYMZ4oSykiIFK4lXLReDiKyAjsQl"


def test_close_records_partial_once(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    with replay(CHAT_WITH_USAGE):
        stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        next(stream)
        stream.close()
        assert [c.usage_source for c in sink.calls] == [USAGE_PARTIAL_STREAM]
        stream.close()
        del stream
        gc.collect()

    assert len(sink.calls) == 1


def test_stream_never_iterated_is_recorded_when_dropped(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    with replay(CHAT_WITH_USAGE):
        stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        del stream
        gc.collect()

    assert [(c.usage, c.usage_source) for c in sink.calls] == [(None, USAGE_PARTIAL_STREAM)]


def test_exception_mid_stream_records_partial_and_propagates_unchanged(
    integration: Callable[[str], Any],
    sink: ListSink,
    recorded: Callable[[str], Any],
    serve: Callable[..., Any],
) -> None:
    """The recorded body cut inside its third chunk (edited), as a dropped connection would leave it."""
    body = recorded(CHAT_WITH_USAGE)[0].body
    events = body.split(b"\n\n")
    broken = b"\n\n".join(events[:2]) + b"\n\n" + events[2][:40] + b"\n\n"

    def run() -> Any:
        transport = serve(
            openai_httpx.Response(200, headers={"content-type": "text/event-stream"}, content=broken)
        )
        client = make_client(http_client=openai_httpx.Client(transport=transport))
        stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        seen = []
        with pytest.raises(Exception) as raised:
            for chunk in stream:
                seen.append(chunk)
        return dumps(seen), type(raised.value), str(raised.value)

    plain = run()
    integration("openai")
    metered = run()

    assert metered == plain
    assert [(c.usage, c.usage_source) for c in sink.calls] == [(None, USAGE_PARTIAL_STREAM)]


# -- the .stream() helper goes through create(): counted there, once --------------------------------------


def test_stream_helper_with_explicit_usage(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    with (
        replay(CHAT_WITH_USAGE),
        client.chat.completions.stream(
            model="gpt-4", messages=MESSAGES, stream_options={"include_usage": True}
        ) as stream,
    ):
        events = list(stream)
        final = stream.get_final_completion()

    assert any(event.type == "content.done" for event in events)
    assert final.usage is not None and final.usage.prompt_tokens == 12
    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=12, output_tokens=5)]


def test_stream_helper_with_added_usage_matches_uninstrumented(
    integration: Callable[[str], Any],
    sink: ListSink,
    recorded: Callable[[str], Any],
    serve: Callable[..., Any],
) -> None:
    interaction = recorded(CHAT_WITH_USAGE)[0]

    def run() -> Any:
        transport = serve(answer=faithful(interaction))
        client = make_client(http_client=openai_httpx.Client(transport=transport))
        with client.chat.completions.stream(model="gpt-4", messages=MESSAGES) as stream:
            events = [event.type for event in stream]
            final = stream.get_final_completion()
        return events, final.model_dump()

    plain = run()
    integration("openai")
    metered = run()

    assert metered == plain
    assert plain[1]["usage"] is None  # the helper's own result is untouched
    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=12, output_tokens=5)]


def test_stream_helper_get_final_completion_only(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    with replay(CHAT_WITH_USAGE), client.chat.completions.stream(model="gpt-4", messages=MESSAGES) as stream:
        final = stream.get_final_completion()

    assert final.choices[0].message.content == '"This is a test."'
    assert len(sink.calls) == 1


def test_stream_helper_left_early_records_partial_once(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    with replay(CHAT_WITH_USAGE):
        with client.chat.completions.stream(model="gpt-4", messages=MESSAGES) as stream:
            next(iter(stream))
        del stream
        gc.collect()

    assert [c.usage_source for c in sink.calls] == [USAGE_PARTIAL_STREAM]


# -- Responses streams -------------------------------------------------------------------------------


def test_responses_stream_create_and_helper(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    prompt = "Tell me a three sentence bedtime story about a unicorn."
    with replay(RESPONSES_STREAM):
        events = list(client.responses.create(model="gpt-4.1-nano", input=prompt, stream=True))
        with client.responses.stream(model="gpt-4.1-nano", input=prompt) as stream:
            final = stream.get_final_response()

    assert events[-1].type == "response.completed"
    assert final.usage is not None and final.usage.output_tokens == 80
    assert [c.usage for c in sink.calls] == [
        TokenUsage(input_tokens=18, output_tokens=79),
        TokenUsage(input_tokens=18, output_tokens=80),
    ]
    first = sink.calls[0]
    assert first.operation == "responses"
    assert first.streamed is True
    assert first.usage_source == USAGE_FROM_STREAM
    assert first.model == "gpt-4.1-nano-2025-04-14"
    assert first.response_id == events[-1].response.id
    # gpt-4.1-nano: $0.10 input, $0.40 output per 1M.
    assert PRICES.price("openai", first.model, first.usage, first.timestamp).cost_usd == Decimal("0.0000334")


def test_responses_stream_otel_recording(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    with replay("otel-python-contrib/openai/test_responses_create_streaming[content_mode0].yaml"):
        for _event in client.responses.create(model="gpt-4o-mini", input="Say this is a test", stream=True):
            pass

    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=22, output_tokens=6)]
    assert sink.calls[0].extra == {"service_tier": "default"}


@pytest.mark.parametrize("final_event", ["response.incomplete", "response.failed"])
def test_responses_stream_usage_from_incomplete_or_failed(
    openai_integration: Any,
    sink: ListSink,
    recorded: Callable[[str], Any],
    serve: Callable[..., Any],
    final_event: str,
) -> None:
    """The recorded stream with its final event renamed (edited) to the other final event types."""
    interaction = recorded(RESPONSES_STREAM)[0]
    body = interaction.body.replace(b"response.completed", final_event.encode())
    transport = serve(openai_httpx.Response(200, headers=interaction.headers, content=body))
    client = make_client(http_client=openai_httpx.Client(transport=transport))

    events = list(client.responses.create(model="gpt-4.1-nano", input="story", stream=True))

    assert events[-1].type == final_event
    assert [(c.usage, c.usage_source) for c in sink.calls] == [
        (TokenUsage(input_tokens=18, output_tokens=79), USAGE_FROM_STREAM)
    ]


def test_responses_stream_break_records_partial_once(openai_integration: Any, sink: ListSink) -> None:
    client = make_client()
    with replay(RESPONSES_STREAM):
        stream = client.responses.create(model="gpt-4.1-nano", input="story", stream=True)
        for event in stream:
            if event.type == "response.output_text.delta":
                break
        del stream, event
        gc.collect()

    assert len(sink.calls) == 1
    call = sink.calls[0]
    assert (call.usage, call.usage_source) == (None, USAGE_PARTIAL_STREAM)
    assert call.model == "gpt-4.1-nano-2025-04-14"
    assert call.response_id is not None and call.response_id.startswith("resp_")


def test_legacy_completions_stream(integration: Callable[[str], Any], sink: ListSink) -> None:
    client = make_client()
    cassette = "openllmetry/openai/test_async_completion_streaming.yaml"
    sent, hook = sent_bodies()
    with replay(cassette, before_record_request=hook):
        plain = [list(client.completions.create(model="davinci-002", prompt="Tell me a joke", stream=True))]
    assert "stream_options" not in sent[-1]
    integration("openai")
    with replay(cassette, before_record_request=hook):
        metered = [
            list(client.completions.create(model="davinci-002", prompt="Tell me a joke", stream=True))
            for _ in range(3)
        ]

    assert sent[-1]["stream_options"] == {"include_usage": True}
    assert dumps(metered[0]) == dumps(plain[0])
    assert [(c.operation, c.usage, c.usage_source, c.streamed) for c in sink.calls] == [
        ("completions", None, USAGE_UNAVAILABLE, True)
    ] * 3


def test_streams_attribute_to_the_scope_of_the_call(openai_integration: Any, sink: ListSink) -> None:
    import bearlumen

    client = make_client()
    with replay(CHAT_WITH_USAGE):
        with bearlumen.workflow("support"), bearlumen.agent("triage"):
            stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        chunks = list(stream)  # consumed outside the scope

    assert len(chunks) == 7
    attribution = sink.calls[0].attribution
    assert (attribution.workflow_id, attribution.agent_id) == ("support", "triage")
