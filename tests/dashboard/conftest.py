"""The dashboard against a real ``bearlumen serve`` (SQLite and PostgreSQL) in a real headless Chromium.

The browser is Debian's ``chromium`` (installed by ``.ci/browser``, never downloaded by Playwright), driven by
Playwright for Python. The dataset is recorded through the SDK over HTTP, with fixed timestamps in November
2026, for two tenants whose names are stable (the screenshots show them).
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, NamedTuple, Optional

import httpx
import pytest

import bearlumen
from tests.support.service import ServiceHandle

CHROMIUM = os.environ.get("BEARLUMEN_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


class Call(NamedTuple):
    ts: str
    agent: str
    workflow: Optional[str]
    model: str
    end_user: Optional[str]  # external id
    subscription: Optional[str]  # "pro" / "team": which of the tenant's subscriptions
    cost: Optional[str]  # None: unpriced
    tokens: int


# Tenant "acme-dashboard": two priced days (2026-11-02, -03) and one more call on 2026-11-05.
ACME = [
    Call(
        "2026-11-02T09:15:00Z", "support-bot", "onboarding", "gpt-4o", "cust_alice", "pro", "0.012345", 1500
    ),
    Call(
        "2026-11-02T09:40:00Z",
        "support-bot",
        "onboarding",
        "gpt-4o-mini",
        "cust_alice",
        "pro",
        "0.00015",
        800,
    ),
    Call(
        "2026-11-02T14:05:00Z",
        "research-agent",
        "due-diligence",
        "claude-sonnet-4",
        "cust_bob",
        None,
        "0.75",
        42000,
    ),
    Call("2026-11-02T14:30:00Z", "research-agent", "due-diligence", "llama3", "cust_bob", None, None, 3000),
    Call("2026-11-03T08:00:00Z", "support-bot", "renewals", "gpt-4o", "cust_bob", "team", "0.004", 600),
    Call("2026-11-03T17:45:00Z", "triage", None, "gemini-2.5-flash", None, None, "0.0000375", 250),
    Call("2026-11-03T18:10:00Z", "triage", None, "llama3", "cust_alice", "pro", None, 120),
    Call(
        "2026-11-05T12:00:00Z",
        "research-agent",
        "due-diligence",
        "claude-sonnet-4",
        "cust_alice",
        "pro",
        "1.2",
        64000,
    ),
]
# Tenant "globex-dashboard": what acme must never see.
GLOBEX = [
    Call("2026-11-02T10:00:00Z", "globex-bot", "checkout", "gpt-4o", "cust_zed", None, "9.99", 5000),
    Call("2026-11-03T11:00:00Z", "globex-bot", "checkout", "gpt-4o", "cust_zed", None, "0.01", 300),
]


class Tenant(NamedTuple):
    name: str
    key: str
    calls: List[Call]
    subscriptions: Dict[str, str]  # "pro" -> subscription id
    end_users: Dict[str, str]  # external id -> internal id


class Deployment(NamedTuple):
    backend: str
    service: ServiceHandle
    acme: Tenant
    globex: Tenant


def _record(service: ServiceHandle, name: str, calls: List[Call]) -> Tenant:
    key = service.create_key(name)
    with bearlumen.Client(api_key=key, base_url=service.base_url) as client:
        end_users: Dict[str, str] = {}
        for external in sorted({c.end_user for c in calls if c.end_user}):
            made = client.end_users.create(external_id=external, name=external.split("_")[1].title() + " Co")
            end_users[external] = made["endUser"]["id"]
        subscriptions = {}
        for plan in sorted({c.subscription for c in calls if c.subscription}):
            made = client.subscriptions.create(
                organization_id=f"org_{name}", plan_id=plan, billing_cycle="monthly", start_date="2026-10-01"
            )
            subscriptions[plan] = made["subscription"]["id"]
        events: List[Any] = []
        for i, c in enumerate(calls):
            metadata: Dict[str, Any] = {"model": c.model, "provider": "test"}
            if c.cost is not None:
                metadata["provider_cost_usd"] = c.cost
            event: Dict[str, Any] = {
                "event_type": "token_usage",
                "metric_name": "llm_tokens",
                "quantity": c.tokens,
                "idempotency_key": f"{name}-{i}",
                "agent_id": c.agent,
                "timestamp": c.ts,
                "metadata": metadata,
            }
            if c.workflow:
                event["workflow_id"] = c.workflow
            if c.end_user:
                event["end_user_id"] = c.end_user
            if c.subscription:
                event["subscription_id"] = subscriptions[c.subscription]
            events.append(event)
        assert client.usage.record_batch(events)["recorded_count"] == len(calls)
    return Tenant(name, key, calls, subscriptions, end_users)


_RECORDED: Dict[str, Deployment] = {}


@pytest.fixture(params=["sqlite", "postgresql"])
def dash(request: pytest.FixtureRequest) -> Deployment:
    """Both tenants recorded once per backend on the session's service."""
    backend = request.param
    if backend not in _RECORDED:
        service: ServiceHandle = request.getfixturevalue(
            "sqlite_service" if backend == "sqlite" else "postgres_service"
        )
        _RECORDED[backend] = Deployment(
            backend,
            service,
            _record(service, "acme-dashboard", ACME),
            _record(service, "globex-dashboard", GLOBEX),
        )
    return _RECORDED[backend]


def cost_of(calls: List[Call]) -> str:
    """What the page must print for these calls: the exact sum of the priced ones, as the API writes it."""
    total = sum((Decimal(c.cost) for c in calls if c.cost is not None), Decimal(0))
    return "$" + format(total.normalize(), "f")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: Playwright's sync API keeps an asyncio loop running on this thread while it is open,
    # which would make every later asyncio.run() in the session fail.
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: run .ci/browser (Debian's chromium package)")
    with sync_playwright() as playwright:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start.
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    page = context.new_page()
    yield page
    context.close()


# -- plain HTTP, for the checks a browser would hide ---------------------------------------------------
def http_client(dash: Deployment, headers: Optional[Dict[str, str]] = None) -> httpx.Client:
    return httpx.Client(base_url=dash.service.base_url, headers=headers or {}, timeout=30)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None
    return match.group(1)


def http_sign_in(client: httpx.Client, key: str) -> httpx.Response:
    token = csrf_of(client.get("/dashboard/login").text)
    return client.post("/dashboard/login", data={"csrf": token, "api_key": key})
