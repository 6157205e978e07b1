"""/v1/usage over HTTP on both backends: recording, validation, batches, queries and aggregates."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx
import pytest

from tests.server.helpers import all_events, error, event, iso, ok, record_batch

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=timezone.utc)


def test_record_one_and_its_duplicate(api: httpx.Client) -> None:
    body = (
        b'{"event_type":"token_usage","metric_name":"llm_tokens","quantity":150000,'
        b'"idempotency_key":"invoice-001-summary","agent_id":"support-bot","workflow_id":"customer-onboarding",'
        b'"metadata":{"model":"gpt-4-turbo","provider":"openai","provider_cost_usd":4.50}}'
    )
    first = ok(api.post("/v1/usage/events", content=body, headers={"content-type": "application/json"}))
    assert first["recorded"] is True and first["idempotencyKey"] == "invoice-001-summary"
    stored = first["event"]
    assert stored["id"].startswith("evt_")
    assert stored["providerCostUsd"] == "4.5"  # the JSON float 4.50, exactly
    assert stored["metadata"] == {"model": "gpt-4-turbo", "provider": "openai", "provider_cost_usd": 4.5}
    assert stored["quantity"] == 150000 and stored["agentId"] == "support-bot"
    assert stored["timestamp"].endswith("Z") and stored["receivedAt"].endswith("Z")

    again = ok(
        api.post(
            "/v1/usage/events", json={**event(), "idempotency_key": "invoice-001-summary", "quantity": 1}
        )
    )
    assert again["recorded"] is False
    assert again["event"] == stored  # the stored event, unchanged
    assert ok(api.get("/v1/usage/summary"))["totalEvents"] == 1


def test_events_without_a_key_get_one(api: httpx.Client) -> None:
    one = ok(api.post("/v1/usage/events", json=event(idempotency_key=None)))
    assert one["recorded"] and one["idempotencyKey"]
    batch = record_batch(api, [event(idempotency_key=None), event(idempotency_key=None)])
    keys = [r["idempotencyKey"] for r in batch["results"]]
    assert len(set(keys)) == 2 and batch["recorded_count"] == 2


def test_exact_decimal_costs_and_quantities(api: httpx.Client) -> None:
    body = (
        b'{"events":['
        b'{"event_type":"t","metric_name":"m","quantity":0.000001,"metadata":{"provider_cost_usd":0.1}},'
        b'{"event_type":"t","metric_name":"m","quantity":2.5,"metadata":{"provider_cost_usd":"0.2"}},'
        b'{"event_type":"t","metric_name":"m","quantity":1,"metadata":{"provider_cost_usd":0.123456789012345678}},'
        b'{"event_type":"t","metric_name":"m","quantity":123456789012.123456,"metadata":{"provider_cost_usd":0}}'
        b"]}"
    )
    ok(api.post("/v1/usage/events/batch", content=body, headers={"content-type": "application/json"}))
    summary = json.loads(api.get("/v1/usage/summary").content, parse_float=Decimal)
    # 0.1 + 0.2 + 0.123456789012 (rounded half-even at 1e-12) + 0: no binary float anywhere
    assert summary["totalCost"] == "0.423456789012"
    assert summary["totalQuantity"] == Decimal("123456789015.623457")  # an exact JSON number


def test_unpriced_events_are_counted_not_zero(api: httpx.Client) -> None:
    record_batch(
        api,
        [
            event(agent_id="a", metadata={"pricing_status": "unpriced", "provider_cost_usd": 1}),
            event(agent_id="a", metadata={"model": "m1"}),
            event(agent_id="b", metadata={"provider_cost_usd": None}),
        ],
    )
    summary = ok(api.get("/v1/usage/summary"))
    assert (
        summary["totalCost"] is None
        and summary["unpricedEventCount"] == 3
        and summary["pricedEventCount"] == 0
    )
    record_batch(api, [event(agent_id="a", metadata={"provider_cost_usd": "0"})])
    summary = ok(api.get("/v1/usage/summary"))
    assert (
        summary["totalCost"] == "0"
        and summary["pricedEventCount"] == 1
        and summary["unpricedEventCount"] == 3
    )
    stored = {e["agentId"]: e for e in all_events(api) if e["providerCostUsd"] is None}
    assert set(stored) == {"a", "b"}


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("quantity", -1, "invalid_quantity"),
        ("quantity", "5", "invalid_quantity"),
        ("quantity", True, "invalid_quantity"),
        ("quantity", None, "invalid_quantity"),
        ("quantity", 0.0000001, "invalid_quantity"),
        ("quantity", 10**13, "invalid_quantity"),
        ("timestamp", "not a date", "invalid_timestamp"),
        ("timestamp", "2024-02-30T00:00:00Z", "invalid_timestamp"),
        ("timestamp", 1700000000, "invalid_timestamp"),
        ("timestamp", "1969-12-31T23:59:59Z", "invalid_timestamp"),
        ("event_type", "", "invalid_request"),
        ("event_type", "x" * 101, "invalid_request"),
        ("metric_name", None, "invalid_request"),
        ("metric_name", 7, "invalid_request"),
        ("agent_id", "", "invalid_request"),
        ("workflow_id", "w" * 256, "invalid_request"),
        ("idempotency_key", "k" * 256, "invalid_request"),
        ("subscription_id", "nul\u0000", "invalid_request"),
        ("metadata", "text", "invalid_request"),
        ("metadata", {"provider_cost_usd": -1}, "invalid_request"),
        ("metadata", {"provider_cost_usd": "abc"}, "invalid_request"),
        ("metadata", {"provider_cost_usd": True}, "invalid_request"),
        ("metadata", {"model": 5}, "invalid_request"),
        ("metadata", {"blob": "x" * 17000}, "invalid_request"),
        ("agentid", "typo", "invalid_request"),
    ],
)
def test_invalid_event_is_rejected_and_nothing_written(
    api: httpx.Client, field: str, value: object, code: str
) -> None:
    bad = event()
    if value is None:
        bad.pop(field, None)
    else:
        bad[field] = value
    single = error(api.post("/v1/usage/events", json=bad), 400, code)
    assert single["param"] and single["param"].split(".")[0] == field
    batch = error(
        api.post("/v1/usage/events/batch", json={"events": [event(), bad, event()]}), 400, "invalid_batch"
    )
    assert [(e["index"], e["code"]) for e in batch["errors"]] == [(1, code)]
    assert ok(api.get("/v1/usage/events"))["total"] == 0


def test_timestamps_near_now_and_in_other_zones(api: httpx.Client) -> None:
    soon = datetime.now(timezone.utc) + timedelta(minutes=4)
    ok(api.post("/v1/usage/events", json=event(timestamp=iso(soon))))
    stored = ok(api.post("/v1/usage/events", json=event(timestamp="2024-01-01T10:00:00+02:00")))["event"]
    assert stored["timestamp"] == "2024-01-01T08:00:00.000000Z"
    naive = ok(api.post("/v1/usage/events", json=event(timestamp="2024-01-01T10:00:00")))["event"]
    assert naive["timestamp"] == "2024-01-01T10:00:00.000000Z"
    bare = ok(api.post("/v1/usage/events", json=event(timestamp="2024-01-31")))["event"]
    assert bare["timestamp"] == "2024-01-31T00:00:00.000000Z"


def test_batch_semantics(api: httpx.Client) -> None:
    result = record_batch(
        api,
        [
            {
                "event_type": "token_usage",
                "metric_name": "llm_tokens",
                "quantity": 1000,
                "idempotency_key": "b1-e1",
            },
            {
                "event_type": "token_usage",
                "metric_name": "llm_tokens",
                "quantity": 2000,
                "idempotency_key": "b1-e2",
            },
            {
                "event_type": "token_usage",
                "metric_name": "llm_tokens",
                "quantity": 9999,
                "idempotency_key": "b1-e1",
            },
        ],
    )
    assert (result["recorded_count"], result["skipped_count"]) == (2, 1)
    assert [r["recorded"] for r in result["results"]] == [True, True, False]
    assert [r["index"] for r in result["results"]] == [0, 1, 2]
    assert result["results"][2]["id"] == result["results"][0]["id"]  # the first occurrence counts
    again = record_batch(api, [event(idempotency_key="b1-e2"), event(idempotency_key="b1-new")])
    assert (again["recorded_count"], again["skipped_count"]) == (1, 1)
    assert again["results"][0]["id"] == result["results"][1]["id"]
    assert ok(api.get("/v1/usage/summary"))["totalQuantity"] == 1000 + 2000 + 100


def test_batch_limits_and_errors(api: httpx.Client) -> None:
    too_many = [event() for _ in range(1001)]
    assert (
        error(api.post("/v1/usage/events/batch", json={"events": too_many}), 400, "batch_too_large")["param"]
        == "events"
    )
    error(api.post("/v1/usage/events/batch", json={"events": []}), 400, "invalid_request")
    error(api.post("/v1/usage/events/batch", json={"events": {}}), 400, "invalid_request")
    error(api.post("/v1/usage/events/batch", json={"items": []}), 400, "invalid_request")
    error(api.post("/v1/usage/events/batch", json={"events": [1]}), 400, "invalid_batch")
    mixed = [event(), event(quantity=-5), event(end_user_id="eu_unknown"), event(timestamp="1960-01-01")]
    body = error(api.post("/v1/usage/events/batch", json={"events": mixed}), 400, "invalid_batch")
    assert [(e["index"], e["code"], e["param"]) for e in body["errors"]] == [
        (1, "invalid_quantity", "quantity"),
        (3, "invalid_timestamp", "timestamp"),
    ]
    assert ok(api.get("/v1/usage/events"))["total"] == 0  # never half-written
    assert record_batch(api, [event() for _ in range(1000)])["recorded_count"] == 1000


def test_end_users_by_id_or_external_id(api: httpx.Client) -> None:
    user = ok(api.post("/v1/end_users", json={"external_id": "cust-9"}), 201)["endUser"]
    record_batch(api, [event(end_user_id=user["id"]), event(end_user_id="cust-9")])
    events = all_events(api)
    assert [e["endUserId"] for e in events] == [user["id"], user["id"]]
    assert ok(api.get("/v1/usage/summary", params={"end_user_id": "cust-9"}))["totalEvents"] == 2
    assert ok(api.get("/v1/usage/summary", params={"end_user_id": user["id"]}))["totalEvents"] == 2
    ok(api.post(f"/v1/end_users/{user['id']}/deactivate"))  # usage is kept
    assert ok(api.get("/v1/usage/summary", params={"end_user_id": user["id"]}))["totalEvents"] == 2


def test_unknown_end_user_is_registered_on_first_use(api: httpx.Client) -> None:
    first = ok(api.post("/v1/usage/events", json=event(end_user_id="signup_42")))["event"]
    record_batch(api, [event(end_user_id="signup_42"), event(end_user_id="signup_43")])
    users = ok(api.get("/v1/end_users"))["endUsers"]
    registered = {u["externalId"]: u for u in users}
    assert sorted(registered) == ["signup_42", "signup_43"]
    assert registered["signup_42"]["metadata"] == {"registered_by": "usage"}
    assert first["endUserId"] == registered["signup_42"]["id"]
    assert ok(api.get("/v1/usage/summary", params={"end_user_id": "signup_42"}))["totalEvents"] == 2
    # the product's own signup call later finds the end user already there
    error(api.post("/v1/end_users", json={"external_id": "signup_42"}), 409, "duplicate_external_id")
    # a reference shaped like a service-issued id is never registered (another tenant's, or a typo)
    error(api.post("/v1/usage/events", json=event(end_user_id="eu_" + "0" * 24)), 404, "not_found")
    assert len(ok(api.get("/v1/end_users"))["endUsers"]) == 2


def test_client_clock_ahead_is_restamped_and_kept_in_metadata(api: httpx.Client) -> None:
    ahead = datetime.now(timezone.utc) + timedelta(minutes=6)
    sent = iso(ahead)
    stored = ok(api.post("/v1/usage/events", json=event(timestamp=sent, metadata={"a": 1})))["event"]
    assert stored["metadata"] == {"a": 1, "client_timestamp": sent}
    assert stored["timestamp"] <= iso(datetime.now(timezone.utc) + timedelta(seconds=1))
    far = ok(api.post("/v1/usage/events", json=event(timestamp="2999-01-01T00:00:00Z")))["event"]
    assert far["metadata"]["client_timestamp"] == "2999-01-01T00:00:00Z"
    assert far["timestamp"].startswith(str(datetime.now(timezone.utc).year))


def _seed(api: httpx.Client) -> None:
    """Events over two days, several dimensions, costs with many digits, one unpriced."""
    rows = [
        # (minutes after T0, metric, agent, workflow, model, quantity, cost)
        (0, "llm_tokens", "a1", "w1", "gpt-4o", 100, "0.000001"),
        (10, "llm_tokens", "a1", "w2", "gpt-4o", 200, "1.5"),
        (70, "llm_tokens", "a2", "w1", "claude", 300, "0.25"),
        (95, "requests", "a2", None, None, 1, None),
        (24 * 60 + 5, "llm_tokens", None, "w2", "gpt-4o", 400, "2"),
        (24 * 60 + 30, "requests", "a1", "w1", None, 2, "0.000000000001"),
    ]
    events = []
    for minutes, metric, agent, workflow, model, quantity, cost in rows:
        metadata = {} if model is None else {"model": model}
        if cost is not None:
            metadata["provider_cost_usd"] = cost
        events.append(
            event(
                metric_name=metric,
                agent_id=agent,
                workflow_id=workflow,
                quantity=quantity,
                timestamp=iso(T0 + timedelta(minutes=minutes)),
                metadata=metadata,
                subscription_id="sub_x" if agent == "a1" else None,
            )
        )
    record_batch(api, events)


def test_query_filters_order_and_pages(api: httpx.Client) -> None:
    _seed(api)
    everything = ok(api.get("/v1/usage/events"))
    assert everything["total"] == 6 and (everything["limit"], everything["offset"]) == (100, 0)
    stamps = [e["timestamp"] for e in everything["events"]]
    assert stamps == sorted(stamps)
    first = everything["events"][0]
    assert set(first) == {
        "id",
        "eventType",
        "metricName",
        "quantity",
        "idempotencyKey",
        "agentId",
        "workflowId",
        "subscriptionId",
        "endUserId",
        "timestamp",
        "receivedAt",
        "providerCostUsd",
        "metadata",
    }
    page = ok(api.get("/v1/usage/events", params={"limit": 2, "offset": 1}))
    assert [e["id"] for e in page["events"]] == [e["id"] for e in everything["events"][1:3]]
    assert page["total"] == 6
    assert ok(api.get("/v1/usage/events", params={"agent_id": "a1"}))["total"] == 3
    assert ok(api.get("/v1/usage/events", params={"metric_name": "requests"}))["total"] == 2
    assert ok(api.get("/v1/usage/events", params={"subscription_id": "sub_x"}))["total"] == 3
    assert (
        ok(api.get("/v1/usage/events", params={"event_type": "llm_call", "workflow_id": "w1"}))["total"] == 3
    )
    span = {"start_date": iso(T0 + timedelta(minutes=10)), "end_date": iso(T0 + timedelta(minutes=95))}
    assert [e["quantity"] for e in ok(api.get("/v1/usage/events", params=span))["events"]] == [200, 300]
    day = ok(api.get("/v1/usage/events", params={"start_date": "2024-03-02", "end_date": "2024-03-03"}))
    assert day["total"] == 2
    both = ok(api.get("/v1/usage/events", params={"agent_id": "a1", "workflow_id": "w1"}))  # no single rollup
    assert both["total"] == 2


def test_date_and_limit_errors(api: httpx.Client) -> None:
    for path in ("/v1/usage/events", "/v1/usage/summary", "/v1/usage/aggregation"):
        assert (
            error(api.get(path, params={"start_date": "31/01/2024"}), 400, "invalid_date")["param"]
            == "start_date"
        )
        error(api.get(path, params={"end_date": "2024-13-01"}), 400, "invalid_date")
        error(
            api.get(path, params={"start_date": "2024-02-01", "end_date": "2024-01-01"}), 400, "invalid_date"
        )
        error(api.get(path, params={"agent_id": ""}), 400, "invalid_request")
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "many"}):
        error(api.get("/v1/usage/events", params=bad), 400, "invalid_limit")
    for cursor in ("", "not base64!", "bm9wZQ", "MS4y" + "A" * 70, "OTk5OTk5OTk5OTk5OTk5OTk5OS4x", "LTEuMQ"):
        # empty, bad characters, "nope", too long, past 2**63, "-1.1"
        assert (
            error(api.get("/v1/usage/events", params={"cursor": cursor}), 400, "invalid_request")["param"]
            == "cursor"
        )
    error(api.get("/v1/usage/aggregation", params={"group_by": "color"}), 400, "invalid_request")


def test_aggregation_and_summary(api: httpx.Client) -> None:
    _seed(api)
    by_metric = ok(api.get("/v1/usage/aggregation"))
    assert by_metric["groupBy"] == "metric_name"
    assert [
        (i["metricName"], i["totalQuantity"], i["eventCount"], i["totalCost"]) for i in by_metric["items"]
    ] == [
        ("llm_tokens", 1000, 4, "3.750001"),
        ("requests", 3, 2, "0.000000000001"),
    ]
    assert "group" not in by_metric["items"][0]
    assert by_metric["totalCost"] == "3.750001000001"
    assert by_metric["items"][1]["unpricedEventCount"] == 1

    by_agent = ok(api.get("/v1/usage/aggregation", params={"group_by": "agent_id"}))
    assert [(i["metricName"], i["group"], i["eventCount"]) for i in by_agent["items"]] == [
        ("llm_tokens", "a1", 2),
        ("llm_tokens", "a2", 1),
        ("llm_tokens", None, 1),
        ("requests", "a1", 1),
        ("requests", "a2", 1),
    ]
    by_model = ok(api.get("/v1/usage/aggregation", params={"group_by": "model", "metric_name": "llm_tokens"}))
    assert [(i["group"], i["totalCost"]) for i in by_model["items"]] == [
        ("claude", "0.25"),
        ("gpt-4o", "3.500001"),
    ]
    by_day = ok(api.get("/v1/usage/aggregation", params={"group_by": "day"}))
    assert [(i["metricName"], i["group"], i["eventCount"]) for i in by_day["items"]] == [
        ("llm_tokens", "2024-03-01", 3),
        ("llm_tokens", "2024-03-02", 1),
        ("requests", "2024-03-01", 1),
        ("requests", "2024-03-02", 1),
    ]
    by_workflow = ok(api.get("/v1/usage/aggregation", params={"group_by": "workflow_id", "agent_id": "a1"}))
    assert [(i["metricName"], i["group"]) for i in by_workflow["items"]] == [
        ("llm_tokens", "w1"),
        ("llm_tokens", "w2"),
        ("requests", "w1"),
    ]
    for group in ("end_user_id", "subscription_id", "event_type"):
        items = ok(api.get("/v1/usage/aggregation", params={"group_by": group}))["items"]
        assert sum(i["eventCount"] for i in items) == 6

    summary = ok(api.get("/v1/usage/summary"))
    assert (summary["totalEvents"], summary["totalQuantity"], summary["totalCost"]) == (
        6,
        1003,
        "3.750001000001",
    )
    assert (summary["pricedEventCount"], summary["unpricedEventCount"]) == (5, 1)
    assert [m["metricName"] for m in summary["metrics"]] == ["llm_tokens", "requests"]
    partial = ok(
        api.get(
            "/v1/usage/summary",
            params={
                "start_date": iso(T0 + timedelta(minutes=5)),
                "end_date": iso(T0 + timedelta(hours=24, minutes=10)),
            },
        )
    )
    assert (partial["totalEvents"], partial["totalCost"]) == (4, "3.75")
    assert ok(api.get("/v1/usage/summary", params={"subscription_id": "sub_x"}))["totalEvents"] == 3
