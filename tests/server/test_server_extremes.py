"""Extreme and malformed inputs never make the service answer 5xx (issue 11's table, one test per row).

Over real HTTP against `bearlumen serve` on SQLite and on PostgreSQL: sums past 64 bits stay exact, JSON
nested past the parsers' limits is a clear 400, dates at the edges of the calendar, offsets past 2**63 and
NUL characters are refused with a message naming the parameter and its range.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict

import httpx
import orjson
import pytest

from tests.server.helpers import error, event, iso, ok, uid

FIRST_INSTANT = "0001-01-01T00:00:00Z"
LAST_INSTANT = "9999-12-31T23:59:59.999999Z"
BEFORE_FIRST = "0001-01-01T00:00:00+05:00"  # 0000-12-31T19:00Z in UTC
AFTER_LAST = "9999-12-31T23:59:59-05:00"  # 10000-01-01T04:59:59Z in UTC


def _hour(hours_back: int) -> datetime:
    now = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
    return now - timedelta(hours=hours_back)


# -- sums past 64 bits ---------------------------------------------------------------------------------
def test_sums_past_64_bits_are_exact(api: httpx.Client) -> None:
    """Ten 1e12-token events of 1e6 USD each in one hour overflowed the hourly rollup (500 for every later
    event of that hour). Now every event is stored and every total is exact, from rollups and raw events."""
    hour = _hour(3)
    big = {"quantity": 10**12, "metadata": {"provider_cost_usd": "1000000", "model": "m"}, "agent_id": "a"}
    for minute in range(10):  # one request each: ten separate rollup additions
        body = event(timestamp=iso(hour + timedelta(minutes=minute)), **big)
        assert ok(api.post("/v1/usage/events", json=body))["recorded"] is True
    batch = [event(timestamp=iso(hour + timedelta(minutes=30, seconds=s)), **big) for s in range(20)]
    assert ok(api.post("/v1/usage/events/batch", json={"events": batch}))["recorded_count"] == 20
    small = event(
        timestamp=iso(hour + timedelta(minutes=59)), quantity=1, metadata={"provider_cost_usd": "0.5"}
    )
    assert ok(api.post("/v1/usage/events", json=small))["recorded"] is True

    whole_hour = {"start_date": iso(hour), "end_date": iso(hour + timedelta(hours=1))}  # the rollups
    partial = {
        "start_date": iso(hour + timedelta(seconds=1)),
        "end_date": iso(hour + timedelta(minutes=59, seconds=1)),
    }
    for span, events, quantity, cost in (
        (whole_hour, 31, 30 * 10**12 + 1, Decimal(30 * 10**6) + Decimal("0.5")),
        (partial, 30, 29 * 10**12 + 1, Decimal(29 * 10**6) + Decimal("0.5")),  # minute 0 is outside
    ):
        summary = ok(api.get("/v1/usage/summary", params=span))
        assert summary["totalEvents"] == events
        assert summary["totalQuantity"] == quantity
        assert Decimal(summary["totalCost"]) == cost
        by_agent = ok(api.get("/v1/cost_attribution/by_agent", params=span))
        assert Decimal(by_agent["totalCost"]) == cost
        assert {i["attributionValue"]: Decimal(i["totalCost"]) for i in by_agent["items"]} == {
            "a": cost - Decimal("0.5"),
            None: Decimal("0.5"),
        }
        grouped = ok(api.get("/v1/usage/aggregation", params={**span, "group_by": "model"}))
        assert sum(Decimal(i["totalCost"]) for i in grouped["items"]) == cost
        assert sum(i["totalQuantity"] for i in grouped["items"]) == quantity


def test_rollup_carries_cross_the_limb_exactly(api: httpx.Client) -> None:
    """Values just below 10**18 units: every addition after the first crosses the rollup's low-part limit
    and carries, one request at a time (SQL arithmetic) and within one batch (Python arithmetic)."""
    hour = _hour(5)
    quantity, cost = Decimal("700000000000.123456"), Decimal("700000.000000000001")
    fields = {"metric_name": "carry", "quantity": quantity, "metadata": {"provider_cost_usd": str(cost)}}
    for minute in range(7):
        body = event(timestamp=iso(hour + timedelta(minutes=minute)), **fields)
        response = api.post(
            "/v1/usage/events", content=_decimal_json(body), headers={"Content-Type": "application/json"}
        )
        assert ok(response)["recorded"] is True
    batch = {"events": [event(timestamp=iso(hour + timedelta(minutes=30 + m)), **fields) for m in range(6)]}
    response = api.post(
        "/v1/usage/events/batch", content=_decimal_json(batch), headers={"Content-Type": "application/json"}
    )
    assert ok(response)["recorded_count"] == 6
    span = {"start_date": iso(hour), "end_date": iso(hour + timedelta(hours=1)), "metric_name": "carry"}
    answer = api.get("/v1/usage/summary", params=span)
    assert answer.status_code == 200, answer.text
    summary = json.loads(answer.text, parse_float=Decimal)  # exact, not through a binary float
    assert summary["totalEvents"] == 13
    assert summary["totalQuantity"] == quantity * 13
    assert Decimal(summary["totalCost"]) == cost * 13


def _decimal_json(value: Any) -> bytes:
    """JSON with Decimals written as the exact number literals they are."""
    return orjson.dumps(value, default=lambda d: orjson.Fragment(str(d)) if isinstance(d, Decimal) else d)


# -- nesting depth -------------------------------------------------------------------------------------
def _nested(depth: int) -> Any:
    """``depth`` levels of objects: {"a": {"a": ... {}}}."""
    value: Dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def _deep_body(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


@pytest.mark.parametrize(
    "path", ["/v1/usage/events", "/v1/usage/events/batch", "/v1/end_users", "/v1/subscriptions"]
)
def test_body_nested_past_1024_levels_is_a_clear_400(api: httpx.Client, path: str) -> None:
    for depth in (1025, 5000, 100_000):
        response = api.post(path, content=_deep_body(depth), headers={"Content-Type": "application/json"})
        body = error(response, 400, "invalid_request")
        assert "nested more than 1024 levels" in body["message"]


def _post(api: httpx.Client, path: str, body: Any, depth: int) -> httpx.Response:
    """POST ``body`` with its ``"NESTED"`` string replaced by ``depth`` levels of objects (JSON encoders
    refuse to write such depths, so the bytes are made by hand)."""
    content = orjson.dumps(body).replace(b'"NESTED"', _deep_body(depth))
    return api.post(path, content=content, headers={"Content-Type": "application/json"})


def test_metadata_nested_255_to_1024_levels_names_the_depth(api: httpx.Client) -> None:
    for depth in (255, 600, 1000):
        single = error(
            _post(api, "/v1/usage/events", event(metadata="NESTED"), depth), 400, "invalid_request"
        )
        assert single["param"] == "metadata"
        assert "nested too deeply" in single["message"] and "254 levels" in single["message"]
        batch = _post(api, "/v1/usage/events/batch", {"events": [event(metadata="NESTED")]}, depth)
        item = error(batch, 400, "invalid_batch")["errors"][0]
        assert item["param"] == "metadata" and "nested too deeply" in item["message"]
        user = _post(api, "/v1/end_users", {"external_id": uid("u"), "metadata": "NESTED"}, depth)
        assert "nested too deeply" in error(user, 400, "invalid_request")["message"]
    deepest = ok(_post(api, "/v1/usage/events", event(metadata="NESTED"), 254))
    assert deepest["event"]["metadata"] == _nested(254)


# -- dates at the edges of the calendar ----------------------------------------------------------------
RANGE_QUERIES = [
    "/v1/usage/events",
    "/v1/usage/summary",
    "/v1/usage/aggregation",
    "/v1/cost_attribution/by_agent",
    "/v1/cost_attribution/by_workflow",
    "/v1/cost_attribution/agents",
    "/v1/cost_attribution/workflows",
]


@pytest.mark.parametrize("path", RANGE_QUERIES)
def test_dates_outside_the_calendar_are_400(api: httpx.Client, path: str) -> None:
    for start, end, bad in (
        (BEFORE_FIRST, LAST_INSTANT, "start_date"),
        (FIRST_INSTANT, AFTER_LAST, "end_date"),
        (BEFORE_FIRST, AFTER_LAST, "start_date"),
    ):
        body = error(api.get(path, params={"start_date": start, "end_date": end}), 400, "invalid_date")
        assert body["param"] == bad
        assert "0001-01-01T00:00:00Z" in body["message"] and "9999-12-31" in body["message"]
    ok(api.get(path, params={"start_date": FIRST_INSTANT, "end_date": LAST_INSTANT}))


def test_subscription_dates_outside_the_calendar_are_400(api: httpx.Client) -> None:
    base = {"organization_id": uid("org"), "plan_id": "p", "billing_cycle": "monthly"}
    for fields, bad in (
        ({"start_date": BEFORE_FIRST}, "start_date"),
        ({"start_date": FIRST_INSTANT, "end_date": AFTER_LAST}, "end_date"),
    ):
        assert (
            error(api.post("/v1/subscriptions", json={**base, **fields}), 400, "invalid_date")["param"] == bad
        )
    created = ok(
        api.post("/v1/subscriptions", json={**base, "start_date": FIRST_INSTANT, "end_date": LAST_INSTANT}),
        201,
    )["subscription"]
    assert (created["startDate"], created["endDate"]) == ("0001-01-01T00:00:00.000000Z", LAST_INSTANT)
    patched = api.patch(f"/v1/subscriptions/{created['id']}", json={"end_date": AFTER_LAST})
    assert error(patched, 400, "invalid_date")["param"] == "end_date"


def test_event_timestamp_outside_the_calendar_is_400(api: httpx.Client) -> None:
    for stamp in (BEFORE_FIRST, AFTER_LAST):
        response = api.post("/v1/usage/events", json=event(timestamp=stamp))
        assert error(response, 400, "invalid_timestamp")["param"] == "timestamp"


# -- offsets past 2**63 --------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/usage/events", "/v1/end_users", "/v1/subscriptions"])
def test_offsets_past_2_63_are_400(api: httpx.Client, path: str) -> None:
    for offset in (2**63, 2**64 + 5, 10**30):
        body = error(api.get(path, params={"offset": offset}), 400, "invalid_limit")
        assert body["param"] == "offset"
        assert str(2**63 - 1) in body["message"]
    last = ok(api.get(path, params={"offset": 2**63 - 1, "limit": 1000}))
    assert last["offset"] == 2**63 - 1 and last["limit"] == 1000
    assert error(api.get(path, params={"limit": 2**63}), 400, "invalid_limit")["param"] == "limit"
    assert error(api.get(path, params={"offset": -1}), 400, "invalid_limit")["param"] == "offset"


# -- NUL characters ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/end_users/eu_%00x"),
        ("PATCH", "/v1/end_users/eu_%00x"),
        ("POST", "/v1/end_users/%00/deactivate"),
        ("POST", "/v1/end_users/%00/reactivate"),
        ("GET", "/v1/subscriptions/sub_%00"),
        ("PATCH", "/v1/subscriptions/sub_%00"),
        ("POST", "/v1/subscriptions/%00/cancel"),
    ],
)
def test_nul_in_a_path_id_is_400(api: httpx.Client, method: str, path: str) -> None:
    response = api.request(method, path, json={} if method == "PATCH" else None)
    body = error(response, 400, "invalid_request")
    assert body["param"] in ("end_user_id", "subscription_id")


def test_nul_in_query_and_body_text_is_400(api: httpx.Client) -> None:
    listed = api.get("/v1/subscriptions", params={"organization_id": "org\x00"})
    assert error(listed, 400, "invalid_request")["param"] == "organization_id"
    for name in ("metric_name", "agent_id", "end_user_id", "subscription_id"):
        assert (
            error(api.get("/v1/usage/events", params={name: "x\x00"}), 400, "invalid_request")["param"]
            == name
        )
    created = api.post(
        "/v1/subscriptions",
        json={
            "organization_id": "o\x00",
            "plan_id": "p",
            "billing_cycle": "monthly",
            "start_date": "2024-01-01",
        },
    )
    assert error(created, 400, "invalid_request")["param"] == "organization_id"
