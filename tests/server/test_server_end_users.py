"""/v1/end_users over HTTP on both backends."""

from __future__ import annotations

import httpx

from tests.server.helpers import error, ok


def test_create_get_update_list_deactivate_reactivate(api: httpx.Client) -> None:
    created = ok(
        api.post(
            "/v1/end_users",
            json={"external_id": "user_123", "name": "AI Startup Inc", "metadata": {"ai_provider": "openai"}},
        ),
        201,
    )["endUser"]
    assert created["id"].startswith("eu_")
    assert created["externalId"] == "user_123"
    assert created["status"] == "ACTIVE" and created["deactivatedAt"] is None
    assert created["metadata"] == {"ai_provider": "openai"} and created["email"] is None
    assert created["createdAt"].endswith("Z") and len(created["createdAt"]) == 27

    assert ok(api.get(f"/v1/end_users/{created['id']}"))["endUser"] == created

    updated = ok(
        api.patch(
            f"/v1/end_users/{created['id']}",
            json={"name": "Updated Name", "metadata": {"plan": "enterprise"}, "email": "a@b.example"},
        )
    )["endUser"]
    assert updated["name"] == "Updated Name"
    assert updated["metadata"] == {"plan": "enterprise"}  # replaced, not merged
    assert updated["email"] == "a@b.example"
    cleared = ok(api.patch(f"/v1/end_users/{created['id']}", json={"email": None}))["endUser"]
    assert cleared["email"] is None

    gone = ok(api.post(f"/v1/end_users/{created['id']}/deactivate"))["endUser"]
    assert gone["status"] == "DEACTIVATED" and gone["deactivatedAt"]
    again = ok(api.post(f"/v1/end_users/{created['id']}/deactivate"))["endUser"]
    assert again["deactivatedAt"] == gone["deactivatedAt"]  # idempotent
    back = ok(api.post(f"/v1/end_users/{created['id']}/reactivate"))["endUser"]
    assert back["status"] == "ACTIVE" and back["deactivatedAt"] is None


def test_list_filters_and_pages_oldest_first(api: httpx.Client) -> None:
    ids = [
        ok(api.post("/v1/end_users", json={"external_id": f"u{i}"}), 201)["endUser"]["id"] for i in range(5)
    ]
    ok(api.post(f"/v1/end_users/{ids[1]}/deactivate"))
    listing = ok(api.get("/v1/end_users"))
    assert [u["id"] for u in listing["endUsers"]] == ids
    assert (listing["total"], listing["limit"], listing["offset"]) == (5, 100, 0)
    page = ok(api.get("/v1/end_users", params={"limit": 2, "offset": 2}))
    assert [u["id"] for u in page["endUsers"]] == ids[2:4] and page["total"] == 5
    assert [u["id"] for u in ok(api.get("/v1/end_users", params={"status": "DEACTIVATED"}))["endUsers"]] == [
        ids[1]
    ]
    assert ok(api.get("/v1/end_users", params={"status": "ACTIVE"}))["total"] == 4
    error(api.get("/v1/end_users", params={"status": "GONE"}), 400, "invalid_request")


def test_validation_errors(api: httpx.Client) -> None:
    assert (
        error(api.post("/v1/end_users", json={"external_id": "x", "email": "nope"}), 400, "invalid_email")[
            "param"
        ]
        == "email"
    )
    error(api.post("/v1/end_users", json={"external_id": "x", "email": "a@b"}), 400, "invalid_email")
    assert error(api.post("/v1/end_users", json={}), 400, "invalid_request")["param"] == "external_id"
    error(api.post("/v1/end_users", json={"external_id": ""}), 400, "invalid_request")
    error(api.post("/v1/end_users", json={"external_id": "x" * 256}), 400, "invalid_request")
    error(api.post("/v1/end_users", json={"external_id": 5}), 400, "invalid_request")
    error(api.post("/v1/end_users", json={"external_id": "x", "name": "n" * 256}), 400, "invalid_request")
    error(api.post("/v1/end_users", json={"external_id": "x", "metadata": [1]}), 400, "invalid_request")
    big = {"blob": "x" * 17000}
    error(api.post("/v1/end_users", json={"external_id": "x", "metadata": big}), 400, "invalid_request")
    assert (
        error(
            api.post("/v1/end_users", json={"external_id": "x", "externalId": "y"}), 400, "invalid_request"
        )["param"]
        == "externalId"
    )
    error(
        api.post("/v1/end_users", content=b"{not json", headers={"content-type": "application/json"}),
        400,
        "invalid_request",
    )
    error(api.post("/v1/end_users", content=b"[1, 2]"), 400, "invalid_request")
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "x"}, {"offset": -1}):
        error(api.get("/v1/end_users", params=bad), 400, "invalid_limit")
    assert ok(api.get("/v1/end_users"))["total"] == 0  # nothing was written by any of these


def test_duplicate_external_id_is_409(api: httpx.Client) -> None:
    first = ok(api.post("/v1/end_users", json={"external_id": "dup"}), 201)["endUser"]
    error(api.post("/v1/end_users", json={"external_id": "dup"}), 409, "duplicate_external_id")
    other = ok(api.post("/v1/end_users", json={"external_id": "other"}), 201)["endUser"]
    error(
        api.patch(f"/v1/end_users/{other['id']}", json={"external_id": "dup"}), 409, "duplicate_external_id"
    )
    ok(api.patch(f"/v1/end_users/{first['id']}", json={"external_id": "dup"}))  # its own id is fine


def test_unknown_ids_are_404(api: httpx.Client) -> None:
    for request in (
        api.get("/v1/end_users/eu_000000000000000000000000"),
        api.patch("/v1/end_users/eu_000000000000000000000000", json={"name": "x"}),
        api.post("/v1/end_users/eu_000000000000000000000000/deactivate"),
        api.post("/v1/end_users/eu_000000000000000000000000/reactivate"),
    ):
        error(request, 404, "not_found")
