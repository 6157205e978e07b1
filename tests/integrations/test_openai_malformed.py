"""Malformed responses through the real openai client: the caller gets exactly what openai gives.

Every body here is a FAKE (hand-made, served by an in-process `openai_httpx.MockTransport`): no recording has
these shapes. Each scenario runs twice, without and with the integration installed, and the caller's
outcome (the returned object dumped, or the exception's type and message, or the list of chunks) must
be identical. The integration must record what it can, `usage_source: "unavailable"` when usage cannot
be read, and nothing when the call failed.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

import openai
import pytest

from bearlumen.metering.record import USAGE_FROM_RESPONSE, USAGE_FROM_STREAM, USAGE_UNAVAILABLE, TokenUsage
from tests.support.clienthttp import openai_httpx
from tests.support.sinks import ListSink

MESSAGES: Any = [{"role": "user", "content": "hi"}]


def chat_body(**changes: Any) -> Any:
    body: Any = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
    }
    for key, value in changes.items():
        if value is DROP:
            body.pop(key)
        else:
            body[key] = value
    return body


DROP = object()


def dump(value: Any) -> Any:
    if isinstance(value, list):
        return [dump(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(warnings=False)
    return value


def outcome(run: Callable[[], Any]) -> Any:
    try:
        return ("returned", dump(run()))
    except Exception as exc:
        return ("raised", type(exc), str(exc))


def twice(integration: Callable[[str], Any], make_reply: Callable[[], Any], run: Callable[[Any], Any]) -> Any:
    """The outcome without and with the integration; asserts they are identical."""

    def once() -> Any:
        transport = openai_httpx.MockTransport(lambda request: make_reply())
        client = openai.OpenAI(
            api_key="sk-test", max_retries=0, http_client=openai_httpx.Client(transport=transport)
        )
        return outcome(lambda: run(client))

    plain = once()
    integration("openai")
    metered = once()
    assert metered == plain
    return metered


def json_reply(body: Any, content_type: str = "application/json") -> Callable[[], openai_httpx.Response]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return lambda: openai_httpx.Response(200, headers={"content-type": content_type}, content=content)


def sse_reply(*events: Any) -> Callable[[], openai_httpx.Response]:
    parts = []
    for event in events:
        if isinstance(event, tuple):
            name, data = event
            parts.append(f"event: {name}\ndata: {json.dumps(data)}\n\n")
        else:
            parts.append(f"data: {json.dumps(event)}\n\n")
    parts.append("data: [DONE]\n\n")
    content = "".join(parts).encode()
    return lambda: openai_httpx.Response(200, headers={"content-type": "text/event-stream"}, content=content)


def create_chat(client: Any) -> Any:
    return client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


@pytest.mark.parametrize(
    "body",
    [
        chat_body(usage=DROP),
        chat_body(usage=None),
        chat_body(usage={"prompt_tokens": None, "completion_tokens": None, "total_tokens": None}),
        chat_body(usage={"prompt_tokens": "11", "completion_tokens": "7"}),
        chat_body(usage={"prompt_tokens": -3, "completion_tokens": 1.5}),
        chat_body(usage="lots"),
        chat_body(usage=[11, 7]),
        {"object": "surprise", "weird": [1, 2, 3]},
        [1, 2, 3],
        {},
    ],
    ids=[
        "usage-missing",
        "usage-null",
        "usage-fields-null",
        "usage-strings",
        "usage-negative-and-float",
        "usage-a-string",
        "usage-a-list",
        "unknown-object",
        "json-list",
        "empty-object",
    ],
)
def test_unreadable_usage_is_unavailable(
    integration: Callable[[str], Any], sink: ListSink, body: Any
) -> None:
    result = twice(integration, json_reply(body), create_chat)

    assert result[0] == "returned"
    assert len(sink.calls) == 1
    call = sink.calls[0]
    assert call.usage is None
    assert call.usage_source == USAGE_UNAVAILABLE
    assert call.model in ("gpt-4o-mini-2024-07-18", "gpt-4o-mini")


@pytest.mark.parametrize(
    "body, usage, model, response_id",
    [
        (
            chat_body(choices=None),
            TokenUsage(input_tokens=11, output_tokens=7),
            "gpt-4o-mini-2024-07-18",
            "chatcmpl-fake",
        ),
        (chat_body(id=None, model=None), TokenUsage(input_tokens=11, output_tokens=7), "gpt-4o-mini", None),
        (chat_body(id=42, model=["x"]), TokenUsage(input_tokens=11, output_tokens=7), "gpt-4o-mini", None),
        (
            chat_body(usage={"prompt_tokens": 10, "completion_tokens": None}),
            TokenUsage(input_tokens=10),
            "gpt-4o-mini-2024-07-18",
            "chatcmpl-fake",
        ),
        (
            chat_body(
                usage={
                    "prompt_tokens": 10,
                    "completion_tokens": 2,
                    "prompt_tokens_details": {"cached_tokens": 50},
                }
            ),
            TokenUsage(cache_read_tokens=10, output_tokens=2),
            "gpt-4o-mini-2024-07-18",
            "chatcmpl-fake",
        ),
        (
            chat_body(
                usage={
                    "prompt_tokens": 10,
                    "completion_tokens": 2,
                    "prompt_tokens_details": ["cached"],
                    "completion_tokens_details": "reasoning",
                }
            ),
            TokenUsage(input_tokens=10, output_tokens=2),
            "gpt-4o-mini-2024-07-18",
            "chatcmpl-fake",
        ),
        (
            chat_body(
                usage={
                    "prompt_tokens": 100,
                    "completion_tokens": 20,
                    "prompt_tokens_details": {
                        "cached_tokens": 30,
                        "cache_write_tokens": 50,
                        "audio_tokens": None,
                    },
                    "completion_tokens_details": {"reasoning_tokens": 50},
                }
            ),
            TokenUsage(
                input_tokens=20,
                cache_read_tokens=30,
                cache_write_tokens=50,
                output_tokens=20,
                reasoning_tokens=20,
            ),
            "gpt-4o-mini-2024-07-18",
            "chatcmpl-fake",
        ),
    ],
    ids=[
        "choices-null",
        "id-model-null",
        "id-model-wrong-types",
        "completion-null",
        "cached-over-prompt",
        "details-wrong-types",
        "cache-write-and-reasoning-over-output",
    ],
)
def test_odd_but_readable_shapes(
    integration: Callable[[str], Any],
    sink: ListSink,
    body: Any,
    usage: TokenUsage,
    model: str,
    response_id: Optional[str],
) -> None:
    result = twice(integration, json_reply(body), create_chat)

    assert result[0] == "returned"
    assert [(c.usage, c.usage_source, c.model, c.response_id) for c in sink.calls] == [
        (usage, USAGE_FROM_RESPONSE, model, response_id)
    ]


@pytest.mark.parametrize(
    "content, content_type",
    [(b"not json at all", "application/json"), (b"plain words", "text/plain"), (b"", "application/json")],
    ids=["invalid-json", "text-plain", "empty-body"],
)
def test_non_json_bodies(
    integration: Callable[[str], Any], sink: ListSink, content: bytes, content_type: str
) -> None:
    result = twice(integration, json_reply(content, content_type), create_chat)

    if result[0] == "raised":
        assert sink.calls == []  # openai itself failed the call: nothing billable was seen
    else:
        assert [(c.usage, c.usage_source) for c in sink.calls] == [(None, USAGE_UNAVAILABLE)]


def test_http_error_with_odd_body_records_nothing(integration: Callable[[str], Any], sink: ListSink) -> None:
    reply = lambda: openai_httpx.Response(500, headers={"content-type": "application/json"}, content=b"{oops")  # noqa: E731
    result = twice(integration, reply, create_chat)

    assert result[0] == "raised" and result[1] is openai.InternalServerError
    assert sink.calls == []


def test_embeddings_without_usage(integration: Callable[[str], Any], sink: ListSink) -> None:
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.25]}],
        "model": "text-embedding-3-small",
        "usage": None,
    }
    twice(
        integration,
        json_reply(body),
        lambda c: c.embeddings.create(model="text-embedding-3-small", input="x", encoding_format="float"),
    )

    assert [(c.operation, c.usage, c.usage_source) for c in sink.calls] == [
        ("embeddings", None, USAGE_UNAVAILABLE)
    ]


def test_embeddings_body_openai_cannot_decode(integration: Callable[[str], Any], sink: ListSink) -> None:
    body = {"object": "list", "data": None, "model": "text-embedding-3-small", "usage": {"prompt_tokens": 1}}
    result = twice(
        integration,
        json_reply(body),
        lambda c: c.embeddings.create(model="text-embedding-3-small", input="x"),
    )

    assert result[0] == "raised"  # openai's own decoding fails; the caller sees exactly that
    assert sink.calls == []


def test_responses_without_usage(integration: Callable[[str], Any], sink: ListSink) -> None:
    body = {
        "id": "resp_fake",
        "object": "response",
        "status": "completed",
        "model": "gpt-4.1-nano",
        "output": None,
    }
    twice(integration, json_reply(body), lambda c: c.responses.create(model="gpt-4.1-nano", input="x"))

    assert [(c.operation, c.usage, c.usage_source, c.response_id) for c in sink.calls] == [
        ("responses", None, USAGE_UNAVAILABLE, "resp_fake")
    ]


# -- streams ---------------------------------------------------------------------------------------------


def stream_chat(**options: Any) -> Callable[[Any], Any]:
    def run(client: Any) -> Any:
        return list(
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, **options)
        )

    return run


def test_stream_chunks_lacking_fields(integration: Callable[[str], Any], sink: ListSink) -> None:
    reply = sse_reply(
        {}, {"choices": None}, {"id": None, "model": 5, "choices": [{"delta": None}]}, {"object": "x"}
    )
    result = twice(integration, reply, stream_chat())

    assert result[0] == "returned" and len(result[1]) == 4
    assert [(c.usage, c.usage_source, c.model, c.streamed) for c in sink.calls] == [
        (None, USAGE_UNAVAILABLE, "gpt-4o-mini", True)
    ]


def test_stream_with_unreadable_usage_chunk(integration: Callable[[str], Any], sink: ListSink) -> None:
    reply = sse_reply(
        {"id": "c1", "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "delta": {"content": "a"}}]},
        {"id": "c1", "choices": None, "usage": {"prompt_tokens": "many"}},
    )
    result = twice(integration, reply, stream_chat(stream_options={"include_usage": True}))

    assert len(result[1]) == 2
    assert [(c.usage, c.usage_source, c.response_id) for c in sink.calls] == [(None, USAGE_UNAVAILABLE, "c1")]


def test_stream_usage_chunk_with_null_choices_counts(
    integration: Callable[[str], Any], sink: ListSink
) -> None:
    reply = sse_reply(
        {"id": "c1", "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "delta": {"content": "a"}}]},
        {"id": "c1", "choices": None, "usage": {"prompt_tokens": 4, "completion_tokens": 1}},
    )
    twice(integration, reply, stream_chat(stream_options={"include_usage": True}))

    assert [(c.usage, c.usage_source) for c in sink.calls] == [
        (TokenUsage(input_tokens=4, output_tokens=1), USAGE_FROM_STREAM)
    ]


def test_stream_with_an_error_event(integration: Callable[[str], Any], sink: ListSink) -> None:
    reply = sse_reply(
        {"id": "c1", "model": "gpt-4o-mini-2024-07-18", "choices": [{"index": 0, "delta": {"content": "a"}}]},
        {"error": {"message": "server overloaded"}},
    )
    result = twice(integration, reply, stream_chat())

    assert result[0] == "raised" and result[1] is openai.APIError
    assert [(c.usage, c.usage_source) for c in sink.calls] == [(None, "stream_partial")]


def test_responses_stream_odd_events(integration: Callable[[str], Any], sink: ListSink) -> None:
    reply = sse_reply(
        ("response.created", {"type": "response.created", "response": None}),
        ("response.mystery", {"type": "response.mystery", "payload": [1, 2]}),
        (
            "response.in_progress",
            {"type": "response.in_progress", "response": {"id": "resp_1", "model": None}},
        ),
        ("response.completed", {"type": "response.completed", "response": {"id": "resp_1", "usage": None}}),
    )

    def run(client: Any) -> Any:
        return list(client.responses.create(model="gpt-4.1-nano", input="x", stream=True))

    result = twice(integration, reply, run)

    assert len(result[1]) == 4
    assert [(c.usage, c.usage_source, c.response_id, c.model) for c in sink.calls] == [
        (None, USAGE_UNAVAILABLE, "resp_1", "gpt-4.1-nano")
    ]


def test_responses_stream_final_event_without_response(
    integration: Callable[[str], Any], sink: ListSink
) -> None:
    reply = sse_reply(("response.completed", {"type": "response.completed"}))

    def run(client: Any) -> Any:
        return list(client.responses.create(model="gpt-4.1-nano", input="x", stream=True))

    twice(integration, reply, run)

    assert [(c.usage, c.usage_source) for c in sink.calls] == [(None, USAGE_UNAVAILABLE)]


async def test_async_malformed_body(integration: Callable[[str], Any], sink: ListSink) -> None:
    body = json.dumps(chat_body(usage={"prompt_tokens": None}, choices=None)).encode()

    async def once() -> Any:
        transport = openai_httpx.MockTransport(
            lambda request: openai_httpx.Response(
                200, headers={"content-type": "application/json"}, content=body
            )
        )
        client = openai.AsyncOpenAI(
            api_key="sk-test", max_retries=0, http_client=openai_httpx.AsyncClient(transport=transport)
        )
        result = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        return result.model_dump()

    plain = await once()
    integration("openai")
    assert await once() == plain
    assert [(c.usage, c.usage_source) for c in sink.calls] == [(None, USAGE_UNAVAILABLE)]


def test_list_results_are_never_touched(integration: Callable[[str], Any], sink: ListSink) -> None:
    def list_models(client: Any) -> Any:
        return list(client.models.list())

    twice(integration, json_reply({"object": "list", "data": []}), list_models)
    assert sink.calls == []


def test_unfinished_response_of_a_foreground_call_is_not_held_back(
    integration: Callable[[str], Any], sink: ListSink
) -> None:
    body = {
        "id": "resp_odd",
        "object": "response",
        "status": "in_progress",
        "model": "gpt-4.1-nano",
        "usage": None,
    }
    twice(integration, json_reply(body), lambda c: c.responses.create(model="gpt-4.1-nano", input="x"))

    assert [(c.usage, c.usage_source, c.response_id) for c in sink.calls] == [
        (None, USAGE_UNAVAILABLE, "resp_odd")
    ]
