"""The cached rates (bearlumen/metering/rates.py) give exactly genai-prices' answer, and are really used.

The reference is a price book that never caches (`PriceBook(cache=False)`: genai-prices' whole path on
every call). Every call of every integration test is cross-checked the same way (the `sink` fixture,
tests/support/pricing_check.py); this file covers the grid of dimensions, tiers and dates directly.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any, Dict, Optional

import pytest

from bearlumen.metering import rates
from bearlumen.metering.pricing import PRICED, PRICED_BY_USER, UNPRICED, PriceBook
from bearlumen.metering.record import LLMCall, TokenUsage
from tests.support.pricing_check import assert_priced_exactly, described

NOV_2026 = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC
FLEX_FROM = 1_791_763_200.0  # 2026-10-12 00:00 UTC: genai-prices' OpenAI flex / priority prices start
O3_CUT = 1_749_513_600.0  # 2025-06-10 00:00 UTC: o3's price cut

USAGES = {
    "plain": TokenUsage(input_tokens=1200, output_tokens=300),
    "cache read": TokenUsage(input_tokens=1000, cache_read_tokens=4000, output_tokens=50),
    "cache writes": TokenUsage(
        input_tokens=10,
        cache_read_tokens=100,
        cache_write_tokens=2000,
        cache_write_1h_tokens=700,
        output_tokens=9,
    ),
    "reasoning": TokenUsage(input_tokens=500, output_tokens=900, reasoning_tokens=640),
    "audio": TokenUsage(input_tokens=100, input_audio_tokens=400, output_tokens=20, output_audio_tokens=300),
    "audio cached": TokenUsage(
        input_tokens=100,
        input_audio_tokens=400,
        cache_read_tokens=64,
        cache_audio_read_tokens=32,
        output_tokens=5,
    ),
    "image in": TokenUsage(input_tokens=300, input_image_tokens=1290, output_tokens=40),
    "image out": TokenUsage(input_tokens=30, output_tokens=0, output_image_tokens=1290),
    "web searches": TokenUsage(input_tokens=2000, output_tokens=400, web_searches=3),
    "over 200K input": TokenUsage(input_tokens=250_000, cache_read_tokens=1000, output_tokens=1000),
    "zero": TokenUsage(),
}

MODELS = [
    ("openai", "gpt-4o-mini-2024-07-18"),
    ("openai", "gpt-4o"),
    ("openai", "gpt-5"),
    ("openai", "o3"),
    ("openai", "gpt-4o-audio-preview"),
    ("openai", "gpt-image-1"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-sonnet-4-6"),
    ("anthropic", "claude-3-5-sonnet-20240620"),
    ("anthropic", "claude-opus-4-6"),
    ("google", "gemini-2.5-pro"),
    ("google", "gemini-2.5-flash"),
    ("aws", "global.anthropic.claude-sonnet-4-5-20250929-v1:0"),
    ("deepseek", "deepseek-chat"),  # off-peak prices: never cached, still equal
    ("mistral", "mistral-large-latest"),
    ("openai", "no-such-model-anywhere"),
]
TIERS = [None, "flex", "priority", "batch", "fast", "scale"]
MOMENTS = [1_700_000_000.0, O3_CUT - 1, O3_CUT, FLEX_FROM - 1, FLEX_FROM, NOV_2026, NOV_2026 + 13 * 3600]


def both(
    book: PriceBook, reference: PriceBook, provider: str, model: str, usage: Any, at: float, **facts: Any
):
    return described(book.price(provider, model, usage, at, **facts)), described(
        reference.price(provider, model, usage, at, **facts)
    )


def test_every_dimension_tier_and_date_equals_the_uncached_path() -> None:
    book, reference = PriceBook(), PriceBook(cache=False)
    statuses: Dict[str, int] = {}
    for (provider, model), (name, usage), tier, at in itertools.product(
        MODELS, USAGES.items(), TIERS, MOMENTS
    ):
        cached, expected = both(book, reference, provider, model, usage, at, tier=tier)
        assert cached == expected, (provider, model, name, tier, at)
        statuses[str(expected["status"])] = statuses.get(str(expected["status"]), 0) + 1
    # the grid really has priced and unpriced answers, and the cache really served the priced ones
    assert statuses[PRICED] > 1000 and statuses[UNPRICED] > 1000, statuses
    kinds = {type(value).__name__ for value in book._rates.values()}
    assert {"Rates", "Price", "object"} <= kinds, kinds  # rates, fixed unpriced answers, UNCACHED


def test_the_same_prices_again_come_from_the_cache() -> None:
    book, reference = PriceBook(), PriceBook(cache=False)
    usage = USAGES["cache read"]
    first = book.price("openai", "gpt-4o-mini-2024-07-18", usage, NOV_2026)
    key = ("openai", None, "gpt-4o-mini-2024-07-18", None, first_date(NOV_2026))
    assert isinstance(book._rates[key], rates.Rates)
    for extra in range(1, 50):  # other counts, same key: one entry, exact each time
        other = TokenUsage(input_tokens=1000 + extra * 37, cache_read_tokens=extra * 11, output_tokens=extra)
        assert described(
            book.price("openai", "gpt-4o-mini-2024-07-18", other, NOV_2026 + extra)
        ) == described(reference.price("openai", "gpt-4o-mini-2024-07-18", other, NOV_2026 + extra))
    assert len(book._rates) == 1
    # 1000 uncached input at $0.15/M, 4000 cache reads at $0.075/M, 50 output at $0.60/M
    assert (
        first.cost_usd
        == Decimal("1000") * Decimal("0.15") / 10**6
        + Decimal("4000") * Decimal("0.075") / 10**6
        + Decimal("50") * Decimal("0.6") / 10**6
    )


def first_date(at: float) -> Any:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(at, tz=timezone.utc).date()


def test_price_dates_are_respected_across_a_boundary() -> None:
    """One book prices across the day a price changes: the cached rates of the day before never leak."""
    book, reference = PriceBook(), PriceBook(cache=False)
    usage = USAGES["plain"]
    before = book.price("openai", "o3", usage, O3_CUT - 1)
    after = book.price("openai", "o3", usage, O3_CUT)
    assert before.cost_usd is not None and after.cost_usd is not None
    assert after.cost_usd < before.cost_usd  # the June 2025 price cut
    assert described(before) == described(reference.price("openai", "o3", usage, O3_CUT - 1))
    assert described(after) == described(reference.price("openai", "o3", usage, O3_CUT))
    # a tier without a price the day before its prices start, priced from that day
    flex_before = book.price("openai", "gpt-5", usage, FLEX_FROM - 1, tier="flex")
    flex_after = book.price("openai", "gpt-5", usage, FLEX_FROM, tier="flex")
    assert flex_before.status == UNPRICED and "no price for tier 'flex'" in flex_before.source
    assert flex_after.status == PRICED
    assert described(flex_after) == described(
        reference.price("openai", "gpt-5", usage, FLEX_FROM, tier="flex")
    )


def test_off_peak_prices_are_never_cached() -> None:
    book = PriceBook()
    peak = book.price("deepseek", "deepseek-chat", USAGES["plain"], NOV_2026)  # 11:06 UTC
    off_peak = book.price("deepseek", "deepseek-chat", USAGES["plain"], NOV_2026 + 6 * 3600 + 30 * 60)
    assert peak.cost_usd is not None and off_peak.cost_usd is not None
    assert off_peak.cost_usd < peak.cost_usd
    assert all(value is rates.UNCACHED for value in book._rates.values())


def test_unpriced_stays_unpriced() -> None:
    book, reference = PriceBook(), PriceBook(cache=False)
    for _ in range(2):  # the second time from the cache
        unknown = book.price("openai", "no-such-model-anywhere", USAGES["plain"], NOV_2026)
        assert (unknown.status, unknown.cost_usd, unknown.source) == (
            UNPRICED,
            None,
            "model not in price data",
        )
        audio = book.price("anthropic", "claude-sonnet-4-5", USAGES["audio"], NOV_2026)
        assert (audio.status, audio.cost_usd) == (UNPRICED, None)
        assert described(audio) == described(
            reference.price("anthropic", "claude-sonnet-4-5", USAGES["audio"], NOV_2026)
        )
        host = book.price(
            "acme", "gpt-4o", USAGES["plain"], NOV_2026, api_url="https://llm.unknown.example/v1"
        )
        assert (host.status, host.source) == (UNPRICED, "host or model not in price data")
        broken = book.price("openai", "gpt-4o", TokenUsage(input_tokens=10, cache_read_tokens=50), NOV_2026)
        assert broken == reference.price(
            "openai", "gpt-4o", TokenUsage(input_tokens=10, cache_read_tokens=50), NOV_2026
        )
        assert book.price("openai", "gpt-4o", None, NOV_2026).status == UNPRICED


def test_user_prices_and_aliases_bypass_the_cached_list_prices() -> None:
    usage = USAGES["cache read"]
    listed = PriceBook()
    list_price = listed.price("openai", "gpt-4o", usage, NOV_2026)
    assert list_price.status == PRICED
    # the user's own price for a listed model wins, however often the list price was used before
    overridden = PriceBook(models={"gpt-4o": {"input": "1", "output": "2", "cache_read": "0.5"}})
    overridden._rates.update(listed._rates)  # even with the list price already resolved in its cache
    for _ in range(2):
        own = overridden.price("openai", "gpt-4o", usage, NOV_2026)
        assert (own.status, own.cost_usd) == (PRICED_BY_USER, Decimal("3.1") / 1000)
        assert overridden.price("openai", "gpt-4o", usage, NOV_2026, tier="flex").status == UNPRICED
    # an alias prices as its target, under the target's name, with the target's cached rates
    aliased = PriceBook(aliases={"my-deployment": "gpt-4o-mini", "gpt-4o": "gpt-4o-mini"})
    mini = PriceBook(cache=False).price("openai", "gpt-4o-mini", usage, NOV_2026)
    for name in ("my-deployment", "gpt-4o", "my-deployment"):
        got = aliased.price("openai", name, usage, NOV_2026)
        assert described(got) == described(mini), name
    assert list_price.cost_usd != mini.cost_usd


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bearlumen.metering.pricing.MAX_ENTRIES", 5)
    book = PriceBook()
    for day in range(12):
        book.price("openai", "gpt-4o", USAGES["plain"], NOV_2026 + day * 86400)
        assert len(book._rates) <= 5


@pytest.mark.parametrize("name", sorted(USAGES))
def test_calls_with_every_fact_equal_the_reference(name: str) -> None:
    for provider, model in MODELS[:8]:
        for tier in (None, "priority"):
            call = LLMCall(
                integration="test",
                provider=provider,
                operation="chat",
                model_requested=model,
                model=model,
                usage=USAGES[name],
                tier=tier,
                timestamp=NOV_2026,
            )
            assert_priced_exactly(call)


def test_a_price_book_shared_by_threads_stays_exact() -> None:
    import threading

    book, reference = PriceBook(), PriceBook(cache=False)
    expected = {
        (model, at): described(reference.price("openai", model, USAGES["reasoning"], at))
        for model in ("gpt-4o", "gpt-5", "o3")
        for at in (O3_CUT - 1, O3_CUT, NOV_2026)
    }
    failures: list[Optional[str]] = []

    def work() -> None:
        for _ in range(20):
            for (model, at), answer in expected.items():
                if described(book.price("openai", model, USAGES["reasoning"], at)) != answer:
                    failures.append(f"{model}@{at}")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
