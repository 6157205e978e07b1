"""Every dimension a provider bills reaches the price: through the real `openai` / `anthropic` clients.

Traffic is either recorded (the vendored cassettes, replayed through the real client, for the
OpenAI-compatible hosts too) or, where no recording has the shape, a body BUILT HERE TO THE PROVIDER'S
DOCUMENTED SCHEMA and served to the real client by an in-process `httpx2.MockTransport`. Each test says
which. Expected costs are computed by hand from the provider's published USD-per-million prices written in
the test (Decimal), never by asking the code under test.

Each priced event is computed at a fixed time (NOV_2026, 11:06 UTC): tier prices are dated (genai-prices
models OpenAI's flex / priority tiers from 2026-10-12) and DeepSeek has off-peak hours.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional

import anthropic
import httpx2
import openai
import pydantic
import pytest

from bearlumen.metering.event import billed_model, build_event
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall, TokenUsage
from tests.support.cassettes import replay
from tests.support.clienthttp import openai_httpx
from tests.support.sinks import ListSink

NOV_2026 = 1795000000.0  # 2026-11-18 11:06:40 UTC
M = Decimal(1_000_000)
K = Decimal(1_000)
BOOK = PriceBook()
MESSAGES: Any = [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]


@pytest.fixture
def openai_calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("openai")
    return sink.calls


@pytest.fixture
def anthropic_calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("anthropic")
    return sink.calls


def metadata_of(call: LLMCall) -> Dict[str, Any]:
    return dict(build_event(dataclasses.replace(call, timestamp=NOV_2026), BOOK, "key")["metadata"])


def cost_of(call: LLMCall) -> Optional[Decimal]:
    value = metadata_of(call).get("provider_cost_usd")
    return None if value is None else Decimal(value)


def openai_client(transport: Optional[Any] = None, **options: Any) -> openai.OpenAI:
    if transport is not None:
        options["http_client"] = openai_httpx.Client(transport=transport)
    return openai.OpenAI(api_key="sk-test", max_retries=0, **options)


def chat_json(model: str, usage: Dict[str, Any], **fields: Any) -> Dict[str, Any]:
    """A chat completion as OpenAI documents it (platform.openai.com/docs/api-reference/chat/object)."""
    body: Dict[str, Any] = {
        "id": "chatcmpl-built",
        "object": "chat.completion",
        "created": 1795000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello", "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": usage,
    }
    body.update(fields)
    return body


# -- the served tier (OpenAI `service_tier`, read from the response) -------------------------------------

# gpt-5, OpenAI's published prices per 1M tokens: standard $1.25 in / $0.125 cached / $10 out;
# flex $0.625 / $0.0625 / $5; priority $2.50 / $0.25 / $20.
GPT5_USAGE = {
    "prompt_tokens": 2000,
    "completion_tokens": 500,
    "total_tokens": 2500,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 320, "audio_tokens": 0},
}


@pytest.mark.parametrize(
    ("served", "input_price", "cached_price", "output_price"),
    [
        ("flex", "0.625", "0.0625", "5"),
        ("priority", "2.50", "0.25", "20"),
        ("default", "1.25", "0.125", "10"),
    ],
)
def test_openai_service_tier_from_the_response(
    openai_calls: List[LLMCall],
    serve: Any,
    served: str,
    input_price: str,
    cached_price: str,
    output_price: str,
) -> None:
    # BUILT to OpenAI's documented schema: the response's `service_tier` says what was served. The
    # request asks for "auto": the response, not the request, decides the price.
    transport = serve(chat_json("gpt-5-2025-08-07", GPT5_USAGE, service_tier=served))
    openai_client(transport).chat.completions.create(model="gpt-5", messages=MESSAGES, service_tier="auto")
    (call,) = openai_calls
    assert call.tier == (None if served == "default" else served)
    assert call.usage == TokenUsage(
        input_tokens=976, cache_read_tokens=1024, output_tokens=500, reasoning_tokens=320
    )
    expected = (
        976 * Decimal(input_price) + 1024 * Decimal(cached_price) + 500 * Decimal(output_price)
    ) / M  # reasoning is inside the 500 output tokens, never added again
    assert cost_of(call) == expected
    metadata = metadata_of(call)
    assert metadata["service_tier"] == served and metadata["pricing_source"] == "genai-prices@0.2.3"
    assert (metadata["reasoning_tokens"], metadata["output_tokens"], metadata["total_tokens"]) == (
        320,
        500,
        2500,
    )


def test_openai_streamed_chat_keeps_the_served_tier(openai_calls: List[LLMCall], serve: Any) -> None:
    # BUILT to OpenAI's documented chunk schema: every chunk carries `service_tier`; the usage chunk
    # (asked for by the caller) has `choices: []`.
    def chunk(**fields: Any) -> Dict[str, Any]:
        base = {
            "id": "chatcmpl-stream",
            "object": "chat.completion.chunk",
            "created": 1795000000,
            "model": "gpt-5-2025-08-07",
            "service_tier": "flex",
            "choices": [],
        }
        base.update(fields)
        return base

    chunks = [
        chunk(choices=[{"index": 0, "delta": {"role": "assistant", "content": "hi"}, "finish_reason": None}]),
        chunk(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}]),
        chunk(usage=GPT5_USAGE),
    ]
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    transport = serve(
        httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())
    )
    stream = openai_client(transport).chat.completions.create(
        model="gpt-5", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    assert len(list(stream)) == 3
    (call,) = openai_calls
    assert (call.streamed, call.tier, call.extra["service_tier"]) == (True, "flex", "flex")
    assert cost_of(call) == (976 * Decimal("0.625") + 1024 * Decimal("0.0625") + 500 * Decimal(5)) / M


async def test_recorded_stream_metadata_keeps_service_tier(openai_calls: List[LLMCall]) -> None:
    # RECORDED: a real async chat stream whose chunks say `service_tier: "default"` (the recording asked
    # for no usage: the event says usage unavailable, and still carries the served tier).
    # The first of its three recordings predates the field (2024): it must not invent one.
    client = openai.AsyncOpenAI(api_key="sk-test", max_retries=0)
    with replay("openllmetry/openai/test_chat_async_streaming.yaml"):
        for _ in range(3):
            stream = await client.chat.completions.create(
                model="gpt-3.5-turbo", messages=MESSAGES, stream=True, stream_options={"include_usage": False}
            )
            async for _chunk in stream:
                pass
    assert [call.extra.get("service_tier") for call in openai_calls] == [None, "default", "default"]
    assert all(call.tier is None for call in openai_calls)
    assert metadata_of(openai_calls[2])["service_tier"] == "default"


def test_a_tier_without_a_price_is_unpriced_not_standard(openai_calls: List[LLMCall], serve: Any) -> None:
    # BUILT: "scale" tier (prepaid capacity units) has no per-token list price.
    transport = serve(chat_json("gpt-5-2025-08-07", GPT5_USAGE, service_tier="scale"))
    openai_client(transport).chat.completions.create(model="gpt-5", messages=MESSAGES)
    metadata = metadata_of(openai_calls[0])
    assert "provider_cost_usd" not in metadata
    assert metadata["pricing_status"] == "unpriced"
    assert metadata["pricing_source"] == "no price for tier 'scale' of gpt-5 on 2026-11-18"


# -- audio and image tokens ----------------------------------------------------------------------------


def test_openai_audio_tokens_at_the_audio_rates(openai_calls: List[LLMCall], serve: Any) -> None:
    # BUILT to OpenAI's documented schema (`*_tokens_details.audio_tokens`, part of prompt / completion).
    # gpt-audio, published per 1M: text $2.50 in / $10 out, audio $32 in / $64 out.
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 600},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 400},
    }
    transport = serve(chat_json("gpt-audio-2025-08-28", usage))
    openai_client(transport).chat.completions.create(model="gpt-audio", messages=MESSAGES)
    (call,) = openai_calls
    assert call.usage == TokenUsage(
        input_tokens=1000, output_tokens=500, input_audio_tokens=600, output_audio_tokens=400
    )
    expected = (400 * Decimal("2.50") + 600 * Decimal(32) + 100 * Decimal(10) + 400 * Decimal(64)) / M
    assert cost_of(call) == expected == Decimal("0.0468")
    metadata = metadata_of(call)
    assert (metadata["input_audio_tokens"], metadata["output_audio_tokens"]) == (600, 400)


def test_audio_without_an_audio_price_is_unpriced(openai_calls: List[LLMCall], serve: Any) -> None:
    # BUILT: gpt-4o-audio-preview bills audio at $40 / $80, which the price data lacks: no cost rather
    # than every token at the text rate.
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "prompt_tokens_details": {"audio_tokens": 600},
        "completion_tokens_details": {"audio_tokens": 400},
    }
    transport = serve(chat_json("gpt-4o-audio-preview-2024-12-17", usage))
    openai_client(transport).chat.completions.create(model="gpt-4o-audio-preview", messages=MESSAGES)
    metadata = metadata_of(openai_calls[0])
    assert "provider_cost_usd" not in metadata
    assert metadata["pricing_source"] == "no audio input price for gpt-4o-audio-preview"


# -- Anthropic fast mode, web search, batch ------------------------------------------------------------


def anthropic_client(transport: httpx2.MockTransport) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test", max_retries=0, http_client=httpx2.Client(transport=transport))


def message_json(model: str, usage: Dict[str, Any]) -> Dict[str, Any]:
    """A Message as Anthropic documents it (docs.anthropic.com/en/api/messages)."""
    return {
        "id": "msg_built",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "hello"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def test_anthropic_fast_mode(anthropic_calls: List[LLMCall], serve: Any) -> None:
    # BUILT to Anthropic's documented schema: fast mode answers `usage.speed: "fast"`.
    # claude-opus-4-8, published per 1M: standard $5 in / $25 out; fast mode $10 / $50, cache read $1.
    usage = {"input_tokens": 3000, "output_tokens": 800, "cache_read_input_tokens": 2000, "speed": "fast"}
    transport = serve(message_json("claude-opus-4-8", usage))
    anthropic_client(transport).messages.create(model="claude-opus-4-8", max_tokens=1024, messages=MESSAGES)
    (call,) = anthropic_calls
    assert call.tier == "fast" and call.extra == {"speed": "fast"}
    assert (
        cost_of(call) == (3000 * Decimal(10) + 2000 * Decimal(1) + 800 * Decimal(50)) / M == Decimal("0.072")
    )


def test_anthropic_web_search_is_priced_per_search(anthropic_calls: List[LLMCall], serve: Any) -> None:
    # BUILT: `usage.server_tool_use.web_search_requests`. claude-sonnet-4-5: $3 in / $15 out per 1M,
    # web search $10 per 1,000 searches.
    usage = {"input_tokens": 5000, "output_tokens": 700, "server_tool_use": {"web_search_requests": 3}}
    transport = serve(message_json("claude-sonnet-4-5-20250929", usage))
    anthropic_client(transport).messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES)
    (call,) = anthropic_calls
    assert call.usage is not None and call.usage.web_searches == 3
    expected = (5000 * Decimal(3) + 700 * Decimal(15)) / M + 3 * Decimal(10) / K
    assert cost_of(call) == expected == Decimal("0.0555")
    assert metadata_of(call)["web_searches"] == 3


def test_openai_responses_web_search_calls(openai_calls: List[LLMCall], serve: Any) -> None:
    # BUILT to the Responses schema: each `web_search_call` output item is one billed search.
    # gpt-5: $1.25 in / $10 out per 1M, web search tool $10 per 1,000 calls.
    body = {
        "id": "resp_built",
        "object": "response",
        "created_at": 1795000000,
        "status": "completed",
        "model": "gpt-5-2025-08-07",
        "output": [
            {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search"}},
            {"type": "web_search_call", "id": "ws_2", "status": "completed", "action": {"type": "search"}},
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "hi", "annotations": []}],
            },
        ],
        "usage": {
            "input_tokens": 4000,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": 600,
            "output_tokens_details": {"reasoning_tokens": 200},
            "total_tokens": 4600,
        },
        "service_tier": "default",
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    openai_client(serve(body)).responses.create(model="gpt-5", input="news?", tools=[{"type": "web_search"}])
    (call,) = openai_calls
    assert call.usage is not None and call.usage.web_searches == 2
    expected = (4000 * Decimal("1.25") + 600 * Decimal(10)) / M + 2 * Decimal(10) / K
    assert cost_of(call) == expected == Decimal("0.031")


def test_batch_processing_is_half_price() -> None:
    # A Message Batches result says `usage.service_tier: "batch"` (the integration maps it to tier
    # "batch"). claude-sonnet-4-5 batch: $1.50 in / $7.50 out per 1M (50% of $3 / $15).
    usage = TokenUsage(input_tokens=10_000, output_tokens=2_000)
    price = BOOK.price("anthropic", "claude-sonnet-4-5-20250929", usage, NOV_2026, tier="batch")
    assert price.cost_usd == (10_000 * Decimal("1.50") + 2_000 * Decimal("7.50")) / M


# -- the billed model --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "input_price", "output_price"),
    [
        # Bedrock's published on-demand prices per 1M for Claude Sonnet 4.5: global cross-region
        # profile $3 / $15; regional (in-region and us./eu./apac. geographic profiles) $3.30 / $16.50.
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "3", "15"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "3.30", "16.50"),
        ("eu.anthropic.claude-sonnet-4-5-20250929-v1:0", "3.30", "16.50"),
        ("anthropic.claude-sonnet-4-5-20250929-v1:0", "3.30", "16.50"),
    ],
)
def test_bedrock_inference_profiles_are_priced_as_billed(
    anthropic_calls: List[LLMCall], serve: Any, profile: str, input_price: str, output_price: str
) -> None:
    # BUILT: Bedrock answers the Anthropic Messages body, which names only the underlying model.
    transport = serve(
        message_json("claude-sonnet-4-5-20250929", {"input_tokens": 1000, "output_tokens": 200})
    )
    client = anthropic.AnthropicBedrock(
        aws_region="us-east-1",
        aws_access_key="AKIDEXAMPLE",
        aws_secret_key="secret",
        max_retries=0,
        http_client=httpx2.Client(transport=transport),
    )
    client.messages.create(model=profile, max_tokens=256, messages=MESSAGES)
    (call,) = anthropic_calls
    metadata = metadata_of(call)
    assert (metadata["provider"], metadata["model"], metadata["model_returned"]) == (
        "aws",
        profile,
        "claude-sonnet-4-5-20250929",
    )
    assert cost_of(call) == (1000 * Decimal(input_price) + 200 * Decimal(output_price)) / M


def test_billed_model_rules() -> None:
    arn = (
        "arn:aws:bedrock:us-east-1:012345678901:inference-profile/"
        "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
    )
    assert (
        billed_model("aws", "claude-3-7-sonnet-20250219", arn)
        == "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
    )
    # Azure: the deployment is requested, the response names the model (a dated snapshot) that is billed.
    assert billed_model("azure", "gpt-4o-2024-08-06", "my-prod-deployment") == "gpt-4o-2024-08-06"
    assert billed_model("azure", None, "my-prod-deployment") == "my-prod-deployment"
    assert billed_model("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini") == "gpt-4o-mini-2024-07-18"


# -- OpenAI-compatible hosts through the openai client ------------------------------------------------


def test_deepseek_recorded_stream(openai_calls: List[LLMCall]) -> None:
    # RECORDED: DeepSeek through the openai client (32 in, 324 out, no cache hit).
    # deepseek-chat, DeepSeek's list price per 1M (standard hours): $0.27 in (cache miss) / $1.10 out.
    client = openai_client(base_url="https://api.deepseek.com/v1")
    with replay("openllmetry/deepseek/test_chat_streaming_metrics.yaml"):
        list(
            client.chat.completions.create(
                model="deepseek-chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )
    (call,) = openai_calls
    assert (call.provider, call.model, call.usage) == (
        "deepseek",
        "deepseek-chat",
        TokenUsage(input_tokens=32, output_tokens=324),
    )
    assert cost_of(call) == (32 * Decimal("0.27") + 324 * Decimal("1.10")) / M
    assert metadata_of(call)["pricing_provider"] == "deepseek"


def test_groq_together_openrouter_recorded(openai_calls: List[LLMCall]) -> None:
    # RECORDED through the openai client with each host's base_url. Published per 1M:
    # Groq llama3-8b-8192 $0.05 / $0.08; Together Llama-3.3-70B-Instruct-Turbo $0.88 / $0.88;
    # OpenRouter deepseek/deepseek-r1 $0.70 / $2.50.
    with replay("openllmetry/groq/test_chat_legacy.yaml"):
        openai_client(base_url="https://api.groq.com/openai/v1").chat.completions.create(
            model="llama3-8b-8192", messages=MESSAGES
        )
    with replay("openinference/together/test_async_chat.yaml"):
        openai_client(base_url="https://api.together.ai/v1").chat.completions.create(
            model="meta-llama/Llama-3.3-70B-Instruct-Turbo", messages=MESSAGES
        )
    with replay("crewai/litellm/test_deepseek_r1_with_open_router.yaml"):
        openai_client(base_url="https://openrouter.ai/api/v1").chat.completions.create(
            model="deepseek/deepseek-r1", messages=MESSAGES
        )
    groq, together, openrouter = openai_calls
    assert [c.provider for c in openai_calls] == ["groq", "together", "openrouter"]
    assert cost_of(groq) == (18 * Decimal("0.05") + 43 * Decimal("0.08")) / M
    assert cost_of(together) == (46 * Decimal("0.88") + 42 * Decimal("0.88")) / M
    assert cost_of(openrouter) == (10 * Decimal("0.70") + 261 * Decimal("2.50")) / M


@pytest.mark.parametrize(
    ("base_url", "model", "provider", "input_price", "output_price"),
    [
        ("https://api.x.ai/v1", "grok-4", "x-ai", "3", "15"),  # xAI grok-4 $3 / $15
        # Fireworks Llama 3.1 8B $0.20 / $0.20
        ("https://api.fireworks.ai/inference/v1", "accounts/fireworks/models/llama-v3p1-8b-instruct",
         "fireworks", "0.20", "0.20"),
    ],
)  # fmt: skip
def test_compatible_hosts_without_recordings(
    openai_calls: List[LLMCall],
    serve: Any,
    base_url: str,
    model: str,
    provider: str,
    input_price: str,
    output_price: str,
) -> None:
    # BUILT to the OpenAI chat schema these hosts document.
    usage = {"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}
    openai_client(serve(chat_json(model, usage)), base_url=base_url).chat.completions.create(
        model=model, messages=MESSAGES
    )
    (call,) = openai_calls
    assert call.provider == provider and call.api_url == base_url + "/"
    assert cost_of(call) == (1200 * Decimal(input_price) + 300 * Decimal(output_price)) / M


def test_gemini_openai_endpoint_hidden_thinking_is_output(openai_calls: List[LLMCall], serve: Any) -> None:
    # BUILT to what Gemini's OpenAI-compatible endpoint answers: `total_tokens` (109) counts the hidden
    # thinking that `completion_tokens` leaves out. gemini-2.5-flash: $0.30 in / $2.50 out (thinking
    # included) per 1M.
    usage = {"prompt_tokens": 12, "completion_tokens": 35, "total_tokens": 109}
    client = openai_client(serve(chat_json("gemini-2.5-flash", usage)),
                           base_url="https://generativelanguage.googleapis.com/v1beta/openai/")  # fmt: skip
    client.chat.completions.create(model="gemini-2.5-flash", messages=MESSAGES)
    (call,) = openai_calls
    assert call.provider == "google"
    assert call.usage == TokenUsage(input_tokens=12, output_tokens=97, reasoning_tokens=62)
    assert call.usage.total_tokens == 109
    assert cost_of(call) == (12 * Decimal("0.30") + 97 * Decimal("2.50")) / M


def test_unknown_compatible_host_is_unpriced_with_a_reason(openai_calls: List[LLMCall], serve: Any) -> None:
    # BUILT: a self-hosted OpenAI-compatible server no price list knows.
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    client = openai_client(
        serve(chat_json("llama-3-local", usage)), base_url="https://llm.example.internal/v1"
    )
    client.chat.completions.create(model="llama-3-local", messages=MESSAGES)
    metadata = metadata_of(openai_calls[0])
    assert metadata["provider"] == "openai-compatible"
    assert metadata["api_url"] == "https://llm.example.internal/v1/"
    assert (metadata["pricing_status"], metadata["pricing_source"]) == (
        "unpriced",
        "host or model not in price data",
    )
    assert "provider_cost_usd" not in metadata


# -- structured output whose parsing raises: the billed call is still recorded --------------------------


class Strict(pydantic.BaseModel):
    rating: int
    punchline_score: float  # not in the recorded answer: validation fails


def test_chat_parse_validation_error_is_recorded_and_reraised(openai_calls: List[LLMCall]) -> None:
    # RECORDED: the answer `{"rating":5,"joke":...}` (68 in, 41 out) fails the caller's model.
    with (
        replay("openllmetry/openai/test_parsed_completion.yaml"),
        pytest.raises(pydantic.ValidationError) as raised,
    ):
        openai_client().chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Strict)
    assert raised.value.errors()[0]["loc"] == ("punchline_score",)
    (call,) = openai_calls
    assert (call.model, call.usage) == ("gpt-4o-2024-08-06", TokenUsage(input_tokens=68, output_tokens=41))
    # gpt-4o: $2.50 in / $10 out per 1M.
    assert cost_of(call) == (68 * Decimal("2.50") + 41 * Decimal(10)) / M


def test_chat_parse_raises_the_very_same_exception(integration: Callable[[str], Any], sink: ListSink) -> None:
    # The exception object the SDK's parser raised is the one the caller gets.
    import importlib

    from bearlumen.integrations.openai import PARSERS

    resources = None  # the module this openai release imported the parser into (PARSERS lists them)
    for module_name, name, argument in PARSERS:
        if argument == "chat_completion":
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError:
                continue
            if name in vars(module):
                resources = module
    assert resources is not None

    raised_inside: List[BaseException] = []
    integration("openai")
    wrapper = resources._parse_chat_completion

    def spy(**kwargs: Any) -> Any:
        try:
            return wrapper(**kwargs)
        except BaseException as exc:
            raised_inside.append(exc)
            raise

    resources._parse_chat_completion = spy  # type: ignore[assignment]
    try:
        with (
            replay("openllmetry/openai/test_parsed_completion.yaml"),
            pytest.raises(pydantic.ValidationError) as raised,
        ):
            openai_client().chat.completions.parse(model="gpt-4o", messages=MESSAGES, response_format=Strict)
    finally:
        resources._parse_chat_completion = wrapper
    assert raised.value is raised_inside[0]
    assert len(sink.calls) == 1


def test_responses_parse_validation_error_is_recorded(openai_calls: List[LLMCall]) -> None:
    # RECORDED: `{"name":"Alice","age":30}` (57 in, 10 out) against a model that wants more.
    class Person(pydantic.BaseModel):
        name: str
        email: str

    with replay("openllmetry/openai/test_responses_parse.yaml"), pytest.raises(pydantic.ValidationError):
        openai_client().responses.parse(model="gpt-4.1-nano", input="Alice, 30", text_format=Person)
    (call,) = openai_calls
    assert call.usage == TokenUsage(input_tokens=57, output_tokens=10)
    # gpt-4.1-nano: $0.10 in / $0.40 out per 1M.
    assert cost_of(call) == (57 * Decimal("0.10") + 10 * Decimal("0.40")) / M


def test_anthropic_parse_validation_error_is_recorded(anthropic_calls: List[LLMCall], serve: Any) -> None:
    # BUILT: a structured-output answer the caller's model rejects. claude-sonnet-4-5: $3 / $15 per 1M.
    body = message_json("claude-sonnet-4-5-20250929", {"input_tokens": 400, "output_tokens": 30})
    body["content"] = [{"type": "text", "text": '{"rating": 5}'}]
    with pytest.raises(pydantic.ValidationError):
        anthropic_client(serve(body)).messages.parse(
            model="claude-sonnet-4-5", max_tokens=256, messages=MESSAGES, output_format=Strict
        )
    (call,) = anthropic_calls
    assert call.usage == TokenUsage(input_tokens=400, output_tokens=30)
    assert cost_of(call) == (400 * Decimal(3) + 30 * Decimal(15)) / M


# -- reasoning inside output, never twice (recorded) ----------------------------------------------------


def test_recorded_reasoning_tokens_are_part_of_output(openai_calls: List[LLMCall]) -> None:
    # RECORDED: gpt-5-nano, 11 in, 228 out of which 192 reasoning. gpt-5-nano: $0.05 in / $0.40 out per 1M.
    with replay("openllmetry/openai/test_chat_reasoning.yaml"):
        openai_client().chat.completions.create(model="gpt-5-nano", messages=MESSAGES)
    (call,) = openai_calls
    assert call.usage == TokenUsage(input_tokens=11, output_tokens=228, reasoning_tokens=192)
    assert cost_of(call) == (11 * Decimal("0.05") + 228 * Decimal("0.40")) / M


def test_a_gateway_host_is_priced_with_the_list_the_user_names(
    openai_calls: List[LLMCall], serve: Any
) -> None:
    # BUILT: an internal gateway in front of OpenAI. Unknown host: unpriced, until `hosts` names its list.
    usage = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
    client = openai_client(
        serve(chat_json("gpt-4o-2024-08-06", usage)), base_url="https://llm-gw.corp.example/v1"
    )
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    (call,) = openai_calls
    assert cost_of(call) is None
    book = PriceBook(hosts={"llm-gw.corp.example": "openai"})
    event = build_event(dataclasses.replace(call, timestamp=NOV_2026), book, "key")
    # gpt-4o: $2.50 in / $10 out per 1M.
    assert Decimal(event["metadata"]["provider_cost_usd"]) == (1000 * Decimal("2.50") + 100 * Decimal(10)) / M


def test_anthropic_stream_fast_mode_and_searches(anthropic_calls: List[LLMCall], serve: Any) -> None:
    # BUILT to Anthropic's documented stream events: `message_start.message.usage` carries `speed`, the
    # final `message_delta.usage` the cumulative counts and `server_tool_use`.
    start = message_json("claude-opus-4-8", {"input_tokens": 3000, "output_tokens": 1, "speed": "fast"})
    start["content"] = []
    events = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 800, "server_tool_use": {"web_search_requests": 2}},
        },
        {"type": "message_stop"},
    ]
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events).encode()
    transport = serve(httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body))
    with anthropic_client(transport).messages.stream(
        model="claude-opus-4-8", max_tokens=1024, messages=MESSAGES
    ) as stream:
        stream.get_final_message()
    (call,) = anthropic_calls
    assert (call.tier, call.usage) == (
        "fast",
        TokenUsage(input_tokens=3000, output_tokens=800, web_searches=2),
    )
    # claude-opus-4-8 fast mode: $10 in / $50 out per 1M; web search $10 per 1,000.
    assert cost_of(call) == (3000 * Decimal(10) + 800 * Decimal(50)) / M + 2 * Decimal(10) / K


def test_azure_deployment_is_priced_as_the_model_it_serves(openai_calls: List[LLMCall], serve: Any) -> None:
    # BUILT: Azure OpenAI answers the model behind the deployment (a dated snapshot).
    # Azure OpenAI gpt-4o-2024-08-06 global deployment: $2.50 in / $1.25 cached / $10 out per 1M.
    usage = {
        "prompt_tokens": 3000,
        "completion_tokens": 200,
        "total_tokens": 3200,
        "prompt_tokens_details": {"cached_tokens": 2048},
    }
    client = openai.AzureOpenAI(
        api_key="test",
        api_version="2024-10-21",
        azure_endpoint="https://example-resource.openai.azure.com",
        azure_deployment="prod-chat",
        max_retries=0,
        http_client=openai_httpx.Client(transport=serve(chat_json("gpt-4o-2024-08-06", usage))),
    )
    client.chat.completions.create(model="prod-chat", messages=MESSAGES)
    (call,) = openai_calls
    metadata = metadata_of(call)
    assert (metadata["provider"], metadata["model"], metadata["model_requested"]) == (
        "azure",
        "gpt-4o-2024-08-06",
        "prod-chat",
    )
    expected = (952 * Decimal("2.50") + 2048 * Decimal("1.25") + 200 * Decimal(10)) / M
    assert cost_of(call) == expected


def test_groq_recorded_stream_reports_usage_under_x_groq(openai_calls: List[LLMCall]) -> None:
    # RECORDED: Groq puts a stream's usage in the last chunk's `x_groq.usage` (18 in, 73 out).
    # Groq llama3-8b-8192: $0.05 in / $0.08 out per 1M.
    client = openai_client(base_url="https://api.groq.com/openai/v1")
    with replay("openllmetry/groq/test_chat_streaming_legacy.yaml"):
        chunks = list(client.chat.completions.create(model="llama3-8b-8192", messages=MESSAGES, stream=True))
    assert len(chunks) == 74  # the recorded stream's 74 events, all passed through
    (call,) = openai_calls
    assert (call.provider, call.usage_source, call.usage) == (
        "groq",
        "stream",
        TokenUsage(input_tokens=18, output_tokens=73),
    )
    assert cost_of(call) == (18 * Decimal("0.05") + 73 * Decimal("0.08")) / M


def test_xai_reasoning_outside_completion_tokens_is_counted_once(
    openai_calls: List[LLMCall], serve: Any
) -> None:
    # BUILT to xAI's documented usage: `completion_tokens` leaves reasoning out, `reasoning_tokens` reports
    # it, `total_tokens` counts it. xAI grok-4: $3 in / $15 out (reasoning is output) per 1M.
    usage = {
        "prompt_tokens": 1200,
        "completion_tokens": 300,
        "total_tokens": 2000,
        "completion_tokens_details": {"reasoning_tokens": 500},
    }
    openai_client(
        serve(chat_json("grok-4-0709", usage)), base_url="https://api.x.ai/v1"
    ).chat.completions.create(model="grok-4", messages=MESSAGES)
    (call,) = openai_calls
    assert call.usage == TokenUsage(input_tokens=1200, output_tokens=800, reasoning_tokens=500)
    assert call.usage.total_tokens == 2000
    assert cost_of(call) == (1200 * Decimal(3) + 800 * Decimal(15)) / M
