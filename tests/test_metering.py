"""Token buckets, pricing and the usage event built from one LLM call.

Expected costs are computed here by hand from the providers' published list prices, not read back from
the pricing library, so a wrong bucket mapping or a wrong price fails these tests.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

import bearlumen
from bearlumen.metering.event import build_event, idempotency_key
from bearlumen.metering.pricing import PRICED, PRICED_BY_USER, UNPRICED, PriceBook
from bearlumen.metering.record import LLMCall, TokenUsage, emit, set_sink
from tests.support.sinks import ListSink

NOV_2026 = 1795000000.0  # a fixed call time, so historic price changes cannot move the figures

M = Decimal(1_000_000)


def openai_call(
    usage: TokenUsage, *, model: str = "gpt-4o-mini-2024-07-18", response_id: str = "chatcmpl-1"
) -> LLMCall:
    return LLMCall(
        integration="openai",
        provider="openai",
        operation="chat.completions",
        model_requested="gpt-4o-mini",
        model=model,
        usage=usage,
        response_id=response_id,
        timestamp=NOV_2026,
    )


def test_token_buckets_do_not_overlap() -> None:
    usage = TokenUsage(
        input_tokens=125,
        cache_read_tokens=1024,
        cache_write_tokens=7,
        cache_write_1h_tokens=3,
        output_tokens=353,
        reasoning_tokens=200,
    )
    assert usage.total_input_tokens == 125 + 1024 + 7 + 3
    assert usage.total_tokens == 125 + 1024 + 7 + 3 + 353  # reasoning is inside output, not added again


def test_openai_cached_input_is_priced_at_the_cache_rate() -> None:
    # gpt-4o-mini: $0.15 / 1M input, $0.075 / 1M cached input, $0.60 / 1M output.
    usage = TokenUsage(input_tokens=1149 - 1024, cache_read_tokens=1024, output_tokens=353)
    price = PriceBook().price("openai", "gpt-4o-mini-2024-07-18", usage, NOV_2026)
    expected = (125 * Decimal("0.15") + 1024 * Decimal("0.075") + 353 * Decimal("0.60")) / M
    assert price.cost_usd == expected == Decimal("0.00030735")
    assert price.status == PRICED
    assert price.source.startswith("genai-prices@")


def test_anthropic_cache_writes_by_ttl() -> None:
    # claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 5-minute write, $6 1-hour write, $15 output.
    usage = TokenUsage(
        input_tokens=2000,
        cache_read_tokens=5000,
        cache_write_tokens=1000,
        cache_write_1h_tokens=2000,
        output_tokens=1000,
    )
    price = PriceBook().price("anthropic", "claude-sonnet-4-5-20250929", usage, NOV_2026)
    expected = (
        2000 * Decimal(3)
        + 5000 * Decimal("0.30")
        + 1000 * Decimal("3.75")
        + 2000 * Decimal(6)
        + 1000 * Decimal(15)
    ) / M
    assert price.cost_usd == expected == Decimal("0.03825")


def test_unknown_model_is_unpriced_never_zero() -> None:
    price = PriceBook().price("openai", "acme-ft-1", TokenUsage(input_tokens=10, output_tokens=5), NOV_2026)
    assert (price.cost_usd, price.status) == (None, UNPRICED)
    assert PriceBook().price("openai", "gpt-4o", None, NOV_2026).status == UNPRICED


def test_aliases_and_user_prices() -> None:
    book = PriceBook(
        aliases={"my-gpt4o-deployment": "gpt-4o"},
        models={"acme-ft-1": {"input": "2.00", "output": "8.00", "cache_read": "0.50"}},
    )
    usage = TokenUsage(input_tokens=1000, cache_read_tokens=500, output_tokens=100)
    aliased = book.price("azure", "my-gpt4o-deployment", usage, NOV_2026)
    # gpt-4o: $2.50 input, $1.25 cached, $10 output.
    assert aliased.cost_usd == (1000 * Decimal("2.5") + 500 * Decimal("1.25") + 100 * Decimal(10)) / M
    assert aliased.model_ref == "gpt-4o"
    own = book.price("openai", "acme-ft-1", usage, NOV_2026)
    assert own.cost_usd == (1000 * Decimal(2) + 500 * Decimal("0.5") + 100 * Decimal(8)) / M
    assert own.status == PRICED_BY_USER


def test_pricing_file_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"negotiated-4o": {"input": "1", "output": "4"}}}))
    monkeypatch.setenv("BEARLUMEN_PRICING_FILE", str(path))
    book = PriceBook.from_config({"aliases": {"prod-deploy": "negotiated-4o"}})
    price = book.price(
        "azure", "prod-deploy", TokenUsage(input_tokens=1_000_000, output_tokens=250_000), NOV_2026
    )
    assert price.cost_usd == Decimal(2)


def test_event_carries_exact_cost_buckets_and_attribution() -> None:
    with bearlumen.workflow("onboarding"), bearlumen.agent("support-bot"), bearlumen.attributes(plan="pro"):
        call = openai_call(TokenUsage(input_tokens=125, cache_read_tokens=1024, output_tokens=353))
    call.latency_ms = 812.3456
    event = build_event(call, PriceBook(), idempotency_key(call))
    assert event["event_type"] == "token_usage"
    assert event["metric_name"] == "llm_tokens"
    assert event["quantity"] == 1502
    assert (event["agent_id"], event["workflow_id"]) == ("support-bot", "onboarding")
    assert "end_user_id" not in event
    metadata = event["metadata"]
    assert metadata["provider_cost_usd"] == "0.00030735"
    assert metadata["pricing_status"] == "priced"
    assert metadata["plan"] == "pro"
    assert metadata["model"] == "gpt-4o-mini-2024-07-18"
    assert metadata["model_requested"] == "gpt-4o-mini"
    assert metadata["latency_ms"] == 812.346
    assert (metadata["input_tokens"], metadata["cache_read_tokens"], metadata["output_tokens"]) == (
        125,
        1024,
        353,
    )
    assert event["timestamp"] == "2026-11-18T11:06:40+00:00"


def test_unpriced_event_has_no_cost_field() -> None:
    event = build_event(openai_call(TokenUsage(input_tokens=1), model="acme-ft-1"), PriceBook(), "k")
    assert "provider_cost_usd" not in event["metadata"]
    assert event["metadata"]["pricing_status"] == "unpriced"


def test_idempotency_key_is_stable_per_provider_response() -> None:
    first = openai_call(TokenUsage(input_tokens=1), response_id="chatcmpl-abc")
    again = openai_call(TokenUsage(input_tokens=1), response_id="chatcmpl-abc")
    again.provider = "azure"  # the same OpenAI response seen through an Azure client
    other = openai_call(TokenUsage(input_tokens=1), response_id="chatcmpl-xyz")
    assert idempotency_key(first) == idempotency_key(again) != idempotency_key(other)
    no_id = openai_call(TokenUsage(input_tokens=1), response_id="")
    assert idempotency_key(no_id) != idempotency_key(no_id)


def test_emit_never_raises_and_collectors_take_calls_first() -> None:
    class Broken:
        def submit(self, call: LLMCall) -> None:
            raise RuntimeError("sink down")

    previous = set_sink(Broken())
    try:
        emit(openai_call(TokenUsage()))  # swallowed
        sink = ListSink()
        set_sink(sink)

        class Taker:
            def __init__(self) -> None:
                self.taken: list[LLMCall] = []

            def offer(self, call: LLMCall) -> bool:
                self.taken.append(call)
                return True

        from bearlumen.metering.record import active_collector

        taker = Taker()
        token = active_collector.set(taker)
        try:
            emit(openai_call(TokenUsage()))
        finally:
            active_collector.reset(token)
        emit(openai_call(TokenUsage()))
        assert (len(taker.taken), len(sink.calls)) == (1, 1)
    finally:
        set_sink(previous)


def test_buckets_round_trip_through_event_metadata() -> None:
    usage = TokenUsage(
        input_tokens=400,
        cache_read_tokens=200,
        output_tokens=100,
        reasoning_tokens=30,
        input_audio_tokens=250,
        output_audio_tokens=60,
        web_searches=2,
    )
    metadata = usage.as_metadata()
    assert "input_image_tokens" not in metadata  # parts are kept only when non-zero
    assert metadata["total_tokens"] == 700
    assert TokenUsage.from_metadata(metadata) == usage
    assert TokenUsage.from_metadata({"model": "gpt-4o", "provider_cost_usd": "4.5"}) is None
    assert TokenUsage.from_metadata({"input_tokens": -1}) is None


def test_user_prices_do_not_price_what_they_have_no_rate_for() -> None:
    book = PriceBook(models={"acme-ft-1": {"input": "2", "output": "8"}})
    plain = book.price("openai", "acme-ft-1", TokenUsage(input_tokens=1000, output_tokens=100), NOV_2026)
    assert plain.cost_usd == (1000 * Decimal(2) + 100 * Decimal(8)) / M
    audio = book.price("openai", "acme-ft-1", TokenUsage(input_tokens=1000, input_audio_tokens=10), NOV_2026)
    assert (audio.cost_usd, audio.source) == (None, "no user price for audio input")
    tiered = book.price("openai", "acme-ft-1", TokenUsage(input_tokens=1), NOV_2026, tier="flex")
    assert (tiered.cost_usd, tiered.source) == (None, "no user price for tier 'flex'")


def test_tier_history_before_the_verified_date_is_unpriced() -> None:
    # genai-prices models OpenAI's flex prices from 2026-10-12 only: earlier, no price rather than standard.
    usage = TokenUsage(input_tokens=1000, output_tokens=100)
    before = PriceBook().price("openai", "gpt-5", usage, 1788000000.0, tier="flex")  # 2026-08-29
    assert (before.cost_usd, before.source) == (None, "no price for tier 'flex' of gpt-5 on 2026-08-29")
    # gpt-5 flex: $0.625 in / $5 out per 1M.
    after = PriceBook().price("openai", "gpt-5", usage, NOV_2026, tier="flex")
    assert after.cost_usd == (1000 * Decimal("0.625") + 100 * Decimal(5)) / M
