"""Every method and parameter of the four resources beyond the reference's snippets, on every client
kind and deployment: retrieval, partial updates, clearing fields, all usage fields and filters,
``group_by``, datetime and Decimal arguments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, List

UTC = dt.timezone.utc


def test_end_user_fields_and_partial_updates(client: Any) -> None:
    created = client.end_users.create("user_1", "ada@example.com", "Ada", {"tier": "gold"})["endUser"]
    assert (created["externalId"], created["email"], created["name"]) == ("user_1", "ada@example.com", "Ada")
    assert client.end_users.retrieve(created["id"]) == {"endUser": created}

    renamed = client.end_users.update(created["id"], external_id="user_1b")["endUser"]
    assert (renamed["externalId"], renamed["email"], renamed["name"]) == ("user_1b", "ada@example.com", "Ada")
    assert renamed["metadata"] == {"tier": "gold"}  # not given: unchanged
    cleared = client.end_users.update(created["id"], email=None, name=None)["endUser"]
    assert (cleared["email"], cleared["name"], cleared["externalId"]) == (None, None, "user_1b")

    for i in range(3):
        client.end_users.create(f"user_{i + 2}")
    page = client.end_users.list(limit=2, offset=1)
    assert [u["externalId"] for u in page["endUsers"]] == ["user_2", "user_3"]
    assert (page["total"], page["limit"], page["offset"]) == (4, 2, 1)
    assert client.end_users.deactivate(created["id"])["endUser"]["status"] == "DEACTIVATED"
    assert client.end_users.deactivate(created["id"])["endUser"]["status"] == "DEACTIVATED"  # idempotent
    assert client.end_users.list(status="DEACTIVATED")["total"] == 1


def test_subscription_fields_and_partial_updates(client: Any) -> None:
    user = client.end_users.create("user_1")["endUser"]
    created = client.subscriptions.create(
        "org_1",
        "plan_pro",
        "quarterly",
        dt.date(2024, 1, 1),
        end_date=dt.datetime(2024, 12, 31, 23, 0, tzinfo=UTC),
        end_user_id=user["id"],
        metadata={"seats": 5},
    )["subscription"]
    assert created["startDate"] == "2024-01-01T00:00:00.000000Z"
    assert created["endDate"] == "2024-12-31T23:00:00.000000Z"
    assert (created["billingCycle"], created["endUserId"], created["metadata"]) == (
        "quarterly",
        user["id"],
        {"seats": 5},
    )

    updated = client.subscriptions.update(
        created["id"],
        billing_cycle="yearly",
        end_date=None,
        end_user_id=None,
        metadata={},
        organization_id="org_2",
    )["subscription"]
    assert (updated["billingCycle"], updated["endDate"], updated["endUserId"]) == ("yearly", None, None)
    assert (updated["metadata"], updated["organizationId"], updated["planId"]) == ({}, "org_2", "plan_pro")

    client.subscriptions.create("org_2", "plan_free", "monthly", "2024-02-01T00:00:00Z")
    client.subscriptions.cancel(created["id"])
    assert client.subscriptions.list("org_2")["total"] == 2
    assert [s["planId"] for s in client.subscriptions.list("org_2", status="ACTIVE")["subscriptions"]] == [
        "plan_free"
    ]
    assert client.subscriptions.list(organization_id="org_2", limit=1, offset=1)["subscriptions"][0][
        "planId"
    ] in (
        "plan_pro",
        "plan_free",
    )


def test_record_takes_every_field(client: Any) -> None:
    user = client.end_users.create("user_1")["endUser"]
    when = dt.datetime(2024, 1, 5, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    result = client.usage.record(
        "token_usage",
        "llm_tokens",
        Decimal("1234.5"),
        idempotency_key="k-1",
        agent_id="bot",
        workflow_id="flow",
        subscription_id="sub_x",
        end_user_id=user["id"],
        timestamp=when,
        metadata={"model": "gpt-4o", "provider_cost_usd": Decimal("0.000000000001"), "note": "ok"},
    )
    event = result["event"]
    assert result["recorded"] is True
    assert (event["quantity"], event["agentId"], event["workflowId"]) == (1234.5, "bot", "flow")
    assert (event["subscriptionId"], event["endUserId"], event["idempotencyKey"]) == (
        "sub_x",
        user["id"],
        "k-1",
    )
    assert event["timestamp"] == "2024-01-05T10:30:00.000000Z"  # converted to UTC
    assert event["providerCostUsd"] == "0.000000000001"  # a Decimal reaches the service exactly
    assert event["metadata"]["model"] == "gpt-4o"

    naive = client.usage.record("token_usage", "llm_tokens", 1, timestamp=dt.datetime(2024, 1, 6))["event"]
    assert naive["timestamp"] == "2024-01-06T00:00:00.000000Z"  # naive means UTC
    assert (
        client.usage.record("token_usage", "llm_tokens", 1, metadata={"provider_cost_usd": "1.10"})["event"][
            "providerCostUsd"
        ]
        == "1.1"
    )


def test_filters_and_group_by(client: Any) -> None:
    user = client.end_users.create("user_1")["endUser"]
    rows = [
        # (event_type, metric, quantity, agent, workflow, model, end user, subscription, day, cost)
        ("token_usage", "llm_tokens", 100, "bot", "flow_a", "gpt-4o", user["id"], "sub_1", 1, "0.1"),
        ("token_usage", "llm_tokens", 200, "bot", "flow_b", "gpt-4o-mini", None, "sub_1", 1, "0.2"),
        ("token_usage", "llm_tokens", 300, "planner", "flow_a", "gpt-4o", None, "sub_2", 2, "0.3"),
        ("api_call", "requests", 1, None, None, None, user["id"], None, 3, None),
    ]
    client.usage.record_batch(
        [
            {
                "event_type": et,
                "metric_name": metric,
                "quantity": q,
                "agent_id": agent,
                "workflow_id": wf,
                "end_user_id": eu,
                "subscription_id": sub,
                "timestamp": dt.datetime(2024, 3, day, 8 + q % 7, tzinfo=UTC),  # distinct instants
                "metadata": {
                    k: v for k, v in (("model", model), ("provider_cost_usd", cost)) if v is not None
                },
            }
            for et, metric, q, agent, wf, model, eu, sub, day, cost in rows
        ]
    )
    march = {"start_date": dt.date(2024, 3, 1), "end_date": "2024-04-01"}

    def quantities(**filters: Any) -> list[Any]:
        return [e["quantity"] for e in client.usage.query(**march, **filters)["events"]]

    assert quantities() == [100, 200, 300, 1]
    assert quantities(agent_id="bot") == [100, 200]
    assert quantities(workflow_id="flow_a") == [100, 300]
    assert quantities(end_user_id=user["id"]) == [100, 1]
    assert quantities(event_type="api_call") == [1]
    assert quantities(metric_name="llm_tokens", subscription_id="sub_1") == [100, 200]
    assert quantities(limit=2, offset=1) == [200, 300]
    assert client.usage.query("sub_2", **march)["total"] == 1
    assert (
        client.usage.query(start_date=dt.datetime(2024, 3, 2, tzinfo=UTC), end_date=dt.date(2024, 3, 3))[
            "total"
        ]
        == 1
    )

    def groups(group_by: str, **filters: Any) -> list[tuple[Any, ...]]:
        answer = client.usage.aggregation(group_by=group_by, **march, **filters)
        assert answer["groupBy"] == group_by
        return [
            (i["metricName"], i.get("group"), i["totalQuantity"], i["totalCost"]) for i in answer["items"]
        ]

    assert groups("agent_id", metric_name="llm_tokens") == [
        ("llm_tokens", "bot", 300, "0.3"),
        ("llm_tokens", "planner", 300, "0.3"),
    ]
    assert ("llm_tokens", "gpt-4o", 400, "0.4") in groups("model")
    assert groups("day", event_type="token_usage") == [
        ("llm_tokens", "2024-03-01", 300, "0.3"),
        ("llm_tokens", "2024-03-02", 300, "0.3"),
    ]
    assert {g[1] for g in groups("workflow_id")} == {"flow_a", "flow_b", None}
    assert {g[1] for g in groups("end_user_id")} == {user["id"], None}
    assert {g[1] for g in groups("subscription_id")} == {"sub_1", "sub_2", None}
    assert {g[1] for g in groups("event_type")} == {"token_usage", "api_call"}

    summary = client.usage.summary(agent_id="bot", **march)
    assert (summary["totalEvents"], summary["totalQuantity"], summary["totalCost"]) == (2, 300, "0.3")
    assert client.usage.summary(workflow_id="flow_a", end_user_id=user["id"], **march)["totalQuantity"] == 100
    unpriced = client.usage.summary(event_type="api_call", **march)
    assert (unpriced["totalCost"], unpriced["unpricedEventCount"]) == (None, 1)

    march_z = ("2024-03-01T00:00:00Z", dt.datetime(2024, 4, 1, tzinfo=UTC))
    assert client.cost_attribution.list_agents(*march_z)["values"] == ["bot", "planner"]
    assert client.cost_attribution.list_workflows(*march_z)["values"] == ["flow_a", "flow_b"]
    by_workflow = client.cost_attribution.by_workflow(*march_z)
    assert [(i["attributionValue"], i["totalCost"]) for i in by_workflow["items"]] == [
        ("flow_a", "0.4"),
        ("flow_b", "0.2"),
        (None, None),
    ]
    assert by_workflow["totalCost"] == "0.6"


def test_usage_query_cursor_walks_the_same_events_as_offsets(client: Any) -> None:
    # 23 events on 5 timestamps: ties are ordered by id, and a cursor between two equal timestamps holds
    stamps = [f"2024-05-0{1 + i % 5}T12:00:00Z" for i in range(23)]
    client.usage.record_batch(
        [
            {"event_type": "t", "metric_name": "m", "quantity": i, "timestamp": stamp}
            for i, stamp in enumerate(stamps)
        ]
    )
    by_offset = [e["id"] for o in range(0, 23, 7) for e in client.usage.query(limit=7, offset=o)["events"]]
    by_cursor: List[str] = []
    cursors = []
    cursor = None
    while True:
        page = client.usage.query(limit=7, cursor=cursor)
        by_cursor += [e["id"] for e in page["events"]]
        cursor = page["nextCursor"]
        cursors.append(cursor)
        if cursor is None:
            break
    assert by_cursor == by_offset and len(set(by_cursor)) == 23
    assert [c is None for c in cursors] == [False, False, False, True]  # pages of 7, 7, 7, 2
    assert client.usage.query(limit=23)["nextCursor"] is None  # exactly the last page
    filtered = client.usage.query(start_date="2024-05-02", end_date="2024-05-04", limit=3)
    rest = client.usage.query(start_date="2024-05-02", end_date="2024-05-04", cursor=filtered["nextCursor"])
    assert len(filtered["events"]) + len(rest["events"]) == filtered["total"] == 10
