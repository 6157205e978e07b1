"""Chat streams to OpenAI-compatible hosts: asked for usage when the host is listed (documented list or
`stream_usage_hosts`), the caller's stream unchanged, and a host that rejects `stream_options` still
served. Real openai client; a local host answering in OpenAI's documented shapes (`host` fixture), and
recorded DeepSeek traffic for a host of the documented list."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, List

import openai
import pytest
from bearlumen.integrations import _stream_usage

from bearlumen.metering.record import USAGE_FROM_STREAM, USAGE_UNAVAILABLE
from examples._compatible_host import CompatibleHost, Turn
from tests.support.cassettes import replay
from tests.support.sinks import ListSink

MESSAGES: Any = [{"role": "user", "content": "Say hello"}]
HELLO = Turn(text="Hello there friend", prompt_tokens=12, completion_tokens=4)


def chunks(server: CompatibleHost, **options: Any) -> List[dict[str, Any]]:
    """What the caller iterates, each chunk as a dict (less the id and time, which differ per answer)."""
    client = openai.OpenAI(base_url=server.url, api_key="local", max_retries=0)
    stream = client.chat.completions.create(model="llama3", messages=MESSAGES, stream=True, **options)
    return [chunk.model_dump(exclude={"id", "created"}) for chunk in stream]


def test_an_unlisted_host_is_not_asked(metering: Callable[..., ListSink], host: Callable[..., Any]) -> None:
    sink = metering()
    server = host([HELLO])
    seen = chunks(server)

    assert "stream_options" not in server.requests[0]
    assert len(seen) == 5  # role, three words, finish
    (call,) = sink.calls
    assert (call.usage, call.usage_source) == (None, USAGE_UNAVAILABLE)


@pytest.mark.parametrize("listed", ["127.0.0.1", "127.0.0.1:{port}"])
def test_a_listed_host_reports_exact_tokens_and_the_caller_sees_the_same_chunks(
    metering: Callable[..., ListSink], host: Callable[..., Any], listed: str
) -> None:
    server = host([HELLO, HELLO])
    plain = chunks(server)  # not instrumented
    port = server.url.split(":")[2].split("/")[0]
    sink = metering(stream_usage_hosts=[listed.format(port=port)])
    seen = chunks(server)

    assert server.requests[1]["stream_options"] == {"include_usage": True}
    assert seen == plain  # the usage-only chunk the caller did not ask for is not in its stream
    (call,) = sink.calls
    assert (call.usage.input_tokens, call.usage.output_tokens) == (12, 4)  # type: ignore[union-attr]
    assert call.usage_source == USAGE_FROM_STREAM and call.extra["include_usage_added"] is True


def test_another_port_of_a_listed_host_port_is_not_asked(
    metering: Callable[..., ListSink], host: Callable[..., Any]
) -> None:
    metering(stream_usage_hosts=["127.0.0.1:1"])
    server = host([HELLO])
    chunks(server)
    assert "stream_options" not in server.requests[0]


def test_a_host_that_rejects_stream_options_gets_the_callers_request_and_is_remembered(
    metering: Callable[..., ListSink], host: Callable[..., Any]
) -> None:
    server = host([HELLO, HELLO, HELLO], rejects_stream_options=True)
    plain = chunks(server)
    sink = metering(stream_usage_hosts=["127.0.0.1"])
    first = chunks(server)
    second = chunks(server)

    sent = [request.get("stream_options") for request in server.requests]
    # plain; then ours with the field (refused, 400), resent as the caller wrote it; then never asked again
    assert sent == [None, {"include_usage": True}, None, None]
    assert first == second == plain
    assert [(c.usage, c.usage_source) for c in sink.calls] == [(None, USAGE_UNAVAILABLE)] * 2
    assert not any(c.extra.get("include_usage_added") for c in sink.calls)


def test_async_streams_get_the_same_resend(
    metering: Callable[..., ListSink], host: Callable[..., Any]
) -> None:
    server = host([HELLO], rejects_stream_options=True)
    sink = metering(stream_usage_hosts=["127.0.0.1"])

    async def run() -> List[str]:
        client = openai.AsyncOpenAI(base_url=server.url, api_key="local", max_retries=0)
        stream = await client.chat.completions.create(model="llama3", messages=MESSAGES, stream=True)
        return [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]

    assert "".join(asyncio.run(run())) == "Hello there friend"
    assert [r.get("stream_options") for r in server.requests] == [{"include_usage": True}, None]
    assert len(sink.calls) == 1


def test_the_callers_own_stream_options_are_never_resent(
    metering: Callable[..., ListSink], host: Callable[..., Any]
) -> None:
    sink = metering(stream_usage_hosts=["127.0.0.1"])
    server = host([HELLO], rejects_stream_options=True)

    with pytest.raises(openai.BadRequestError) as raised:
        chunks(server, stream_options={"include_usage": True})

    assert raised.value.status_code == 400
    port = int(server.url.split(":")[2].split("/")[0])
    assert len(server.requests) == 1 and not _stream_usage.rejects("127.0.0.1", port)
    assert sink.calls == []


def test_a_host_of_the_documented_list_on_recorded_traffic(metering: Callable[..., ListSink]) -> None:
    """DeepSeek (api.deepseek.com, in STREAM_USAGE_HOSTS): recorded real stream, usage on its last chunk
    (INDEX.tsv: prompt_tokens=32 completion_tokens=324)."""
    assert "api.deepseek.com" in _stream_usage.STREAM_USAGE_HOSTS
    sink = metering()
    client = openai.OpenAI(base_url="https://api.deepseek.com/v1", api_key="test", max_retries=0)
    with replay("openllmetry/deepseek/test_chat_streaming_metrics.yaml"):
        stream = client.chat.completions.create(model="deepseek-chat", messages=MESSAGES, stream=True)
        seen = list(stream)

    assert len(seen) == 326  # every recorded event reaches the caller (the usage rides on a content chunk)
    (call,) = sink.calls
    assert call.provider == "deepseek" and call.extra["include_usage_added"] is True
    assert (call.usage.input_tokens, call.usage.output_tokens) == (32, 324)  # type: ignore[union-attr]
