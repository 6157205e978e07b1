"""openai integration, non-streamed calls: real recorded traffic through the real `openai.OpenAI` client.

Each test replays a vendored cassette (figures from tests/cassettes/INDEX.tsv) and asserts exactly one
LLMCall per provider call, its exact token buckets, and its exact cost from genai-prices compared with
a figure computed by hand from the published per-million-token prices.
"""

from __future__ import annotations

import time
from decimal import Decimal
from importlib import import_module
from importlib.util import find_spec
from typing import Any, Callable, List, Optional

import openai
import pydantic
import pytest

from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import USAGE_FROM_RESPONSE, LLMCall, TokenUsage
from tests.support.cassettes import replay
from tests.support.clienthttp import openai_httpx
from tests.support.sinks import ListSink

PRICES = PriceBook()
MESSAGES: Any = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]


def cost(call: LLMCall) -> Optional[Decimal]:
    return PRICES.price(call.provider, call.model, call.usage, call.timestamp).cost_usd


def per_million(*pairs: tuple[int, str]) -> Decimal:
    """Hand-computed cost: sum of tokens x USD per 1M tokens."""
    return sum((Decimal(tokens) * Decimal(price) for tokens, price in pairs), Decimal(0)) / Decimal(1_000_000)


@pytest.fixture
def calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("openai")
    return sink.calls


def make_client(**options: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", max_retries=0, **options)


def test_chat_prompt_caching_buckets_and_cost(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_openai_prompt_caching.yaml"):
        results = [client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES) for _ in range(4)]

    assert len(calls) == 4
    # INDEX.tsv #2: prompt=1149 (cached=1024) completion=353 -> uncached input 125.
    second = calls[1]
    assert second.usage == TokenUsage(input_tokens=125, cache_read_tokens=1024, output_tokens=353)
    assert second.usage.total_tokens == 1502
    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per 1M tokens.
    assert cost(second) == per_million((125, "0.15"), (1024, "0.075"), (353, "0.60")) == Decimal("0.00030735")
    assert [c.usage for c in (calls[0], calls[2], calls[3])] == [
        TokenUsage(input_tokens=1149, output_tokens=315),
        TokenUsage(input_tokens=1149, output_tokens=297),
        TokenUsage(input_tokens=1149, output_tokens=339),
    ]
    for call, result in zip(calls, results):
        assert call.integration == "openai"
        assert call.provider == "openai"
        assert call.operation == "chat.completions"
        assert call.model_requested == "gpt-4o-mini"
        assert call.model == "gpt-4o-mini-2024-07-18" == result.model
        assert call.response_id == result.id
        assert call.usage_source == USAGE_FROM_RESPONSE
        assert call.streamed is False
        assert call.latency_ms is not None and call.latency_ms >= 0
        assert abs(call.timestamp - time.time()) < 60


def test_chat_reasoning_tokens(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_chat_reasoning.yaml"):
        for _ in range(3):
            client.chat.completions.create(model="gpt-5-nano", messages=MESSAGES)

    assert [c.usage for c in calls] == [
        TokenUsage(input_tokens=11, output_tokens=228, reasoning_tokens=192),
        TokenUsage(input_tokens=11, output_tokens=202, reasoning_tokens=192),
        TokenUsage(input_tokens=11, output_tokens=138, reasoning_tokens=128),
    ]
    assert calls[0].model == "gpt-5-nano-2025-08-07"
    # gpt-5-nano: $0.05 input, $0.40 output per 1M; reasoning tokens are output tokens, priced once.
    assert cost(calls[0]) == per_million((11, "0.05"), (228, "0.40")) == Decimal("0.00009175")


def test_chat_multi_call_cassette_counts_each_call_once(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_chat.yaml"):
        for _ in range(4):
            client.chat.completions.create(model="gpt-3.5-turbo", messages=MESSAGES)

    assert [(c.usage.input_tokens, c.usage.output_tokens) for c in calls if c.usage] == [
        (15, 19),
        (15, 31),
        (15, 22),
        (15, 19),
    ]
    assert len({c.response_id for c in calls}) == 4
    # gpt-3.5-turbo-0125: $0.50 input, $1.50 output per 1M.
    assert cost(calls[0]) == per_million((15, "0.50"), (19, "1.50")) == Decimal("0.000036")


class StructuredAnswer(pydantic.BaseModel):
    rating: int
    joke: str


def test_chat_parse_is_metered_once(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_parsed_completion.yaml"):
        parsed = [
            client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=StructuredAnswer)
            for _ in range(3)
        ]

    assert isinstance(parsed[0].choices[0].message.parsed, StructuredAnswer)
    assert [c.usage for c in calls] == [
        TokenUsage(input_tokens=68, output_tokens=41),
        TokenUsage(input_tokens=68, output_tokens=35),
        TokenUsage(input_tokens=68, output_tokens=37),
    ]
    assert all(c.operation == "chat.completions" and c.model == "gpt-4o-2024-08-06" for c in calls)
    # gpt-4o-2024-08-06: $2.50 input, $10.00 output per 1M.
    assert cost(calls[0]) == per_million((68, "2.50"), (41, "10.00")) == Decimal("0.00058")


def test_beta_chat_completions_is_the_same_resource(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("otel-python-contrib/openai/test_chat_completion_with_content.yaml"):
        client.beta.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert len(calls) == 1
    assert calls[0].usage == TokenUsage(input_tokens=12, output_tokens=5)


def test_responses_create(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_responses.yaml"):
        first = client.responses.create(model="gpt-4.1-nano", input="Say hi")
        client.responses.create(model="gpt-4.1-nano", input="Say hi")

    assert len(calls) == 2
    call = calls[0]
    assert call.operation == "responses"
    assert call.model_requested == "gpt-4.1-nano"
    assert call.model == "gpt-4.1-nano-2025-04-14"
    assert call.response_id == first.id
    assert call.usage == TokenUsage(input_tokens=14, output_tokens=8)
    # gpt-4.1-nano: $0.10 input, $0.40 output per 1M.
    assert cost(call) == per_million((14, "0.10"), (8, "0.40")) == Decimal("0.0000046")


def test_responses_reasoning(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_responses_reasoning.yaml"):
        client.responses.create(model="gpt-5-nano", input="Think")
        client.responses.create(model="gpt-5-nano", input="Think")

    assert [c.usage for c in calls] == [
        TokenUsage(input_tokens=11, output_tokens=327, reasoning_tokens=320),
        TokenUsage(input_tokens=11, output_tokens=131, reasoning_tokens=64),
    ]
    assert cost(calls[0]) == per_million((11, "0.05"), (327, "0.40")) == Decimal("0.00013135")


def test_responses_reasoning_tokens_otel_recording(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay(
        "otel-python-contrib/openai/test_responses_create_reports_reasoning_tokens[content_mode0].yaml"
    ):
        client.responses.create(model="gpt-5.4", input="Think")

    assert len(calls) == 1
    assert calls[0].usage == TokenUsage(input_tokens=44, output_tokens=288, reasoning_tokens=9)
    assert calls[0].model == "gpt-5.4-2026-03-05"


def test_responses_tool_calls(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_responses_tool_calls.yaml"):
        client.responses.create(model="gpt-4.1-nano", input="What is the weather?")
        client.responses.create(model="gpt-4.1-nano", input="What is the weather?")

    assert [c.usage for c in calls] == [
        TokenUsage(input_tokens=58, output_tokens=44),
        TokenUsage(input_tokens=59, output_tokens=45),
    ]


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_responses_parse(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_responses_parse.yaml"):
        parsed = client.responses.parse(
            model="gpt-4.1-nano", input="Extract: Alice is 30 years old.", text_format=Person
        )

    assert parsed.output_parsed == Person(name="Alice", age=30)
    assert len(calls) == 1
    assert calls[0].operation == "responses"
    assert calls[0].usage == TokenUsage(input_tokens=57, output_tokens=10)
    assert calls[0].response_id == parsed.id
    assert cost(calls[0]) == per_million((57, "0.10"), (10, "0.40")) == Decimal("0.0000097")


def test_embeddings(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_embeddings.yaml"):
        for _ in range(4):
            client.embeddings.create(model="text-embedding-ada-002", input="Tell me a joke")

    assert len(calls) == 4
    assert [c.model for c in calls] == ["text-embedding-ada-002"] * 2 + ["text-embedding-ada-002-v2"] * 2
    for call in calls:
        assert call.operation == "embeddings"
        assert call.model_requested == "text-embedding-ada-002"
        assert call.response_id is None  # embeddings carry no id: the event gets a random key
        assert call.usage == TokenUsage(input_tokens=8)
    # text-embedding-ada-002: $0.10 per 1M tokens.
    assert cost(calls[0]) == per_million((8, "0.10")) == Decimal("0.0000008")


def test_embeddings_text_embedding_3_small(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("otel-python-contrib/openai/test_embeddings_with_content.yaml"):
        client.embeddings.create(model="text-embedding-3-small", input="Say this is a test")

    assert [c.usage for c in calls] == [TokenUsage(input_tokens=6)]
    # text-embedding-3-small: $0.02 per 1M tokens.
    assert cost(calls[0]) == per_million((6, "0.02")) == Decimal("0.00000012")


def test_legacy_completions(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_completion.yaml"):
        for _ in range(3):
            client.completions.create(model="davinci-002", prompt="Tell me a joke")

    assert len(calls) == 3
    assert all(c.operation == "completions" for c in calls)
    assert [c.usage for c in calls] == [TokenUsage(input_tokens=8, output_tokens=16)] * 3
    assert [c.model for c in calls] == ["davinci-002", "davinci:2023-07-21-v2", "davinci:2023-07-21-v2"]
    # davinci-002: $2.00 input, $2.00 output per 1M.
    assert cost(calls[0]) == per_million((8, "2.00"), (16, "2.00")) == Decimal("0.000048")


def test_clients_built_before_install_are_metered(integration: Callable[[str], Any], sink: ListSink) -> None:
    client = make_client()
    client.chat.completions  # noqa: B018 - the resource exists before the patch
    integration("openai")
    with replay("otel-python-contrib/openai/test_chat_completion_with_content.yaml"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=12, output_tokens=5)]


def test_module_level_client_is_metered(calls: List[LLMCall], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai, "api_key", "sk-test")
    monkeypatch.setattr(openai, "max_retries", 0)
    with replay("otel-python-contrib/openai/test_chat_completion_with_content.yaml"):
        openai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert [c.usage for c in calls] == [TokenUsage(input_tokens=12, output_tokens=5)]


# -- failures: nothing recorded, the caller's exception untouched -------------------------------------


def test_http_404_records_nothing(calls: List[LLMCall]) -> None:
    client = make_client()
    with (
        replay("otel-python-contrib/openai/test_chat_completion_404.yaml"),
        pytest.raises(openai.NotFoundError) as raised,
    ):
        client.chat.completions.create(model="this-model-does-not-exist", messages=MESSAGES)

    assert raised.value.status_code == 404
    assert calls == []


def test_http_400_on_responses_records_nothing(calls: List[LLMCall]) -> None:
    client = make_client()
    with (
        replay("otel-python-contrib/openai/test_responses_create_api_error[content_mode0].yaml"),
        pytest.raises(openai.BadRequestError),
    ):
        client.responses.create(model="this-model-does-not-exist", input="hi")

    assert calls == []


def test_vision_400_after_two_successes(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_vision.yaml"):
        client.chat.completions.create(model="gpt-4-vision-preview", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4-vision-preview", messages=MESSAGES)
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert [c.usage for c in calls] == [TokenUsage(input_tokens=438, output_tokens=16)] * 2


def test_transport_exception_reaches_the_caller_as_the_same_object(
    calls: List[LLMCall], serve: Callable[..., Any]
) -> None:
    """Fake transport (no recording needed): it raises, and the caller must get that very object."""

    class TransportFailure(Exception):
        pass

    failure = TransportFailure("boom")

    def explode(request: openai_httpx.Request) -> Any:
        raise failure

    client = make_client(http_client=openai_httpx.Client(transport=serve(answer=explode)))
    with pytest.raises(Exception) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    # Recent openai releases let it through; older ones (2.x, early 3.x) wrap it in APIConnectionError
    # themselves. Either way the caller gets what the library raised, around that very object.
    if raised.value is not failure:
        assert type(raised.value) is openai.APIConnectionError and raised.value.__cause__ is failure
    assert calls == []


def test_connection_error_records_nothing(calls: List[LLMCall], serve: Callable[..., Any]) -> None:
    """Fake transport: a connection refused, as openai reports it."""

    def refuse(request: openai_httpx.Request) -> Any:
        raise openai_httpx.ConnectError("connection refused", request=request)

    client = make_client(http_client=openai_httpx.Client(transport=serve(answer=refuse)))
    with pytest.raises(openai.APIConnectionError) as raised:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert isinstance(raised.value.__cause__, openai_httpx.ConnectError)
    assert calls == []


def test_length_finish_reason_on_parse_is_still_billed(
    calls: List[LLMCall], recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    """A recorded completion served with finish_reason "length" (edited): parse() raises, the API billed."""
    body = recorded("openllmetry/openai/test_parsed_completion.yaml")[0].json
    body["choices"][0]["finish_reason"] = "length"
    client = make_client(http_client=openai_httpx.Client(transport=serve(body)))

    with pytest.raises(openai.LengthFinishReasonError) as raised:
        client.chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=StructuredAnswer)

    assert raised.value.completion.usage is not None
    assert [c.usage for c in calls] == [TokenUsage(input_tokens=68, output_tokens=41)]


# -- Azure ----------------------------------------------------------------------------------------------


def azure_client(transport: Any, **options: Any) -> openai.AzureOpenAI:
    options.setdefault("api_version", "2024-10-21")
    return openai.AzureOpenAI(
        api_key="azure-test",
        azure_endpoint="https://example-resource.openai.azure.com",
        max_retries=0,
        http_client=openai_httpx.Client(transport=transport),
        **options,
    )


def test_azure_deployment_is_requested_model_and_pricing_uses_returned_model(
    calls: List[LLMCall], recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    """No Azure recording exists: the real OpenAI recording's body is served on the Azure URL."""
    interaction = recorded("otel-python-contrib/openai/test_chat_completion_with_content.yaml")[0]
    transport = serve(interaction)
    client = azure_client(transport)

    result = client.chat.completions.create(model="prod-gpt4o-mini", messages=MESSAGES)

    assert transport.requests[0].url.path == "/openai/deployments/prod-gpt4o-mini/chat/completions"
    assert len(calls) == 1
    call = calls[0]
    assert call.provider == "azure"
    assert call.model_requested == "prod-gpt4o-mini"
    assert call.model == "gpt-4o-mini-2024-07-18" == result.model
    assert call.usage == TokenUsage(input_tokens=12, output_tokens=5)
    assert cost(call) == per_million((12, "0.15"), (5, "0.60")) == Decimal("0.0000048")


def test_azure_client_level_deployment(
    calls: List[LLMCall], recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    """Served recorded body (see above); the deployment is fixed on the client."""
    interaction = recorded("otel-python-contrib/openai/test_chat_completion_with_content.yaml")[0]
    transport = serve(interaction)
    client = azure_client(transport, azure_deployment="team-a-mini")

    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert transport.requests[0].url.path == "/openai/deployments/team-a-mini/chat/completions"
    assert calls[0].model_requested == "team-a-mini"
    assert calls[0].provider == "azure"


def test_azure_deployment_alias_prices_a_response_without_model(
    calls: List[LLMCall], recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    """Served recorded body with "model" removed (edited): the user's alias maps the deployment name."""
    body = recorded("otel-python-contrib/openai/test_chat_completion_with_content.yaml")[0].json
    del body["model"]
    client = azure_client(serve(body))

    client.chat.completions.create(model="prod-gpt4o-mini", messages=MESSAGES)

    call = calls[0]
    assert call.model == "prod-gpt4o-mini"
    aliased = PriceBook(aliases={"prod-gpt4o-mini": "gpt-4o-mini"})
    priced = aliased.price(call.provider, call.model, call.usage, call.timestamp)
    assert priced.cost_usd == Decimal("0.0000048")
    assert PRICES.price(call.provider, call.model, call.usage, call.timestamp).cost_usd is None


@pytest.mark.skipif(
    find_spec("openai.resources.beta.responses") is None, reason="openai 2.0 has no client.beta.responses"
)
def test_beta_responses_create(calls: List[LLMCall]) -> None:
    client = make_client()
    with replay("openllmetry/openai/test_responses.yaml"):
        response = client.beta.responses.create(model="gpt-4.1-nano", input="Say hi")

    assert [(c.operation, c.usage, c.response_id) for c in calls] == [
        ("responses", TokenUsage(input_tokens=14, output_tokens=8), response.id)
    ]


@pytest.mark.skipif(
    not hasattr(import_module("openai.resources.responses.responses").Responses, "compact"),
    reason="this openai has no responses.compact",
)
def test_responses_compact(
    calls: List[LLMCall], recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> None:
    """The recorded response's usage served in the shape of a compaction (no recording of one exists)."""
    usage = recorded("openllmetry/openai/test_responses.yaml")[0].json["usage"]
    body = {"id": "cmp_1", "object": "response.compaction", "created_at": 1, "output": [], "usage": usage}
    transport = serve(body)
    client = make_client(http_client=openai_httpx.Client(transport=transport))

    client.responses.compact(model="gpt-4.1-nano", input="a long conversation")

    assert transport.requests[0].url.path == "/v1/responses/compact"
    assert [(c.operation, c.model, c.usage, c.response_id) for c in calls] == [
        ("responses.compact", "gpt-4.1-nano", TokenUsage(input_tokens=14, output_tokens=8), "cmp_1")
    ]
    assert cost(calls[0]) == Decimal("0.0000046")
