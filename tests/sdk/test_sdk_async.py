"""The AsyncClient used natively (``async with``, ``await``, concurrency) against the real deployments.

Every other SDK test also runs through an AsyncClient (the ``client`` fixture's async variants); these
add what only native async code shows."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import bearlumen
from bearlumen import DuplicateCustomerError, NotFoundError


async def test_async_client_end_to_end(deployment: Any, api_key: str) -> None:
    async with bearlumen.AsyncClient(api_key=api_key, base_url=deployment.base_url) as client:
        user = (await client.end_users.create("user_1", email="a@example.com"))["endUser"]
        results = await asyncio.gather(
            *(
                client.usage.record(
                    "token_usage",
                    "llm_tokens",
                    i,
                    end_user_id=user["id"],
                    agent_id="bot",
                    timestamp="2024-01-02T00:00:00Z",
                    metadata={"provider_cost_usd": "0.001"},
                )
                for i in range(1, 31)
            )
        )
        assert all(r["recorded"] for r in results)
        assert len({r["event"]["id"] for r in results}) == 30
        summary = await client.usage.summary(end_user_id=user["id"])
        assert (summary["totalEvents"], summary["totalQuantity"], summary["totalCost"]) == (30, 465, "0.03")
        by_agent = await client.cost_attribution.by_agent("2024-01-01", "2024-02-01")
        assert [(i["attributionValue"], i["totalCost"]) for i in by_agent["items"]] == [("bot", "0.03")]
        with pytest.raises(DuplicateCustomerError):
            await client.end_users.create("user_1")
        with pytest.raises(NotFoundError):
            await client.subscriptions.retrieve("sub_nope")
    assert client.is_closed
    await client.aclose()  # idempotent
    await client.close()


async def test_async_batch_and_pages(deployment: Any, api_key: str) -> None:
    client = bearlumen.AsyncClient(api_key=api_key, base_url=deployment.base_url)
    try:
        events = [{"event_type": "api_call", "metric_name": "requests", "quantity": 1} for _ in range(250)]
        result = await client.usage.record_batch(events)
        assert (result["recorded_count"], result["skipped_count"]) == (250, 0)
        page = await client.usage.query(metric_name="requests", limit=100, offset=200)
        assert (page["total"], len(page["events"]), page["offset"]) == (250, 50, 200)
    finally:
        await client.aclose()
