"""Background responses (`responses.create(background=True)`): recorded once, when seen finished.

The bodies are real recorded responses, served by an in-process transport and edited where a background
run differs: the `create()` answer is the recorded response with `status: "queued"` and no usage yet,
the `retrieve()` answer is the recorded finished response; for streams, the recorded event stream is
cut in two (the connection dropped, then `responses.retrieve(id, stream=True, starting_after=n)` resumes
it, which is what `responses.stream(response_id=...)` calls).
"""

from __future__ import annotations

import copy
from typing import Any, Callable, List

import openai
import pytest

import bearlumen
from bearlumen.metering.record import USAGE_FROM_RESPONSE, USAGE_FROM_STREAM, TokenUsage
from tests.support.clienthttp import openai_httpx
from tests.support.sinks import ListSink

RESPONSES = "openllmetry/openai/test_responses.yaml"  # 14 / 8
RESPONSES_STREAM = "openllmetry/openai/test_responses_streaming.yaml"  # 18 / 79


@pytest.fixture
def openai_installed(integration: Callable[[str], Any]) -> Any:
    return integration("openai")


def client_for(transport: Any) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-test", max_retries=0, http_client=openai_httpx.Client(transport=transport)
    )


def json_response(body: Any) -> openai_httpx.Response:
    return openai_httpx.Response(200, json=body)


def test_background_response_recorded_once_when_retrieved_finished(
    openai_installed: Any, sink: ListSink, recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    finished = recorded(RESPONSES)[0].json
    queued = copy.deepcopy(finished)
    queued.update(status="queued", usage=None, output=[], background=True)
    in_progress = dict(queued, status="in_progress")
    transport = serve(
        json_response(queued),
        json_response(in_progress),
        json_response(finished),
        json_response(finished),
    )
    client = client_for(transport)

    with bearlumen.workflow("nightly"), bearlumen.agent("summariser"):
        created = client.responses.create(model="gpt-4.1-nano", input="Say hi", background=True)
    assert created.status == "queued"
    assert sink.calls == []  # no usage yet: nothing recorded

    assert client.responses.retrieve(created.id).status == "in_progress"
    assert sink.calls == []
    done = client.responses.retrieve(created.id)
    assert done.status == "completed"
    client.responses.retrieve(created.id)  # polling again records nothing more

    assert len(sink.calls) == 1
    call = sink.calls[0]
    assert call.usage == TokenUsage(input_tokens=14, output_tokens=8)
    assert (call.operation, call.model_requested, call.model) == ("responses", "gpt-4.1-nano", done.model)
    assert call.response_id == created.id
    assert call.usage_source == USAGE_FROM_RESPONSE
    assert (call.attribution.workflow_id, call.attribution.agent_id) == ("nightly", "summariser")
    assert [r.method for r in transport.requests] == ["POST", "GET", "GET", "GET"]


def test_retrieve_of_a_response_not_created_here_records_nothing(
    openai_installed: Any, sink: ListSink, recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    finished = recorded(RESPONSES)[0].json
    client = client_for(serve(json_response(finished), json_response(finished)))

    client.responses.create(model="gpt-4.1-nano", input="Say hi")  # recorded here, once
    client.responses.retrieve(finished["id"])  # the same response fetched again

    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=14, output_tokens=8)]


def test_cancelled_background_response(
    openai_installed: Any, sink: ListSink, recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    finished = recorded(RESPONSES)[0].json
    queued = dict(copy.deepcopy(finished), status="queued", usage=None, background=True)
    cancelled = dict(copy.deepcopy(finished), status="cancelled", usage=None, background=True)
    client = client_for(serve(json_response(queued), json_response(cancelled)))

    created = client.responses.create(model="gpt-4.1-nano", input="Say hi", background=True)
    client.responses.cancel(created.id)

    assert [(c.usage, c.usage_source, c.response_id) for c in sink.calls] == [
        (None, "unavailable", created.id)
    ]


def sse_events(body: bytes) -> List[bytes]:
    return [event + b"\n\n" for event in body.split(b"\n\n") if event.strip()]


def test_background_stream_dropped_then_resumed_is_recorded_once(
    openai_installed: Any, sink: ListSink, recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    interaction = recorded(RESPONSES_STREAM)[0]
    events = sse_events(interaction.body)
    first_part, rest = b"".join(events[:5]), b"".join(events[5:])
    headers = interaction.headers
    transport = serve(
        openai_httpx.Response(200, headers=headers, content=first_part),
        openai_httpx.Response(200, headers=headers, content=rest),
    )
    client = client_for(transport)

    with bearlumen.agent("storyteller"):
        stream = client.responses.create(model="gpt-4.1-nano", input="story", stream=True, background=True)
    seen: List[Any] = list(stream)  # the connection ends before the response does
    response_id = seen[0].response.id
    assert seen[-1].type != "response.completed"
    assert sink.calls == []  # still running server-side: not a partial, not yet recorded

    resumed = list(
        client.responses.retrieve(response_id, stream=True, starting_after=seen[-1].sequence_number)
    )

    assert resumed[-1].type == "response.completed" and resumed[-1].response.id == response_id
    assert transport.requests[1].method == "GET" and transport.requests[1].url.params["stream"] == "true"
    assert len(sink.calls) == 1
    call = sink.calls[0]
    assert (call.usage, call.usage_source, call.streamed) == (
        TokenUsage(input_tokens=18, output_tokens=79),
        USAGE_FROM_STREAM,
        True,
    )
    assert call.response_id == response_id
    assert call.attribution.agent_id == "storyteller"


def test_resumed_stream_of_a_response_recorded_already_records_nothing(
    openai_installed: Any, sink: ListSink, recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    interaction = recorded(RESPONSES_STREAM)[0]
    transport = serve(
        openai_httpx.Response(200, headers=interaction.headers, content=interaction.body),
        openai_httpx.Response(200, headers=interaction.headers, content=interaction.body),
    )
    client = client_for(transport)

    events: List[Any] = list(client.responses.create(model="gpt-4.1-nano", input="story", stream=True))
    replayed = list(client.responses.retrieve(events[0].response.id, stream=True))

    assert replayed[-1].type == "response.completed"
    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=18, output_tokens=79)]


async def test_async_background_response(
    openai_installed: Any, sink: ListSink, recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    finished = recorded(RESPONSES)[0].json
    queued = dict(copy.deepcopy(finished), status="queued", usage=None, background=True)
    transport = serve(json_response(queued), json_response(finished))
    client = openai.AsyncOpenAI(
        api_key="sk-test", max_retries=0, http_client=openai_httpx.AsyncClient(transport=transport)
    )

    created = await client.responses.create(model="gpt-4.1-nano", input="Say hi", background=True)
    assert sink.calls == []
    await client.responses.retrieve(created.id)

    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=14, output_tokens=8)]
