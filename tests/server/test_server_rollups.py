"""Rollups never drift from raw events: after a randomised mix of batches, single events and duplicates
(same key resent, with different values), every aggregate equals the one recomputed from the raw events
(exact Decimal equality), for random ranges that cut hours anywhere. Both backends."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

import httpx

from tests.server.helpers import iso, ok, uid
from tests.support.service import ServiceHandle

START = datetime(2024, 7, 1, 0, 0, tzinfo=timezone.utc)
SPAN_US = 3 * 24 * 3600 * 1_000_000
PICO = Decimal("0.000000000001")


def _get(api: httpx.Client, path: str, **params: Any) -> Dict[str, Any]:
    response = api.get(path, params={k: v for k, v in params.items() if v is not None})
    assert response.status_code == 200, response.text
    return dict(json.loads(response.content, parse_float=Decimal))


def _random_event(rng: random.Random, end_users: List[str]) -> Dict[str, Any]:
    when = START + timedelta(microseconds=rng.randrange(SPAN_US))
    metadata: Dict[str, Any] = {}
    if rng.random() < 0.7:
        metadata["model"] = rng.choice(["gpt-4o", "claude", "gemini"])
    roll = rng.random()
    if roll < 0.5:
        metadata["provider_cost_usd"] = str(
            Decimal(rng.randrange(0, 10**9)) * PICO * rng.choice([1, 1000, 10**6])
        )
    elif roll < 0.7:
        metadata["provider_cost_usd"] = rng.randrange(0, 5)  # integer dollars
    elif roll < 0.8:
        metadata["provider_cost_usd"] = "0.1234567890125"  # rounded half-even to 1e-12
    elif roll < 0.9:
        metadata["pricing_status"] = "unpriced"
    quantity: Any = rng.randrange(0, 100000) if rng.random() < 0.8 else float(f"{rng.random() * 1000:.6f}")
    fields = {
        "event_type": rng.choice(["llm_call", "tool_call"]),
        "metric_name": rng.choice(["llm_tokens", "requests"]),
        "quantity": quantity,
        "idempotency_key": uid("r"),
        "timestamp": iso(when),
        "agent_id": rng.choice(["a1", "a2", "a3", "a4", None]),
        "workflow_id": rng.choice(["w1", "w2", "w3", None]),
        "end_user_id": rng.choice([*end_users, None, None]),
        "subscription_id": rng.choice(["s1", "s2", None]),
        "metadata": metadata,
    }
    return {k: v for k, v in fields.items() if v is not None}


def _send_random_traffic(
    api: httpx.Client, rng: random.Random, end_users: List[str]
) -> Dict[str, Dict[str, Any]]:
    """Batches, single events and duplicates; returns the first payload sent for each key."""
    sent: List[Dict[str, Any]] = []
    for _ in range(40):
        batch: List[Dict[str, Any]] = []
        for _ in range(rng.randint(1, 120)):
            if sent and rng.random() < 0.25:
                old = dict(rng.choice(sent))
                old["quantity"] = 7  # a duplicate with other values: still skipped, changes nothing
                batch.append(old)
            else:
                fresh = _random_event(rng, end_users)
                batch.append(fresh)
                if rng.random() < 0.05:
                    batch.append(dict(fresh))  # repeated inside the batch
        if rng.random() < 0.2:
            batch = batch[:5]
            for item in batch:
                assert api.post("/v1/usage/events", json=item).status_code == 200
        else:
            assert api.post("/v1/usage/events/batch", json={"events": batch}).status_code == 200
        keys = {e["idempotency_key"] for e in sent}
        for item in batch:
            if item["idempotency_key"] not in keys:
                keys.add(item["idempotency_key"])
                sent.append(item)
    return {e["idempotency_key"]: e for e in sent}


def _raw_events(api: httpx.Client) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    while True:
        page = _get(api, "/v1/usage/events", limit=1000, offset=len(out))
        out.extend(page["events"])
        if len(out) >= page["total"]:
            return out


def _us(stamp: str) -> int:
    parsed = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return (parsed - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


def _expected(
    events: List[Dict[str, Any]], key: Any
) -> Dict[Any, Tuple[int, int, Decimal, Optional[Decimal]]]:
    """group -> (events, priced, quantity, cost or None) recomputed from raw events."""
    groups: Dict[Any, List[Any]] = defaultdict(lambda: [0, 0, Decimal(0), Decimal(0)])
    for e in events:
        g = groups[key(e)]
        g[0] += 1
        g[2] += Decimal(str(e["quantity"]))
        if e["providerCostUsd"] is not None:
            g[1] += 1
            g[3] += Decimal(e["providerCostUsd"])
    return {k: (n, p, q, c if p else None) for k, (n, p, q, c) in groups.items()}


def _cost(value: Optional[str]) -> Optional[Decimal]:
    return None if value is None else Decimal(value)


def test_rollups_equal_raw_recomputation(service: ServiceHandle) -> None:
    rng = random.Random(20241125)
    with service.client(service.create_key(uid("rollup"))) as api:
        end_users = [
            ok(api.post("/v1/end_users", json={"external_id": f"c{i}"}), 201)["endUser"]["id"]
            for i in range(3)
        ]
        first_sent = _send_random_traffic(api, rng, end_users)
        events = _raw_events(api)
        assert sorted(e["idempotencyKey"] for e in events) == sorted(first_sent)
        for e in events:  # the first payload won; resends with other values changed nothing
            sent = first_sent[e["idempotencyKey"]]
            assert Decimal(str(e["quantity"])) == Decimal(str(sent["quantity"]))
            assert e["timestamp"] == sent["timestamp"] and e["agentId"] == sent.get("agent_id")
        for e in events:
            e["_us"] = _us(e["timestamp"])
            e["_model"] = (e["metadata"] or {}).get("model")
            e["_day"] = e["timestamp"][:10]

        ranges: List[Tuple[Optional[int], Optional[int]]] = [(None, None)]
        for _ in range(6):
            a, b = sorted(rng.randrange(-3600 * 10**6, SPAN_US + 3600 * 10**6) for _ in range(2))
            ranges.append((a, b))
        ranges.append((0, 3600 * 10**6))  # exactly one whole hour
        base_us = _us(iso(START))
        for start, end in ranges:
            window = [
                e
                for e in events
                if (start is None or e["_us"] >= base_us + start)
                and (end is None or e["_us"] < base_us + end)
            ]
            params = {
                "start_date": None if start is None else iso(START + timedelta(microseconds=start)),
                "end_date": None if end is None else iso(START + timedelta(microseconds=end)),
            }
            _check_summary(api, window, params)
            _check_aggregations(api, window, params)
            if start is not None and end is not None:
                _check_attribution(api, window, params)
            filtered = [e for e in window if e["agentId"] == "a1"]
            _check_summary(api, filtered, {**params, "agent_id": "a1"})
            page = _get(api, "/v1/usage/events", **params, agent_id="a1", workflow_id="w2", limit=1)
            assert page["total"] == sum(1 for e in filtered if e["workflowId"] == "w2")


def _check_summary(api: httpx.Client, window: List[Dict[str, Any]], params: Dict[str, Any]) -> None:
    summary = _get(api, "/v1/usage/summary", **params)
    total = _expected(window, lambda e: "all").get("all", (0, 0, Decimal(0), None))
    assert (summary["totalEvents"], summary["pricedEventCount"]) == (total[0], total[1])
    assert Decimal(summary["totalQuantity"]) == total[2]
    assert _cost(summary["totalCost"]) == total[3]
    per_metric = _expected(window, lambda e: e["metricName"])
    assert {
        m["metricName"]: (m["eventCount"], Decimal(m["totalQuantity"]), _cost(m["totalCost"]))
        for m in summary["metrics"]
    } == {k: (v[0], v[2], v[3]) for k, v in per_metric.items()}


def _check_aggregations(api: httpx.Client, window: List[Dict[str, Any]], params: Dict[str, Any]) -> None:
    attribute = {
        "agent_id": "agentId",
        "workflow_id": "workflowId",
        "end_user_id": "endUserId",
        "subscription_id": "subscriptionId",
        "event_type": "eventType",
        "model": "_model",
        "day": "_day",
    }
    for group_by, field in attribute.items():
        answer = _get(api, "/v1/usage/aggregation", **params, group_by=group_by)
        got = {
            (i["metricName"], i["group"]): (
                i["eventCount"],
                i["pricedEventCount"],
                Decimal(i["totalQuantity"]),
                _cost(i["totalCost"]),
            )
            for i in answer["items"]
        }
        want = _expected(window, lambda e, f=field: (e["metricName"], e[f]))  # type: ignore[misc]
        assert got == want, group_by
        costs = [c for (_, _, _, c) in got.values() if c is not None]
        assert _cost(answer["totalCost"]) == (sum(costs, Decimal(0)) if costs else None)


def _check_attribution(api: httpx.Client, window: List[Dict[str, Any]], params: Dict[str, Any]) -> None:
    for dimension, field in (("agent", "agentId"), ("workflow", "workflowId")):
        answer = _get(api, f"/v1/cost_attribution/by_{dimension}", **params)
        got = {
            i["attributionValue"]: (
                i["eventCount"],
                i["pricedEventCount"],
                Decimal(i["totalQuantity"]),
                _cost(i["totalCost"]),
            )
            for i in answer["items"]
        }
        assert got == _expected(window, lambda e, f=field: e[f])  # type: ignore[misc]
        priced = [_cost(i["totalCost"]) for i in answer["items"] if i["totalCost"] is not None]
        assert _cost(answer["totalCost"]) == (sum(priced, Decimal(0)) if priced else None)
        assert answer["eventCount"] == len(window)
        values = _get(api, f"/v1/cost_attribution/{dimension}s", **params)["values"]
        assert values == sorted({e[field] for e in window if e[field] is not None})
