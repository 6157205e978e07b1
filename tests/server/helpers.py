"""Small helpers for the service tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Dict, List, Optional

import httpx


def uid(prefix: str = "k") -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def iso(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hours_ago(hours: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(hours=hours)


def event(**fields: Any) -> Dict[str, Any]:
    """A valid event; any field can be overridden (None removes it)."""
    base: Dict[str, Any] = {
        "event_type": "llm_call",
        "metric_name": "llm_tokens",
        "quantity": 100,
        "idempotency_key": uid("evt"),
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def error(response: httpx.Response, status: int, code: str) -> Dict[str, Any]:
    """Assert an error answer (status, envelope, code) and return its ``error`` object."""
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    assert body["message"]
    assert body["requestId"] == response.headers["x-request-id"]
    assert "param" in body
    return dict(body)


def ok(response: httpx.Response, status: int = 200) -> Dict[str, Any]:
    assert response.status_code == status, response.text
    return dict(response.json())


def record_batch(api: httpx.Client, events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return ok(api.post("/v1/usage/events/batch", json={"events": events}))


def all_events(api: httpx.Client, **params: Any) -> List[Dict[str, Any]]:
    """Every event matching ``params``, through the paginated query."""
    out: List[Dict[str, Any]] = []
    offset = 0
    while True:
        page = ok(api.get("/v1/usage/events", params={**params, "limit": 1000, "offset": offset}))
        out.extend(page["events"])
        offset += len(page["events"])
        if not page["events"] or offset >= page["total"]:
            return out


def money(value: Optional[str]) -> Optional[Decimal]:
    return None if value is None else Decimal(value)
