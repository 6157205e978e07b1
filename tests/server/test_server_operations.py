"""Operating the service: liveness, readiness, Prometheus metrics and the structured access log."""

from __future__ import annotations

import json
from typing import Dict, Iterator

import httpx
import pytest
from alembic import command
from prometheus_client.parser import text_string_to_metric_families

from bearlumen.server.db import Database
from bearlumen.server.migrate import _config, head_revision
from tests.server.helpers import error, event, ok
from tests.support.service import ServiceHandle, start_service


@pytest.fixture(scope="module")
def observed() -> Iterator[ServiceHandle]:
    """A service of its own with --metrics and the access log on (exact counts need a quiet process)."""
    with start_service(args=["--metrics", "--access-log"]) as handle:
        yield handle


def test_healthz_and_readyz(service: ServiceHandle) -> None:
    assert httpx.get(f"{service.base_url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{service.base_url}/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "schemaRevision": head_revision()}


def test_readyz_is_503_while_the_schema_is_behind() -> None:
    with start_service() as handle:
        db = Database(handle.database_url)
        try:
            db.write(lambda conn: command.downgrade(_config(conn), "0001"))
            behind = httpx.get(f"{handle.base_url}/readyz")
            body = error(behind, 503, "unavailable")
            assert "0001" in body["message"] and "bearlumen migrate" in body["message"]
            assert behind.headers["Retry-After"] == "1"
            assert httpx.get(f"{handle.base_url}/healthz").status_code == 200  # alive all the same
            db.write(lambda conn: command.upgrade(_config(conn), "head"))
            assert httpx.get(f"{handle.base_url}/readyz").status_code == 200
        finally:
            db.close()


def _samples(text: str) -> Dict[str, float]:
    """``name{label="v",...}`` -> value, labels sorted."""
    out: Dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def test_metrics_count_requests_events_duplicates_and_rejections(observed: ServiceHandle) -> None:
    with observed.client() as api:
        events = [event(), event(), event()]
        assert ok(api.post("/v1/usage/events/batch", json={"events": events}))["recorded_count"] == 3
        assert ok(api.post("/v1/usage/events", json=events[0]))["recorded"] is False  # a duplicate
        error(api.post("/v1/usage/events", json=event(quantity=-1)), 400, "invalid_quantity")
    error(httpx.post(f"{observed.base_url}/v1/usage/events", json=event()), 401, "authentication_failed")
    response = httpx.get(f"{observed.base_url}/metrics")  # no key: the flag is the operator's decision
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert samples["bearlumen_events_recorded_total{}"] == 3
    assert samples["bearlumen_events_duplicate_total{}"] == 1
    assert samples['bearlumen_http_rejections_total{code="authentication_failed",status="401"}'] == 1
    assert samples['bearlumen_http_rejections_total{code="invalid_quantity",status="400"}'] == 1
    batch = 'method="POST",route="/v1/usage/events/batch",status="200"'
    assert samples[f"bearlumen_http_requests_total{{{batch}}}"] == 1
    assert (
        samples['bearlumen_http_request_duration_seconds_count{method="POST",route="/v1/usage/events"}'] == 3
    )
    assert observed.api_key not in response.text


def test_metrics_are_off_without_the_flag(service: ServiceHandle) -> None:
    error(httpx.get(f"{service.base_url}/metrics"), 404, "not_found")


def test_access_log_is_structured_and_keyless(observed: ServiceHandle) -> None:
    with observed.client() as api:
        ok(api.get("/v1/end_users", params={"limit": 5}, headers={"X-Request-Id": "trace-1"}))
    error(
        httpx.get(f"{observed.base_url}/v1/end_users", headers={"Authorization": "Bearer blm_wrong"}),
        401,
        "authentication_failed",
    )
    log = observed.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    traced = [line for line in lines if line["requestId"] == "trace-1"]
    assert len(traced) == 1
    assert traced[0]["method"] == "GET" and traced[0]["path"] == "/v1/end_users"
    assert traced[0]["route"] == "/v1/end_users" and traced[0]["status"] == 200
    assert traced[0]["keyId"].startswith("key_") and traced[0]["durationMs"] >= 0
    refused = [line for line in lines if line["status"] == 401]
    assert refused and refused[-1]["error"] == "authentication_failed" and refused[-1]["keyId"] is None
    assert observed.api_key not in log and "blm_wrong" not in log
    assert "limit=5" not in log  # no query strings
