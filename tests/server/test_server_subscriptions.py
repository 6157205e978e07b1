"""/v1/subscriptions over HTTP on both backends."""

from __future__ import annotations

import httpx

from tests.server.helpers import error, ok

BASE = {
    "organization_id": "org_123",
    "plan_id": "plan_pro_monthly",
    "billing_cycle": "monthly",
    "start_date": "2024-01-01T00:00:00Z",
}


def test_create_retrieve_update_cancel_list(api: httpx.Client) -> None:
    user = ok(api.post("/v1/end_users", json={"external_id": "buyer"}), 201)["endUser"]
    sub = ok(api.post("/v1/subscriptions", json={**BASE, "end_user_id": user["id"]}), 201)["subscription"]
    assert sub["id"].startswith("sub_")
    assert (sub["organizationId"], sub["planId"], sub["billingCycle"]) == (
        "org_123",
        "plan_pro_monthly",
        "monthly",
    )
    assert sub["status"] == "ACTIVE" and sub["canceledAt"] is None and sub["endDate"] is None
    assert sub["startDate"] == "2024-01-01T00:00:00.000000Z"
    assert sub["endUserId"] == user["id"]
    assert ok(api.get(f"/v1/subscriptions/{sub['id']}"))["subscription"] == sub

    updated = ok(
        api.patch(
            f"/v1/subscriptions/{sub['id']}", json={"plan_id": "plan_enterprise", "end_date": "2024-12-31"}
        )
    )["subscription"]
    assert updated["planId"] == "plan_enterprise" and updated["endDate"] == "2024-12-31T00:00:00.000000Z"
    by_external = ok(api.patch(f"/v1/subscriptions/{sub['id']}", json={"end_user_id": "buyer"}))[
        "subscription"
    ]
    assert by_external["endUserId"] == user["id"]  # an external id resolves to the end user's id

    canceled = ok(api.post(f"/v1/subscriptions/{sub['id']}/cancel"))["subscription"]
    assert canceled["status"] == "CANCELED" and canceled["canceledAt"]
    again = ok(api.post(f"/v1/subscriptions/{sub['id']}/cancel"))["subscription"]
    assert again["canceledAt"] == canceled["canceledAt"]

    other = ok(api.post("/v1/subscriptions", json={**BASE, "organization_id": "org_9"}), 201)["subscription"]
    assert ok(api.get("/v1/subscriptions"))["total"] == 2
    assert [
        s["id"]
        for s in ok(api.get("/v1/subscriptions", params={"organization_id": "org_9"}))["subscriptions"]
    ] == [other["id"]]
    assert [
        s["id"] for s in ok(api.get("/v1/subscriptions", params={"status": "CANCELED"}))["subscriptions"]
    ] == [sub["id"]]
    page = ok(api.get("/v1/subscriptions", params={"limit": 1, "offset": 1}))
    assert [s["id"] for s in page["subscriptions"]] == [other["id"]] and page["total"] == 2


def test_validation_errors(api: httpx.Client) -> None:
    for missing in BASE:
        body = {k: v for k, v in BASE.items() if k != missing}
        assert error(api.post("/v1/subscriptions", json=body), 400, "invalid_request")["param"] == missing
    error(api.post("/v1/subscriptions", json={**BASE, "billing_cycle": "weekly"}), 400, "invalid_request")
    assert (
        error(api.post("/v1/subscriptions", json={**BASE, "start_date": "yesterday"}), 400, "invalid_date")[
            "param"
        ]
        == "start_date"
    )
    error(api.post("/v1/subscriptions", json={**BASE, "end_date": "2023-01-01"}), 400, "invalid_date")
    error(api.post("/v1/subscriptions", json={**BASE, "end_user_id": "eu_nobody"}), 404, "not_found")
    error(
        api.post("/v1/subscriptions", json={**BASE, "start_date": "2024-01-01", "bogus": 1}),
        400,
        "invalid_request",
    )
    error(api.get("/v1/subscriptions", params={"status": "PAUSED"}), 400, "invalid_request")
    error(api.get("/v1/subscriptions", params={"limit": 5000}), 400, "invalid_limit")
    sub = ok(api.post("/v1/subscriptions", json=BASE), 201)["subscription"]
    error(
        api.patch(f"/v1/subscriptions/{sub['id']}", json={"start_date": "2024-02-01"}), 400, "invalid_request"
    )
    error(api.patch(f"/v1/subscriptions/{sub['id']}", json={"end_date": "2020-01-01"}), 400, "invalid_date")
    error(
        api.patch(f"/v1/subscriptions/{sub['id']}", json={"billing_cycle": "daily"}), 400, "invalid_request"
    )
    assert ok(api.get("/v1/subscriptions"))["total"] == 1


def test_unknown_ids_are_404(api: httpx.Client) -> None:
    error(api.get("/v1/subscriptions/sub_000000000000000000000000"), 404, "not_found")
    error(
        api.patch("/v1/subscriptions/sub_000000000000000000000000", json={"plan_id": "x"}), 404, "not_found"
    )
    error(api.post("/v1/subscriptions/sub_000000000000000000000000/cancel"), 404, "not_found")
