"""The published OpenAPI document lists every endpoint, and its request schemas match what is accepted."""

from __future__ import annotations

import httpx

from bearlumen.server.services import end_users, subscriptions
from bearlumen.server.usage.validate import EVENT_FIELDS
from tests.support.service import ServiceHandle

PATHS = {
    "/healthz": {"get"},
    "/readyz": {"get"},
    "/v1/end_users": {"get", "post"},
    "/v1/end_users/{end_user_id}": {"get", "patch"},
    "/v1/end_users/{end_user_id}/deactivate": {"post"},
    "/v1/end_users/{end_user_id}/reactivate": {"post"},
    "/v1/subscriptions": {"get", "post"},
    "/v1/subscriptions/{subscription_id}": {"get", "patch"},
    "/v1/subscriptions/{subscription_id}/cancel": {"post"},
    "/v1/usage/events": {"get", "post"},
    "/v1/usage/events/batch": {"post"},
    "/v1/usage/aggregation": {"get"},
    "/v1/usage/summary": {"get"},
    "/v1/cost_attribution/by_agent": {"get"},
    "/v1/cost_attribution/by_workflow": {"get"},
    "/v1/cost_attribution/agents": {"get"},
    "/v1/cost_attribution/workflows": {"get"},
}


def test_every_endpoint_is_documented(sqlite_service: ServiceHandle) -> None:
    schema = httpx.get(f"{sqlite_service.base_url}/openapi.json").json()
    assert {path: set(ops) for path, ops in schema["paths"].items()} == PATHS
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    components = schema["components"]["schemas"]
    documented = {
        "EndUserCreate": set(end_users.CREATE_FIELDS),
        "EndUserUpdate": set(end_users.CREATE_FIELDS),
        "SubscriptionCreate": set(subscriptions.CREATE_FIELDS),
        "SubscriptionUpdate": set(subscriptions.UPDATE_FIELDS),
        "EventInput": set(EVENT_FIELDS),
        "BatchInput": {"events"},
    }
    for name, accepted in documented.items():
        assert set(components[name]["properties"]) == accepted, name
    batch = schema["paths"]["/v1/usage/events/batch"]["post"]
    assert batch["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/BatchInput")
    query = {p["name"] for p in schema["paths"]["/v1/usage/events"]["get"]["parameters"]}
    assert {
        "subscription_id",
        "end_user_id",
        "metric_name",
        "event_type",
        "agent_id",
        "workflow_id",
        "start_date",
        "end_date",
        "limit",
        "offset",
    } <= query
