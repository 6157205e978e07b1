"""Every snippet of the Python SDK reference, run as written against a real service (sync and async
clients; HTTP on SQLite and PostgreSQL, and embedded), with the keys it shows and their exact values."""

from __future__ import annotations

from typing import Any, Dict, Optional

import pytest

import bearlumen
from tests.sdk import reference_snippets as ref

ISO_Z = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"


def run(
    snippet: str, client: Any, capsys: pytest.CaptureFixture[str], ids: Optional[Dict[str, str]] = None
) -> tuple[Dict[str, Any], str]:
    """Run a snippet with ``client`` in scope, placeholder ids swapped for real ones: (names, stdout)."""
    for placeholder, real in (ids or {}).items():
        assert placeholder in snippet
        snippet = snippet.replace(placeholder, repr(real))
    namespace: Dict[str, Any] = {"client": client}
    capsys.readouterr()
    exec(compile(snippet, "<reference snippet>", "exec"), namespace)
    return namespace, capsys.readouterr().out


def test_installation_snippet(capsys: pytest.CaptureFixture[str]) -> None:
    names, _ = run(ref.INSTALL, None, capsys)
    client = names["client"]
    assert isinstance(client, bearlumen.Client)
    assert client.base_url == "http://127.0.0.1:8787"  # bearlumen serve's default
    client.close()


def test_import_exceptions_and_type_hints_snippets(capsys: pytest.CaptureFixture[str]) -> None:
    names, _ = run(ref.IMPORT_EXCEPTIONS, None, capsys)
    for name in (
        "InvalidEmailError",
        "DuplicateCustomerError",
        "InvalidRequestError",
        "AuthenticationError",
        "NotFoundError",
        "RateLimitError",
        "NetworkError",
    ):
        assert issubclass(names[name], names["BearLumenError"])
        assert names[name].__bases__ == (bearlumen.BearLumenError,)  # the reference's flat tree
    names, _ = run(ref.TYPE_HINTS, None, capsys)
    assert isinstance(names["client"], names["Client"])
    assert names["EndUser"].__annotations__ and names["CostBreakdownResponse"].__annotations__
    names["client"].close()


def test_end_user_snippets(client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    names, out = run(ref.CREATE_END_USER, client, capsys)
    end_user = names["result"]["endUser"]
    assert out == f"{end_user['id']}\n"
    assert end_user["id"].startswith("eu_")
    assert end_user["externalId"] == "user_123"
    assert end_user["name"] == "AI Startup Inc"
    assert end_user["metadata"] == {"ai_provider": "openai"}
    assert end_user["email"] is None
    assert end_user["status"] == "ACTIVE"
    assert end_user["deactivatedAt"] is None
    eu_id = end_user["id"]

    names, _ = run(ref.UPDATE_END_USER, client, capsys, {"'eu_12345'": eu_id})
    updated = names["result"]["endUser"]
    assert updated["id"] == eu_id
    assert updated["name"] == "Updated Name"
    assert updated["metadata"] == {"plan": "enterprise"}  # metadata replaces
    assert updated["externalId"] == "user_123"

    client.end_users.create(external_id="user_456", email="ops@example.com")
    names, _ = run(ref.LIST_END_USERS, client, capsys)
    listed = names["result"]
    assert [u["externalId"] for u in listed["endUsers"]] == ["user_123", "user_456"]  # oldest first
    assert (listed["total"], listed["limit"], listed["offset"]) == (2, 50, 0)
    assert listed["endUsers"][0] == updated

    deactivated = client.end_users.deactivate(eu_id)["endUser"]
    assert deactivated["status"] == "DEACTIVATED"
    assert deactivated["deactivatedAt"] is not None
    assert client.end_users.list(status="ACTIVE")["total"] == 1
    assert client.end_users.list(status="DEACTIVATED")["endUsers"][0]["id"] == eu_id

    run(ref.DEACTIVATE_REACTIVATE, client, capsys, {"'eu_12345'": eu_id})
    after = client.end_users.retrieve(eu_id)["endUser"]
    assert after["status"] == "ACTIVE"
    assert after["deactivatedAt"] is None
    assert client.end_users.list(status="ACTIVE")["total"] == 2


def test_subscription_snippets(client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    names, _ = run(ref.CREATE_SUBSCRIPTION, client, capsys)
    created = names["subscription"]["subscription"]
    assert created["id"].startswith("sub_")
    assert created["organizationId"] == "org_123"
    assert created["planId"] == "plan_pro_monthly"
    assert created["billingCycle"] == "monthly"
    assert created["startDate"] == "2024-01-01T00:00:00.000000Z"
    assert created["status"] == "ACTIVE"
    assert created["endDate"] is None and created["canceledAt"] is None
    client.subscriptions.create("org_999", "plan_free", "yearly", "2024-03-01")  # another organization
    sub_id = created["id"]

    names, _ = run(ref.RETRIEVE_UPDATE_CANCEL_LIST, client, capsys, {"'sub_12345'": sub_id})
    assert names["sub"]["subscription"] == created
    assert names["updated"]["subscription"]["planId"] == "plan_enterprise"
    assert names["updated"]["subscription"]["billingCycle"] == "monthly"
    cancelled = names["cancelled"]["subscription"]
    assert cancelled["status"] == "CANCELED"
    assert cancelled["canceledAt"] is not None
    listed = names["result"]
    assert [s["id"] for s in listed["subscriptions"]] == [sub_id]
    assert listed["subscriptions"][0]["planId"] == "plan_enterprise"
    assert listed["subscriptions"][0]["status"] == "CANCELED"
    assert (listed["total"], listed["limit"], listed["offset"]) == (1, 20, 0)
    assert client.subscriptions.list()["total"] == 2
    assert client.subscriptions.cancel(sub_id)["subscription"]["canceledAt"] == cancelled["canceledAt"]


def test_record_usage_snippet(client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    names, out = run(ref.RECORD_USAGE, client, capsys)
    result = names["result"]
    assert out == ""
    assert result["recorded"] is True
    assert result["idempotencyKey"] == "invoice-001-summary"
    event = result["event"]
    assert event["id"].startswith("evt_")
    assert event["eventType"] == "token_usage"
    assert event["metricName"] == "llm_tokens"
    assert event["quantity"] == 150000
    assert event["idempotencyKey"] == "invoice-001-summary"
    assert event["agentId"] == "support-bot"
    assert event["workflowId"] == "customer-onboarding"
    assert event["providerCostUsd"] == "4.5"
    assert event["metadata"]["model"] == "gpt-4-turbo"
    assert event["metadata"]["provider"] == "openai"

    names, out = run(ref.RECORD_USAGE, client, capsys)  # the same key again
    assert out == "Duplicate event skipped\n"
    assert names["result"]["recorded"] is False
    assert names["result"]["event"]["id"] == event["id"]
    assert client.usage.query()["total"] == 1


def test_record_batch_snippet(client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    names, out = run(ref.RECORD_BATCH, client, capsys)
    assert out == "Recorded: 2, Skipped: 0\n"
    results = names["result"]["results"]
    assert [(r["index"], r["idempotencyKey"], r["recorded"]) for r in results] == [
        (0, "batch-1-evt-1", True),
        (1, "batch-1-evt-2", True),
    ]
    assert all(r["id"].startswith("evt_") for r in results)

    names, out = run(ref.RECORD_BATCH, client, capsys)
    assert out == "Recorded: 0, Skipped: 2\n"
    assert [r["id"] for r in names["result"]["results"]] == [r["id"] for r in results]
    assert sorted(e["quantity"] for e in client.usage.query()["events"]) == [1000, 2000]


def _seed_january(client: Any) -> None:
    events = [
        # (metric, quantity, timestamp, subscription, cost)
        ("llm_tokens", 1000, "2024-01-05T10:00:00Z", "sub_123", "0.5"),
        ("llm_tokens", 2500, "2024-01-30T23:59:59Z", "sub_123", 1.25),
        ("llm_tokens", 999, "2024-01-31T00:00:00Z", "sub_123", 9),  # end_date is exclusive
        ("api_calls", 3, "2024-01-10T00:00:00Z", "sub_123", None),  # unpriced
        ("llm_tokens", 50, "2024-01-10T00:00:00Z", "sub_other", 9),  # another subscription
        ("llm_tokens", 7, "2023-12-31T23:59:59Z", "sub_123", 9),  # before start_date
    ]
    result = client.usage.record_batch(
        [
            {
                "event_type": "token_usage" if metric == "llm_tokens" else "api_call",
                "metric_name": metric,
                "quantity": quantity,
                "timestamp": timestamp,
                "subscription_id": subscription,
                "metadata": {} if cost is None else {"provider_cost_usd": cost},
            }
            for metric, quantity, timestamp, subscription, cost in events
        ]
    )
    assert result["recorded_count"] == len(events)


def test_query_aggregation_summary_snippets(client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _seed_january(client)

    names, _ = run(ref.QUERY_USAGE, client, capsys)
    events = names["events"]
    assert [(e["quantity"], e["timestamp"]) for e in events["events"]] == [
        (1000, "2024-01-05T10:00:00.000000Z"),
        (2500, "2024-01-30T23:59:59.000000Z"),
    ]
    assert [e["providerCostUsd"] for e in events["events"]] == ["0.5", "1.25"]
    assert (events["total"], events["limit"], events["offset"]) == (2, 100, 0)

    names, _ = run(ref.AGGREGATION, client, capsys)
    aggregation = names["aggregation"]
    assert aggregation["groupBy"] == "metric_name"
    assert aggregation["totalCost"] == "1.75"
    items = {item["metricName"]: item for item in aggregation["items"]}
    assert set(items) == {"llm_tokens", "api_calls"}
    tokens, calls = items["llm_tokens"], items["api_calls"]
    assert (tokens["totalQuantity"], tokens["eventCount"], tokens["totalCost"]) == (3500, 2, "1.75")
    assert (tokens["pricedEventCount"], tokens["unpricedEventCount"]) == (2, 0)
    assert (calls["totalQuantity"], calls["eventCount"], calls["totalCost"]) == (3, 1, None)
    assert (calls["pricedEventCount"], calls["unpricedEventCount"]) == (0, 1)

    names, _ = run(ref.SUMMARY, client, capsys)
    summary = names["summary"]
    assert summary["totalEvents"] == 3
    assert summary["totalQuantity"] == 3503
    assert summary["totalCost"] == "1.75"
    assert (summary["pricedEventCount"], summary["unpricedEventCount"]) == (2, 1)
    metrics = {m["metricName"]: m for m in summary["metrics"]}
    assert (metrics["llm_tokens"]["totalQuantity"], metrics["llm_tokens"]["eventCount"]) == (3500, 2)
    assert metrics["llm_tokens"]["totalCost"] == "1.75"
    assert (metrics["api_calls"]["eventCount"], metrics["api_calls"]["totalCost"]) == (1, None)


def test_cost_attribution_snippets(client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        # (agent, workflow, cost, timestamp)
        ("support-bot", "customer-onboarding", 4.50, "2024-01-02T09:00:00Z"),
        ("support-bot", "customer-onboarding", "0.25", "2024-01-20T09:00:00Z"),
        ("planner", "research", 1.1, "2024-01-03T09:00:00Z"),
        ("planner", "research", None, "2024-01-04T09:00:00Z"),  # unpriced
        (None, "customer-onboarding", 0.15, "2024-01-31T23:59:59Z"),  # no agent
        ("late-bot", "late-flow", 3, "2024-02-01T00:00:00Z"),  # end is exclusive
    ]
    for i, (agent, workflow, cost, timestamp) in enumerate(rows):
        client.usage.record(
            event_type="token_usage",
            metric_name="llm_tokens",
            quantity=100 * (i + 1),
            agent_id=agent,
            workflow_id=workflow,
            timestamp=timestamp,
            metadata={"model": "gpt-4o"} if cost is None else {"provider_cost_usd": cost},
        )

    names, out = run(ref.BY_AGENT, client, capsys)
    assert out == "support-bot: $4.75\nplanner: $1.1\nNone: $0.15\nTotal: $6\n"
    result = names["result"]
    assert result["dimension"] == "agent"
    assert result["totalCost"] == "6"
    assert (result["eventCount"], result["unpricedEventCount"]) == (5, 1)
    planner = result["items"][1]
    assert (planner["attributionValue"], planner["eventCount"], planner["pricedEventCount"]) == (
        "planner",
        2,
        1,
    )
    assert (planner["unpricedEventCount"], planner["totalQuantity"]) == (1, 700)
    assert result["startDate"] == "2024-01-01T00:00:00.000000Z"
    assert result["endDate"] == "2024-02-01T00:00:00.000000Z"

    names, _ = run(ref.BY_WORKFLOW, client, capsys)
    result = names["result"]
    assert result["dimension"] == "workflow"
    assert [(i["attributionValue"], i["totalCost"]) for i in result["items"]] == [
        ("customer-onboarding", "4.9"),
        ("research", "1.1"),
    ]
    assert result["totalCost"] == "6"

    _, out = run(ref.LIST_AGENTS, client, capsys)
    assert out == "Active agents: ['planner', 'support-bot']\n"
    _, out = run(ref.LIST_WORKFLOWS, client, capsys)
    assert out == "Active workflows: ['customer-onboarding', 'research']\n"


def test_error_handling_snippet(client: Any, make_client: Any, capsys: pytest.CaptureFixture[str]) -> None:
    _, out = run(ref.ERROR_HANDLING, client, capsys)  # a fresh tenant: the creation succeeds
    assert out == ""
    names, out = run(ref.ERROR_HANDLING, client, capsys)  # user_123 exists now
    assert "result" not in names
    with pytest.raises(bearlumen.DuplicateCustomerError) as info:  # what the snippet caught
        client.end_users.create(external_id="user_123", name="AI Startup Inc")
    assert out == f"Error: {info.value.message}\n"

    wrong_key = make_client(api_key="blm_" + "x" * 43)
    _, out = run(ref.ERROR_HANDLING, wrong_key, capsys)
    assert out == "Invalid API key\n"
