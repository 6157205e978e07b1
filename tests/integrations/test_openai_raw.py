"""`with_raw_response` and `with_streaming_response`, through the real client and recorded traffic.

- `with_raw_response` (header "true"): the integration reads usage through `.parse()`, which openai
  caches, so the caller's own `.parse()` returns the very same object.
- `with_streaming_response` (header "stream"): the body is the caller's. It is metered when the caller
  `.parse()`s it, or when it is closed after being read whole; otherwise it is recorded as usage
  unavailable. The integration never reads it.
- A `with_raw_response` helper built before `install()` holds openai's unpatched bound method; it is
  still metered (exactly once), and `uninstall()` restores it exactly.
"""

from __future__ import annotations

import gc
import json
from typing import Any, Callable, List

import openai
import pydantic
import pytest

from bearlumen.metering.record import (
    USAGE_FROM_RESPONSE,
    USAGE_FROM_STREAM,
    USAGE_UNAVAILABLE,
    LLMCall,
    TokenUsage,
)
from tests.support.cassettes import replay
from tests.support.clienthttp import openai_httpx
from tests.support.sinks import ListSink

MESSAGES: Any = [{"role": "user", "content": "Say this is a test"}]
CHAT = "otel-python-contrib/openai/test_chat_completion_with_content.yaml"  # 12 / 5
CHAT_STREAM = "otel-python-contrib/openai/test_chat_completion_streaming.yaml"  # 12 / 5, usage chunk
USAGE_12_5 = TokenUsage(input_tokens=12, output_tokens=5)


def make_client(**options: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", max_retries=0, **options)


@pytest.fixture
def calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("openai")
    return sink.calls


def sent_bodies() -> tuple[List[Any], Any]:
    bodies: List[Any] = []

    def hook(request: Any) -> Any:
        bodies.append(json.loads(request.body))
        return request

    return bodies, hook


# -- with_raw_response ---------------------------------------------------------------------------------


def test_raw_response_is_metered_and_parse_returns_the_same_object(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay(CHAT):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)

    assert isinstance(raw, openai._legacy_response.LegacyAPIResponse)
    assert [c.usage for c in calls] == [USAGE_12_5]
    completion = raw.parse()
    assert completion is raw.parse()
    assert calls[0].response_id == completion.id
    assert raw.headers.get("content-type", "").startswith("application/json")
    assert len(calls) == 1


def test_raw_response_prompt_caching(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_openai_prompt_caching.yaml"):
        for _ in range(2):
            client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)

    assert calls[1].usage == TokenUsage(input_tokens=125, cache_read_tokens=1024, output_tokens=353)
    assert len(calls) == 2


def test_raw_response_parse_path_like_langchain_structured_output(calls: List[LLMCall]) -> None:
    class StructuredAnswer(pydantic.BaseModel):
        rating: int
        joke: str

    client = make_client()
    with replay("openllmetry/openai/test_parsed_completion.yaml"):
        raw = client.chat.completions.with_raw_response.parse(
            model="gpt-4o", messages=MESSAGES, response_format=StructuredAnswer
        )

    assert isinstance(raw.parse().choices[0].message.parsed, StructuredAnswer)
    assert [c.usage for c in calls] == [TokenUsage(input_tokens=68, output_tokens=41)]


def test_raw_responses_embeddings_and_legacy_completions(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_responses.yaml"):
        client.with_raw_response.responses.create(model="gpt-4.1-nano", input="hi")  # root-level helper
        client.responses.with_raw_response.create(model="gpt-4.1-nano", input="hi")
    with replay("openllmetry/openai/test_embeddings.yaml"):
        client.embeddings.with_raw_response.create(model="text-embedding-ada-002", input="hi")
    with replay("openllmetry/openai/test_completion.yaml"):
        client.completions.with_raw_response.create(model="davinci-002", prompt="hi")

    assert [(c.operation, c.usage) for c in calls] == [
        ("responses", TokenUsage(input_tokens=14, output_tokens=8)),
        ("responses", TokenUsage(input_tokens=14, output_tokens=8)),
        ("embeddings", TokenUsage(input_tokens=8)),
        ("completions", TokenUsage(input_tokens=8, output_tokens=16)),
    ]


def test_raw_response_stream_is_metered_without_adding_include_usage(calls: List[LLMCall]) -> None:
    client = make_client()
    sent, hook = sent_bodies()
    with replay(CHAT_STREAM, before_record_request=hook):
        raw = client.chat.completions.with_raw_response.create(model="gpt-4", messages=MESSAGES, stream=True)
        stream = raw.parse()
        assert stream is raw.parse()
        chunks = list(stream)

    assert "stream_options" not in sent[-1]  # the caller may read these bytes: left as they asked
    assert chunks[-1].usage is not None  # (the recording has the chunk regardless)
    assert [(c.usage, c.usage_source, c.streamed) for c in calls] == [(USAGE_12_5, USAGE_FROM_STREAM, True)]


async def test_async_raw_response(calls: List[LLMCall]) -> None:
    client = openai.AsyncOpenAI(api_key="sk-test", max_retries=0)
    with replay(CHAT):
        raw = await client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)

    assert raw.parse().usage is not None
    assert [c.usage for c in calls] == [USAGE_12_5]


async def test_async_raw_response_stream(calls: List[LLMCall]) -> None:
    client = openai.AsyncOpenAI(api_key="sk-test", max_retries=0)
    with replay(CHAT_STREAM):
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4", messages=MESSAGES, stream=True
        )
        chunks = [c async for c in raw.parse()]

    assert len(chunks) == 8
    assert [c.usage for c in calls] == [USAGE_12_5]


# -- helpers built before install() ------------------------------------------------------------------------


def test_raw_helper_cached_before_install_is_metered_once(
    integration: Callable[[str], Any], sink: ListSink
) -> None:
    client = make_client()
    stale = client.chat.completions.with_raw_response  # cached on the resource, around the unpatched method
    assert client.chat.completions.with_raw_response is stale

    module = integration("openai")
    with replay("openllmetry/openai/test_chat.yaml"):
        raw = client.chat.completions.with_raw_response.create(model="gpt-3.5-turbo", messages=MESSAGES)
        stale.create(model="gpt-3.5-turbo", messages=MESSAGES)

    assert raw.parse().usage is not None
    assert [(c.usage.input_tokens, c.usage.output_tokens) for c in sink.calls if c.usage] == [
        (15, 19),
        (15, 31),
    ]
    assert len(sink.calls) == 2

    module.uninstall()
    assert "create" in vars(stale)  # the helper's own attribute was never touched
    assert client.chat.completions.with_raw_response.create is vars(stale)["create"]
    with replay("openllmetry/openai/test_chat.yaml"):
        stale.create(model="gpt-3.5-turbo", messages=MESSAGES)
    assert len(sink.calls) == 2


def test_streaming_response_helper_cached_before_install(
    integration: Callable[[str], Any], sink: ListSink
) -> None:
    client = make_client()
    stale = client.embeddings.with_streaming_response
    integration("openai")
    with (
        replay("openllmetry/openai/test_embeddings.yaml"),
        stale.create(model="text-embedding-ada-002", input="hi") as response,
    ):
        response.parse()

    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=8)]


async def test_async_raw_helper_cached_before_install(
    integration: Callable[[str], Any], sink: ListSink
) -> None:
    client = openai.AsyncOpenAI(api_key="sk-test", max_retries=0)
    stale = client.responses.with_raw_response
    integration("openai")
    with replay("openllmetry/openai/test_responses.yaml"):
        await stale.create(model="gpt-4.1-nano", input="hi")

    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=14, output_tokens=8)]


def test_helper_built_while_installed_is_inert_after_uninstall(
    integration: Callable[[str], Any], sink: ListSink
) -> None:
    client = make_client()
    module = integration("openai")
    helper = client.chat.completions.with_raw_response  # built around the patched method
    module.uninstall()

    with replay(CHAT):
        helper.create(model="gpt-4o-mini", messages=MESSAGES)
    assert sink.calls == []


# -- with_streaming_response -------------------------------------------------------------------------------


def test_streaming_response_parsed(calls: List[LLMCall]) -> None:
    client = make_client()
    with (
        replay(CHAT),
        client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        ) as response,
    ):
        assert calls == []  # nothing read yet
        completion = response.parse()

    assert [(c.usage, c.usage_source) for c in calls] == [(USAGE_12_5, USAGE_FROM_RESPONSE)]
    assert calls[0].response_id == completion.id


def test_streaming_response_read_whole_then_closed(calls: List[LLMCall]) -> None:
    client = make_client()
    with (
        replay(CHAT),
        client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        ) as response,
    ):
        data = response.json()
        assert calls == []

    assert isinstance(data, dict)
    assert [(c.usage, c.usage_source) for c in calls] == [(USAGE_12_5, USAGE_FROM_RESPONSE)]
    assert calls[0].model == "gpt-4o-mini-2024-07-18"
    assert calls[0].response_id == data["id"]


def test_streaming_response_iterated_by_the_caller_is_unavailable(calls: List[LLMCall]) -> None:
    client = make_client()
    with (
        replay(CHAT),
        client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        ) as response,
    ):
        body = b"".join(response.iter_bytes())

    assert json.loads(body)["usage"]["prompt_tokens"] == 12  # the caller got every byte
    assert [(c.usage, c.usage_source) for c in calls] == [(None, USAGE_UNAVAILABLE)]


def test_streaming_response_sse_parsed(calls: List[LLMCall]) -> None:
    client = make_client()
    with (
        replay(CHAT_STREAM),
        client.chat.completions.with_streaming_response.create(
            model="gpt-4", messages=MESSAGES, stream=True
        ) as response,
    ):
        chunks = list(response.parse())

    assert len(chunks) == 8
    assert [(c.usage, c.usage_source, c.streamed) for c in calls] == [(USAGE_12_5, USAGE_FROM_STREAM, True)]


def test_streaming_response_sse_lines_read_by_caller(calls: List[LLMCall]) -> None:
    client = make_client()
    sent, hook = sent_bodies()
    with (
        replay(CHAT_STREAM, before_record_request=hook),
        client.chat.completions.with_streaming_response.create(
            model="gpt-4", messages=MESSAGES, stream=True
        ) as response,
    ):
        lines = [line for line in response.iter_lines() if line]

    assert "stream_options" not in sent[-1]
    assert lines[-1] == "data: [DONE]"
    assert [(c.usage, c.usage_source, c.streamed) for c in calls] == [(None, USAGE_UNAVAILABLE, True)]


def test_streaming_response_sse_read_whole(calls: List[LLMCall]) -> None:
    client = make_client()
    with (
        replay(CHAT_STREAM),
        client.chat.completions.with_streaming_response.create(
            model="gpt-4", messages=MESSAGES, stream=True
        ) as response,
    ):
        response.read()

    assert [(c.usage, c.usage_source, c.streamed) for c in calls] == [(USAGE_12_5, USAGE_FROM_STREAM, True)]


def test_streaming_response_dropped_unclosed(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay(CHAT):
        manager = client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
        response = manager.__enter__()
        del manager, response
        gc.collect()

    assert [(c.usage, c.usage_source) for c in calls] == [(None, USAGE_UNAVAILABLE)]


async def test_async_streaming_response(calls: List[LLMCall]) -> None:
    client = openai.AsyncOpenAI(api_key="sk-test", max_retries=0)
    with replay(CHAT):
        async with client.chat.completions.with_streaming_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        ) as response:
            completion = await response.parse()
    with replay(CHAT_STREAM):
        async with client.chat.completions.with_streaming_response.create(
            model="gpt-4", messages=MESSAGES, stream=True
        ) as response:
            async for _line in response.iter_lines():
                pass

    assert completion.usage is not None
    assert [(c.usage, c.usage_source) for c in calls] == [
        (USAGE_12_5, USAGE_FROM_RESPONSE),
        (None, USAGE_UNAVAILABLE),
    ]


def test_other_streaming_responses_are_left_alone(calls: List[LLMCall], serve: Callable[..., Any]) -> None:
    """A fake models listing: an APIResponse of a method the integration does not meter."""
    transport = serve({"object": "list", "data": []})
    client = make_client(http_client=openai_httpx.Client(transport=transport))
    with client.models.with_streaming_response.list() as response:
        response.parse()

    assert calls == []
