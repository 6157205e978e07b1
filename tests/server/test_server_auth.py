"""Authentication, tenancy isolation, the error envelope and request ids, over HTTP on both backends."""

from __future__ import annotations

import httpx

from tests.server.helpers import error, event, ok, record_batch, uid
from tests.support.service import ServiceHandle


def test_health_and_openapi_need_no_key(service: ServiceHandle) -> None:
    assert httpx.get(f"{service.base_url}/healthz").json() == {"status": "ok"}
    schema = httpx.get(f"{service.base_url}/openapi.json").json()
    assert "/v1/usage/events/batch" in schema["paths"]
    assert httpx.get(f"{service.base_url}/docs").status_code == 200


def test_missing_malformed_unknown_and_revoked_keys_answer_401(service: ServiceHandle) -> None:
    url = f"{service.base_url}/v1/end_users"
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer blm_" + "x" * 43},
        {"Authorization": "Bearer not-a-key"},
    ):
        response = httpx.get(url, headers=headers)
        body = error(response, 401, "authentication_failed")
        assert response.headers["www-authenticate"] == "Bearer"
        assert "blm_" not in body["message"]  # a key is never echoed

    key = service.create_key(uid("revoked"))
    assert httpx.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    from bearlumen.server.db import Database
    from bearlumen.server.keys import revoke_key

    db = Database(service.database_url)
    try:
        assert db.write(lambda conn: revoke_key(conn, key[:12])) is not None
    finally:
        db.close()
    error(httpx.get(url, headers={"Authorization": f"Bearer {key}"}), 401, "authentication_failed")


def test_401_comes_before_parameter_validation(service: ServiceHandle) -> None:
    response = httpx.get(f"{service.base_url}/v1/cost_attribution/by_agent?limit=x")
    error(response, 401, "authentication_failed")


def test_request_id_is_set_and_sane_ones_are_echoed(api: httpx.Client) -> None:
    fresh = api.get("/v1/end_users")
    assert fresh.headers["x-request-id"].startswith("req_")
    assert (
        api.get("/v1/end_users", headers={"X-Request-Id": "trace-42"}).headers["x-request-id"] == "trace-42"
    )
    insane = api.get("/v1/end_users", headers={"X-Request-Id": "bad id\twith spaces"})
    assert insane.headers["x-request-id"].startswith("req_")


def test_unknown_path_and_method(api: httpx.Client) -> None:
    error(api.get("/v1/nothing-here"), 404, "not_found")
    error(api.delete("/v1/end_users"), 405, "invalid_request")


def test_two_tenants_cannot_see_each_other(service: ServiceHandle) -> None:
    with service.client(service.create_key(uid("a"))) as a, service.client(service.create_key(uid("b"))) as b:
        user = ok(a.post("/v1/end_users", json={"external_id": "same-external-id"}), 201)["endUser"]
        sub = ok(
            a.post(
                "/v1/subscriptions",
                json={
                    "organization_id": "o",
                    "plan_id": "p",
                    "billing_cycle": "monthly",
                    "start_date": "2024-01-01",
                },
            ),
            201,
        )["subscription"]
        record_batch(a, [event(idempotency_key="shared-key", agent_id="agent-a", end_user_id=user["id"])])

        # b sees none of it, and a's ids answer exactly like unknown ids
        assert ok(b.get("/v1/end_users"))["total"] == 0
        assert ok(b.get("/v1/subscriptions"))["total"] == 0
        assert ok(b.get("/v1/usage/events"))["total"] == 0
        assert ok(b.get("/v1/usage/summary"))["totalEvents"] == 0
        span = {"start_date": "2000-01-01", "end_date": "2100-01-01"}
        assert ok(b.get("/v1/cost_attribution/agents", params=span))["values"] == []
        assert ok(b.get("/v1/usage/events", params={"end_user_id": user["id"]}))["total"] == 0
        for path in (
            f"/v1/end_users/{user['id']}",
            f"/v1/subscriptions/{sub['id']}",
        ):
            cross = error(b.get(path), 404, "not_found")
            unknown = error(b.get(path[:-4] + "0000"), 404, "not_found")
            assert cross["message"] == unknown["message"]
        error(b.post(f"/v1/end_users/{user['id']}/deactivate"), 404, "not_found")
        error(b.patch(f"/v1/end_users/{user['id']}", json={"name": "x"}), 404, "not_found")
        error(b.post(f"/v1/subscriptions/{sub['id']}/cancel"), 404, "not_found")
        # an event of b may not point at a's end user
        error(b.post("/v1/usage/events", json=event(end_user_id=user["id"])), 404, "not_found")
        # the same external id and the same idempotency key are independent per tenant
        ok(b.post("/v1/end_users", json={"external_id": "same-external-id"}), 201)
        assert record_batch(b, [event(idempotency_key="shared-key")])["recorded_count"] == 1
        assert ok(a.get(f"/v1/end_users/{user['id']}"))["endUser"]["status"] == "ACTIVE"
