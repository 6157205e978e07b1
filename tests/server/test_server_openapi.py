"""The published OpenAPI document lists every endpoint, and its request schemas match what is accepted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Dict, Iterator, Set, Tuple

import httpx

from bearlumen.server.app import create_app
from bearlumen.server.services import end_users, subscriptions
from bearlumen.server.usage.validate import EVENT_FIELDS
from tests.server.helpers import error
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
    "/v1/traces": {"post"},
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


# -- the document is the truth -------------------------------------------------------------------------
DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _schema(service: ServiceHandle) -> Dict[str, Any]:
    return dict(httpx.get(f"{service.base_url}/openapi.json").json())


def _operations(schema: Dict[str, Any]) -> Iterator[Tuple[str, str, Dict[str, Any]]]:
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_every_operation_lists_the_statuses_it_answers(sqlite_service: ServiceHandle) -> None:
    schema = _schema(sqlite_service)
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, method, operation in _operations(schema):
        statuses = set(operation["responses"])
        assert "422" not in statuses, (method, path)  # never sent: validation failures are 400
        if not path.startswith("/v1/"):
            continue
        expected = {"400", "401", "413", "429", "503"}
        if "requestBody" in operation:
            expected.add("408")
        if "{" in path or (method, path) in {("post", "/v1/usage/events"), ("post", "/v1/subscriptions")}:
            expected.add("404")
        if (method, path) in {("post", "/v1/end_users"), ("patch", "/v1/end_users/{end_user_id}")}:
            expected.add("409")
        if path == "/v1/traces":  # OTLP/HTTP: a malformed or unsupported request gets a google.rpc.Status
            expected.add("415")
        success = (
            {"201"}
            if (method, path) in {("post", "/v1/end_users"), ("post", "/v1/subscriptions")}
            else {"200"}
        )
        assert statuses == expected | success, (method, path)
        for status in expected:
            answer = operation["responses"][status]
            if path == "/v1/traces" and status in ("400", "415"):
                assert "google.rpc.Status" in answer["content"]["application/json"]["schema"]["description"]
                continue
            assert answer["content"]["application/json"]["schema"] == envelope
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        assert operation["security"] == [{"HTTPBearer": []}]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "503" in schema["paths"]["/readyz"]["get"]["responses"]


def test_constrained_fields_have_enums_formats_and_bounds(sqlite_service: ServiceHandle) -> None:
    schema = _schema(sqlite_service)
    params = {
        (path, p["name"]): p["schema"]
        for path, _method, operation in _operations(schema)
        for p in operation.get("parameters", [])
    }
    assert params[("/v1/end_users", "status")]["enum"] == ["ACTIVE", "DEACTIVATED"]
    assert params[("/v1/subscriptions", "status")]["enum"] == ["ACTIVE", "CANCELED"]
    assert "day" in params[("/v1/usage/aggregation", "group_by")]["enum"]
    limit = params[("/v1/end_users", "limit")]
    assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, 1000)
    assert params[("/v1/usage/events", "offset")]["maximum"] == 2**63 - 1
    dates = params[("/v1/cost_attribution/by_agent", "start_date")]
    assert {alternative["format"] for alternative in dates["anyOf"]} == {"date", "date-time"}
    assert params[("/v1/end_users/{end_user_id}", "end_user_id")]["maxLength"] == 255
    components = schema["components"]["schemas"]
    assert components["SubscriptionCreate"]["properties"]["billing_cycle"]["enum"] == [
        "monthly",
        "quarterly",
        "yearly",
    ]
    assert components["EventInput"]["properties"]["quantity"]["maximum"] == 10**12
    codes = set(components["ErrorDetail"]["properties"]["code"]["enum"])
    assert codes == _documented_codes()


def _documented_codes() -> Set[str]:
    """Every error code in the "code" column of docs/api.md's error table."""
    table = DOCS.read_text().split("## Errors", 1)[1].split("\n\n", 2)[1]
    rows = [line.split("|") for line in table.splitlines() if re.match(r"\| \d{3} \|", line)]
    return {code for row in rows for code in re.findall(r"`([a-z_]+)`", row[2])}


def _documented_operations() -> Set[Tuple[str, str]]:
    """(method, path with {} for every id) of every row of docs/api.md's endpoint tables."""
    rows = re.findall(r"^\| (GET|POST|PATCH|PUT|DELETE) \| `([^`]+)` \|", DOCS.read_text(), re.MULTILINE)
    return {(method.lower(), re.sub(r"\{[^}]+\}", "{}", path)) for method, path in rows}


def test_docs_api_md_and_the_document_agree(tmp_path: Path) -> None:
    app = create_app(f"sqlite:///{tmp_path / 'doc.db'}", metrics=True)  # /metrics is documented too
    try:
        schema = app.openapi()
    finally:
        app.state.close()
    served = {(method, re.sub(r"\{[^}]+\}", "{}", path)) for path, method, _op in _operations(schema)}
    assert _documented_operations() == served
    statuses = {int(s) for _p, _m, op in _operations(schema) for s in op["responses"] if int(s) >= 400}
    documented = {int(s) for s in re.findall(r"^\| (\d{3}) \|", DOCS.read_text(), re.MULTILINE)}
    assert statuses <= documented


def test_405_allow_lists_every_method_of_the_path(api: httpx.Client) -> None:
    for method, path, allowed in (
        ("DELETE", "/v1/end_users", "GET, POST"),
        ("PUT", "/v1/end_users/eu_x", "GET, PATCH"),
        ("GET", "/v1/end_users/eu_x/deactivate", "POST"),
        ("DELETE", "/v1/subscriptions", "GET, POST"),
        ("PUT", "/v1/usage/events", "GET, POST"),
        ("POST", "/v1/usage/summary", "GET"),
    ):
        response = api.request(method, path)
        body = error(response, 405, "invalid_request")
        assert response.headers["allow"] == allowed, (method, path)
        assert method in body["message"] and allowed in body["message"]
