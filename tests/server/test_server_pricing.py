"""Service-side pricing (docs/api.md, "Service-side pricing"): an event sent with
``metadata.pricing_status: "pending"`` is priced at ingest, by a real ``bearlumen serve`` on SQLite and on
PostgreSQL, exactly as the Python SDK prices the same call.

The expected result is computed apart from the service, in this process: the Python SDK's own event builder
(``build_event``) on an ``LLMCall`` with the same buckets, priced by a price book that takes genai-prices'
whole path for every call (``PriceBook(cache=False)``, the reference the cached rates are tested against),
while the service prices with its cached rates.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Dict, Iterator, Optional

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bearlumen.metering.event import build_event
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import BUCKETS, PART_BUCKETS, LLMCall, TokenUsage
from tests.server.conftest import new_tenant_client
from tests.server.helpers import all_events, error, iso, ok, record_batch, uid
from tests.support.service import start_service

PRICING_FIELDS = (
    "pricing_status",
    "pricing_source",
    "pricing_model",
    "pricing_provider",
    "provider_cost_usd",
)
NOW = datetime.now(timezone.utc).replace(microsecond=0)


def pending(
    provider: str, model: str, usage: TokenUsage, at: datetime = NOW, tier: Optional[str] = None, **extra: Any
) -> Dict[str, Any]:
    """An event as the Node SDK's track() sends it: buckets, provider, model, tier, pricing pending."""
    metadata: Dict[str, Any] = {"provider": provider, "model": model, "pricing_status": "pending", **extra}
    metadata.update(usage.as_metadata())
    if tier is not None:
        metadata["tier"] = tier
    return {
        "event_type": "token_usage",
        "metric_name": "llm_tokens",
        "quantity": usage.total_tokens,
        "idempotency_key": uid("llm"),
        "timestamp": iso(at),
        "metadata": metadata,
    }


def python_sdk(
    provider: str,
    model: str,
    usage: TokenUsage,
    at: datetime = NOW,
    tier: Optional[str] = None,
    book: Any = None,
) -> Dict[str, Any]:
    """The pricing fields the Python SDK puts on the event of the same call."""
    call = LLMCall(
        integration="test",
        provider=provider,
        operation="chat",
        model_requested=model,
        model=model,
        usage=usage,
        timestamp=at.timestamp(),
        tier=tier,
    )
    metadata = build_event(call, book or PriceBook(cache=False), "k")["metadata"]
    return {name: metadata[name] for name in PRICING_FIELDS if name in metadata}


def stored(api: httpx.Client, body: Dict[str, Any]) -> Dict[str, Any]:
    return dict(ok(api.post("/v1/usage/events", json=body))["event"])


def pricing_of(event: Dict[str, Any]) -> Dict[str, Any]:
    return {name: event["metadata"][name] for name in PRICING_FIELDS if name in event["metadata"]}


OPENAI_CACHED = TokenUsage(input_tokens=90, cache_read_tokens=1280, output_tokens=155)
ANTHROPIC_WRITES = TokenUsage(
    input_tokens=21,
    cache_write_tokens=1733,
    cache_write_1h_tokens=400,
    cache_read_tokens=300,
    output_tokens=561,
)
REASONING = TokenUsage(input_tokens=44, output_tokens=288, reasoning_tokens=9)


@pytest.mark.parametrize(
    ("provider", "model", "usage"),
    [
        ("openai", "gpt-4o-mini-2024-07-18", OPENAI_CACHED),
        ("anthropic", "claude-3-7-sonnet-20250219", ANTHROPIC_WRITES),
        ("openai", "gpt-5", REASONING),
    ],
)
def test_a_pending_event_is_priced_as_the_python_sdk_prices_it(
    api: httpx.Client, provider: str, model: str, usage: TokenUsage
) -> None:
    event = stored(api, pending(provider, model, usage))
    expected = python_sdk(provider, model, usage)
    assert expected["pricing_status"] == "priced"
    assert pricing_of(event) == expected  # the same decimal string, to the last digit, and the same fields
    assert event["providerCostUsd"] == expected["provider_cost_usd"]
    assert Decimal(event["providerCostUsd"]) > 0
    for name in BUCKETS:  # the buckets are kept as sent (bearlumen reprice reads them)
        assert event["metadata"][name] == getattr(usage, name)
    summary = ok(api.get("/v1/usage/summary"))
    assert (summary["totalCost"], summary["pricedEventCount"]) == (expected["provider_cost_usd"], 1)


def test_an_unknown_model_is_unpriced_with_the_reason_never_zero(api: httpx.Client) -> None:
    usage = TokenUsage(input_tokens=10, output_tokens=5)
    event = stored(api, pending("openai", "acme-model-nobody-prices", usage))
    assert event["providerCostUsd"] is None
    assert pricing_of(event) == python_sdk("openai", "acme-model-nobody-prices", usage)
    assert event["metadata"]["pricing_status"] == "unpriced"
    assert event["metadata"]["pricing_source"] == "model not in price data"
    no_usage = pending("openai", "gpt-4o-mini", usage)
    for name in list(no_usage["metadata"]):
        if name.endswith("_tokens"):
            del no_usage["metadata"][name]
    assert pricing_of(stored(api, no_usage)) == {
        "pricing_status": "unpriced",
        "pricing_source": "usage unavailable",
        "pricing_model": "gpt-4o-mini",
    }
    summary = ok(api.get("/v1/usage/summary"))
    assert (summary["totalCost"], summary["unpricedEventCount"]) == (None, 2)


def test_the_served_tier_is_priced_on_the_events_date(api: httpx.Client) -> None:
    usage = TokenUsage(input_tokens=1000, cache_read_tokens=2000, output_tokens=3000, reasoning_tokens=100)
    standard = stored(api, pending("openai", "gpt-5", usage))
    flex = stored(api, pending("openai", "gpt-5", usage, tier="flex"))
    assert pricing_of(flex) == python_sdk("openai", "gpt-5", usage, tier="flex")
    assert flex["metadata"]["pricing_status"] == "priced"
    assert Decimal(flex["providerCostUsd"]) < Decimal(standard["providerCostUsd"])
    # The price date is the event's timestamp: before genai-prices' data has the flex price, it is unpriced.
    before = datetime(2026, 10, 1, 12, tzinfo=timezone.utc)
    old = stored(api, pending("openai", "gpt-5", usage, at=before, tier="flex"))
    assert old["providerCostUsd"] is None
    assert pricing_of(old) == python_sdk("openai", "gpt-5", usage, at=before, tier="flex")
    assert old["metadata"]["pricing_source"] == "no price for tier 'flex' of gpt-5 on 2026-10-01"


def test_a_retried_event_is_stored_and_priced_once(api: httpx.Client) -> None:
    body = pending("anthropic", "claude-3-7-sonnet-20250219", ANTHROPIC_WRITES)
    first = ok(api.post("/v1/usage/events", json=body))
    again = ok(api.post("/v1/usage/events", json=body))
    assert (first["recorded"], again["recorded"]) == (True, False)
    assert again["event"]["id"] == first["event"]["id"]
    result = record_batch(api, [body, body])
    assert (result["recorded_count"], result["skipped_count"]) == (0, 2)
    events = all_events(api)
    assert len(events) == 1
    summary = ok(api.get("/v1/usage/summary"))
    assert summary["totalCost"] == first["event"]["providerCostUsd"]
    assert summary["totalEvents"] == 1


def test_an_explicit_cost_is_never_repriced_and_other_events_are_untouched(api: httpx.Client) -> None:
    given_cost = pending("openai", "gpt-4o-mini", OPENAI_CACHED, provider_cost_usd="0.123456789")
    event = stored(api, given_cost)
    assert event["providerCostUsd"] == "0.123456789"
    assert event["metadata"] == given_cost["metadata"]  # stored exactly as sent: nothing priced
    plain = pending("openai", "gpt-4o-mini", OPENAI_CACHED)
    plain["metadata"]["pricing_status"] = "unpriced"
    event = stored(api, plain)
    assert event["providerCostUsd"] is None
    assert event["metadata"] == plain["metadata"]
    del plain["metadata"]["pricing_status"]
    plain["idempotency_key"] = uid("llm")
    event = stored(api, plain)
    assert event["providerCostUsd"] is None
    assert event["metadata"] == plain["metadata"]


def test_a_batch_of_1000_pending_events_is_priced_exactly(api: httpx.Client) -> None:
    rng = random.Random(7)
    calls = [
        ("openai", "gpt-4o-mini-2024-07-18"),
        ("anthropic", "claude-3-7-sonnet-20250219"),
        ("openai", "gpt-5"),
    ]
    bodies, expected = [], Decimal(0)
    reference = PriceBook(cache=False)
    for i in range(1000):
        provider, model = calls[i % len(calls)]
        usage = TokenUsage(
            input_tokens=rng.randrange(0, 5000),
            cache_read_tokens=rng.randrange(0, 5000),
            cache_write_tokens=rng.randrange(0, 2000) if provider == "anthropic" else 0,
            output_tokens=rng.randrange(1, 3000),
        )
        bodies.append(pending(provider, model, usage))
        expected += Decimal(python_sdk(provider, model, usage, book=reference)["provider_cost_usd"])
    result = record_batch(api, bodies)
    assert result["recorded_count"] == 1000
    events = all_events(api)
    assert len(events) == 1000
    assert all(e["metadata"]["pricing_status"] == "priced" for e in events)
    assert sum(Decimal(e["providerCostUsd"]) for e in events) == expected
    summary = ok(api.get("/v1/usage/summary"))
    assert (Decimal(summary["totalCost"]), summary["pricedEventCount"]) == (expected, 1000)


BAD_COUNTS = [-1, 1.5, "12", True, [1], {"n": 1}, 10**12 + 1, 10**40]


@pytest.mark.parametrize("bucket", ["input_tokens", "output_tokens", "cache_write_1h_tokens", "web_searches"])
@pytest.mark.parametrize("value", BAD_COUNTS)
def test_a_malformed_token_count_is_a_400(sqlite_api: httpx.Client, bucket: str, value: Any) -> None:
    body = pending("openai", "gpt-4o-mini", OPENAI_CACHED)
    body["metadata"][bucket] = value
    answer = error(sqlite_api.post("/v1/usage/events", json=body), 400, "invalid_request")
    assert answer["param"] == f"metadata.{bucket}"
    batch = error(sqlite_api.post("/v1/usage/events/batch", json={"events": [body]}), 400, "invalid_batch")
    assert batch["errors"][0]["param"] == f"metadata.{bucket}"
    assert all_events(sqlite_api) == []


@pytest.mark.parametrize("name", ["provider", "tier", "api_url"])
def test_a_fact_that_is_not_a_string_is_a_400(sqlite_api: httpx.Client, name: str) -> None:
    body = pending("openai", "gpt-4o-mini", OPENAI_CACHED)
    body["metadata"][name] = 42
    assert error(sqlite_api.post("/v1/usage/events", json=body), 400, "invalid_request")["param"] == (
        f"metadata.{name}"
    )


def test_a_priced_cost_past_the_maximum_is_a_400(sqlite_api: httpx.Client) -> None:
    usage = TokenUsage(input_tokens=10**12, output_tokens=10**12)
    body = pending("anthropic", "claude-3-7-sonnet-20250219", usage)
    body["quantity"] = 10**12
    answer = error(sqlite_api.post("/v1/usage/events", json=body), 400, "invalid_request")
    assert answer["param"] == "metadata.provider_cost_usd"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
_FACTS = st.sampled_from(BUCKETS + PART_BUCKETS + ("provider", "model", "tier", "api_url", "total_tokens"))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(facts=st.dictionaries(_FACTS, _JSON | st.integers(min_value=0, max_value=10**13), max_size=8))
def test_fuzzed_pending_events_are_answered_200_or_400_never_5xx(
    sqlite_api: httpx.Client, facts: Dict[str, Any]
) -> None:
    body = pending("openai", "gpt-4o-mini", TokenUsage(input_tokens=1, output_tokens=1))
    body["metadata"].update(facts)
    answer = sqlite_api.post(
        "/v1/usage/events", content=json.dumps(body), headers={"content-type": "application/json"}
    )
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 200:
        status = answer.json()["event"]["metadata"]["pricing_status"]
        assert status in ("priced", "unpriced")
        assert (answer.json()["event"]["providerCostUsd"] is None) == (status == "unpriced")


# -- the operator's pricing file ---------------------------------------------------------------------
PRICING = {
    "aliases": {"my-gpt4o-deployment": "gpt-4o-mini"},
    "models": {"acme-ft-1": {"input": "2.00", "output": "8.00", "cache_read": "0.50"}},
}


@pytest.fixture(scope="module")
def priced_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    path = tmp_path_factory.mktemp("pricing") / "pricing.json"
    path.write_text(json.dumps(PRICING))
    handle = start_service(env={"BEARLUMEN_PRICING_FILE": str(path)})
    yield handle
    handle.close()


def test_the_operators_pricing_file_prices_aliases_and_models(priced_service: Any) -> None:
    book = PriceBook(PRICING["aliases"], PRICING["models"], cache=False)
    usage = TokenUsage(input_tokens=1000, cache_read_tokens=200, output_tokens=500)
    with new_tenant_client(priced_service) as api:
        user = stored(api, pending("openai", "acme-ft-1", usage))
        assert pricing_of(user) == python_sdk("openai", "acme-ft-1", usage, book=book)
        # USD per 1M tokens: 1000 x 2.00 + 200 x 0.50 + 500 x 8.00
        assert (
            Decimal(user["providerCostUsd"])
            == (1000 * Decimal("2.00") + 200 * Decimal("0.50") + 500 * Decimal("8.00")) / 10**6
        )
        assert user["metadata"]["pricing_status"] == "user_price"
        alias = stored(api, pending("azure", "my-gpt4o-deployment", usage))
        assert pricing_of(alias) == python_sdk("azure", "my-gpt4o-deployment", usage, book=book)
        assert alias["metadata"]["pricing_model"] == "gpt-4o-mini"
        assert alias["metadata"]["pricing_status"] == "priced"
        tiered = stored(api, pending("openai", "acme-ft-1", usage, tier="batch"))
        assert tiered["providerCostUsd"] is None
        assert tiered["metadata"]["pricing_source"] == "no user price for tier 'batch'"
