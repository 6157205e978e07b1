"""The LangChain callback metering alone (no provider patch) passes the same billed dimensions.

The response is BUILT to OpenAI's documented chat completion schema and served by an in-process
`MockTransport` (of httpx2 or httpx, as the client uses) to the real `openai` client inside the real
`ChatOpenAI`. Expected costs are computed by hand from OpenAI's published per-million prices.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any, List

from bearlumen.integrations import langchain as lc
from langchain_openai import ChatOpenAI

from bearlumen.metering.event import build_event
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall, TokenUsage
from tests.support.clienthttp import openai_httpx

NOV_2026 = 1795000000.0
M = Decimal(1_000_000)


def served(body: Any) -> Any:
    """An http_client of the library the installed openai runs on (httpx2 for 3.x, httpx for 2.x)."""
    return openai_httpx.Client(
        transport=openai_httpx.MockTransport(lambda request: openai_httpx.Response(200, json=body))
    )


def completion(model: str, usage: Any, **fields: Any) -> Any:
    body = {
        "id": "chatcmpl-lc-built",
        "object": "chat.completion",
        "created": 1795000000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": usage,
    }
    body.update(fields)
    return body


def cost(call: LLMCall) -> Decimal:
    event = build_event(dataclasses.replace(call, timestamp=NOV_2026), PriceBook(), "key")
    return Decimal(event["metadata"]["provider_cost_usd"])


def test_callback_alone_prices_the_served_tier(sink: Any) -> None:
    # gpt-5 flex: $0.625 in / $0.0625 cached / $5 out per 1M.
    usage = {
        "prompt_tokens": 2000,
        "completion_tokens": 500,
        "total_tokens": 2500,
        "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 320},
    }
    model = ChatOpenAI(
        model="gpt-5",
        api_key="sk-test",  # type: ignore[arg-type]
        max_retries=0,
        http_client=served(completion("gpt-5-2025-08-07", usage, service_tier="flex")),
    )
    model.invoke("hi", config={"callbacks": [lc.BearLumenCallbackHandler()]})
    calls: List[LLMCall] = sink.calls
    (call,) = calls
    assert (call.integration, call.tier, call.extra.get("service_tier")) == ("langchain", "flex", "flex")
    assert call.usage == TokenUsage(
        input_tokens=976, cache_read_tokens=1024, output_tokens=500, reasoning_tokens=320
    )
    assert cost(call) == (976 * Decimal("0.625") + 1024 * Decimal("0.0625") + 500 * Decimal(5)) / M


def test_callback_alone_prices_audio_tokens(sink: Any) -> None:
    # gpt-audio: text $2.50 in / $10 out, audio $32 in / $64 out per 1M.
    usage = {
        "prompt_tokens": 1000,
        "completion_tokens": 500,
        "total_tokens": 1500,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 600},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 400},
    }
    model = ChatOpenAI(
        model="gpt-audio",
        api_key="sk-test",  # type: ignore[arg-type]
        max_retries=0,
        http_client=served(completion("gpt-audio-2025-08-28", usage)),
    )
    model.invoke("hi", config={"callbacks": [lc.BearLumenCallbackHandler()]})
    (call,) = sink.calls
    assert call.usage == TokenUsage(
        input_tokens=1000, output_tokens=500, input_audio_tokens=600, output_audio_tokens=400
    )
    assert (
        cost(call) == (400 * Decimal("2.50") + 600 * Decimal(32) + 100 * Decimal(10) + 400 * Decimal(64)) / M
    )
