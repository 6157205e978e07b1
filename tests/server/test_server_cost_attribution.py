"""/v1/cost_attribution over HTTP on both backends, including ranges that cut hours."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import httpx

from tests.server.helpers import error, event, iso, ok, record_batch

T0 = datetime(2024, 5, 1, 0, 0, tzinfo=timezone.utc)
SPAN = {"start_date": "2024-05-01T00:00:00Z", "end_date": "2024-06-01T00:00:00Z"}


def _at(minutes: float) -> str:
    return iso(T0 + timedelta(minutes=minutes))


def test_by_agent_and_by_workflow(api: httpx.Client) -> None:
    record_batch(
        api,
        [
            event(
                agent_id="support-bot",
                workflow_id="onboarding",
                timestamp=_at(1),
                metadata={"provider_cost_usd": "4.50"},
            ),
            event(
                agent_id="support-bot",
                workflow_id="billing",
                timestamp=_at(2),
                metadata={"provider_cost_usd": "0.000123"},
            ),
            event(
                agent_id="researcher",
                workflow_id="onboarding",
                timestamp=_at(3),
                metadata={"provider_cost_usd": "9"},
            ),
            event(agent_id="idle", timestamp=_at(4), metadata={"pricing_status": "unpriced"}),
            event(workflow_id="billing", timestamp=_at(5), metadata={"provider_cost_usd": "1"}),
            event(
                agent_id="researcher", timestamp="2024-06-01T00:00:00Z", metadata={"provider_cost_usd": "100"}
            ),
        ],
    )
    result = ok(api.get("/v1/cost_attribution/by_agent", params=SPAN))
    assert result["dimension"] == "agent"
    assert [(i["attributionValue"], i["totalCost"], i["eventCount"]) for i in result["items"]] == [
        ("researcher", "9", 1),
        ("support-bot", "4.500123", 2),
        (None, "1", 1),
        ("idle", None, 1),
    ]
    assert result["items"][3]["unpricedEventCount"] == 1
    assert result["totalCost"] == "14.500123"
    assert Decimal(result["totalCost"]) == sum(
        Decimal(i["totalCost"]) for i in result["items"] if i["totalCost"]
    )
    assert (result["eventCount"], result["unpricedEventCount"]) == (5, 1)
    assert (result["startDate"], result["endDate"]) == (
        "2024-05-01T00:00:00.000000Z",
        "2024-06-01T00:00:00.000000Z",
    )

    workflows = ok(api.get("/v1/cost_attribution/by_workflow", params=SPAN))
    assert workflows["dimension"] == "workflow"
    assert [(i["attributionValue"], i["totalCost"]) for i in workflows["items"]] == [
        ("onboarding", "13.5"),
        ("billing", "1.000123"),
        (None, None),
    ]
    assert ok(api.get("/v1/cost_attribution/agents", params=SPAN))["values"] == [
        "idle",
        "researcher",
        "support-bot",
    ]
    assert ok(api.get("/v1/cost_attribution/workflows", params=SPAN))["values"] == ["billing", "onboarding"]
    empty = ok(
        api.get(
            "/v1/cost_attribution/by_agent", params={"start_date": "2020-01-01", "end_date": "2020-02-01"}
        )
    )
    assert (empty["items"], empty["totalCost"], empty["eventCount"]) == ([], None, 0)


def test_ranges_are_exact_at_any_boundary(api: httpx.Client) -> None:
    # events at 09:59:59.999999, 10:00, 10:20, 10:40, 11:00, 12:30 and 13:00 (one cent each, agent by hour)
    stamps = [
        T0 + timedelta(hours=10) - timedelta(microseconds=1),
        T0 + timedelta(hours=10),
        T0 + timedelta(hours=10, minutes=20),
        T0 + timedelta(hours=10, minutes=40),
        T0 + timedelta(hours=11),
        T0 + timedelta(hours=12, minutes=30),
        T0 + timedelta(hours=13),
    ]
    record_batch(
        api, [event(agent_id="a", timestamp=iso(t), metadata={"provider_cost_usd": "0.01"}) for t in stamps]
    )

    def count(start: datetime, end: datetime) -> int:
        answer = ok(
            api.get("/v1/cost_attribution/by_agent", params={"start_date": iso(start), "end_date": iso(end)})
        )
        expected = sum(1 for t in stamps if start <= t < end)
        assert answer["eventCount"] == expected, (start, end)
        if expected:
            assert Decimal(answer["totalCost"]) == Decimal("0.01") * expected
        return expected

    h = T0 + timedelta(hours=10)
    assert count(h, h + timedelta(hours=1)) == 3  # 10:00 inclusive, 11:00 exclusive
    assert count(h - timedelta(microseconds=1), h) == 1
    assert count(h + timedelta(minutes=10), h + timedelta(minutes=30)) == 1  # inside one hour
    assert count(h + timedelta(minutes=30), h + timedelta(hours=2, minutes=45)) == 3  # two partial edges
    assert count(h - timedelta(hours=1), h + timedelta(hours=3)) == 6
    assert count(h, h) == 0
    summary = ok(
        api.get(
            "/v1/usage/summary",
            params={"start_date": iso(h + timedelta(minutes=20)), "end_date": iso(h + timedelta(hours=3))},
        )
    )
    assert summary["totalEvents"] == 4  # 10:20, 10:40, 11:00, 12:30


def test_dates_are_required_and_checked(api: httpx.Client) -> None:
    for path in ("by_agent", "by_workflow", "agents", "workflows"):
        url = f"/v1/cost_attribution/{path}"
        assert error(api.get(url), 400, "invalid_request")["param"] == "start_date"
        error(api.get(url, params={"start_date": "2024-01-01"}), 400, "invalid_request")
        error(api.get(url, params={"start_date": "2024-01-01", "end_date": "soon"}), 400, "invalid_date")
        error(
            api.get(url, params={"start_date": "2024-02-01", "end_date": "2024-01-01"}), 400, "invalid_date"
        )
