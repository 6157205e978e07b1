"""A person's path through the dashboard in headless Chromium: sign in, read the figures of a known dataset
(equal to the API's to the last digit), change the range, drill down to the calls, open a customer, sign
out; another tenant sees none of it; a wrong key is refused. The journey on SQLite writes the README's
screenshots (docs/screenshots), so they always show what the code renders."""

from __future__ import annotations

from typing import Any, Dict, List

import bearlumen
from tests.dashboard.conftest import SCREENSHOTS, Call, Deployment, cost_of


def _sign_in(page: Any, dash: Deployment, key: str) -> None:
    page.goto(f"{dash.service.base_url}/dashboard")
    assert page.url.endswith("/dashboard/login")  # no session: the sign-in form
    page.fill("[data-testid=api-key]", key)
    page.click("[data-testid=sign-in]")


def _pick(page: Any, start: str, end: str, bucket: str) -> None:
    page.fill("[data-testid=start]", start)
    page.fill("[data-testid=end]", end)
    page.select_option("[data-testid=bucket]", bucket)
    page.click("[data-testid=apply]")


def _text(page: Any, testid: str) -> str:
    return str(page.inner_text(f"[data-testid={testid}]")).strip()


def _table(page: Any, dimension: str) -> Dict[str, List[str]]:
    """A breakdown table: row value -> [cost, calls, unpriced calls]."""
    rows = page.locator(f"[data-testid=by-{dimension}] tbody tr[data-value]")
    out = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        out[row.get_attribute("data-value")] = cells[1:]
    return out


def _shoot(page: Any, dash: Deployment, name: str) -> None:
    if dash.backend == "sqlite":  # one set of pictures: the README's
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _within(calls: List[Call], start: str, end: str) -> List[Call]:
    return [c for c in calls if start <= c.ts[:10] <= end]


def test_sign_in_read_exact_figures_change_range_drill_down_sign_out(page: Any, dash: Deployment) -> None:
    acme = dash.acme
    api = bearlumen.Client(api_key=acme.key, base_url=dash.service.base_url)
    _sign_in(page, dash, acme.key)
    assert page.url.endswith("/dashboard")
    assert _text(page, "tenant") == "tenant acme-dashboard"

    # The session cookie: HttpOnly, SameSite=Strict, not Secure over plain http, and never the key.
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["bearlumen_session"]
    assert (session["httpOnly"], session["sameSite"], session["secure"]) == (True, "Strict", False)
    assert (
        session["path"] == "/dashboard" and acme.key not in session["value"] and len(session["value"]) == 43
    )

    # Every November call: the figures equal the dataset's exact sums and the API's answer, digit for digit.
    _pick(page, "2026-11-01", "2026-11-30", "day")
    month = {"start_date": "2026-11-01", "end_date": "2026-12-01"}
    summary = api.usage.summary(**month)
    assert _text(page, "total-cost") == cost_of(acme.calls) == f"${summary['totalCost']}"
    assert _text(page, "total-events") == str(len(acme.calls)) == str(summary["totalEvents"])
    assert _text(page, "total-unpriced") == "2" == str(summary["unpricedEventCount"])
    by_agent = api.cost_attribution.by_agent(**month)["items"]
    assert _table(page, "agent_id") == {
        item["attributionValue"]: [
            f"${item['totalCost']}" if item["totalCost"] else "unpriced",
            str(item["eventCount"]),
            str(item["unpricedEventCount"] or ""),
        ]
        for item in by_agent
    }
    models = _table(page, "model")
    assert models["llama3"] == ["unpriced", "2", "2"]  # unpriced calls: counted, shown apart, never $0
    assert models["claude-sonnet-4"] == [
        cost_of([c for c in acme.calls if c.model == "claude-sonnet-4"]),
        "2",
        "",
    ]
    assert list(_table(page, "workflow_id")) == ["due-diligence", "onboarding", "renewals", ""]  # by cost
    days = {(c.ts[:10], c.model) for c in acme.calls if c.cost is not None}
    assert page.locator("[data-testid=chart] rect").count() == len(days)  # a segment per priced (day, model)
    _shoot(page, dash, "overview")

    # End users and subscriptions have a page each (their rollups are per customer, not per hour).
    page.click("[data-testid=by-page-subscription]")
    subs = _table(page, "subscription_id")
    assert subs[acme.subscriptions["pro"]][0] == cost_of([c for c in acme.calls if c.subscription == "pro"])
    assert subs[""] == [cost_of([c for c in acme.calls if c.subscription is None]), "3", "1"]
    assert _text(page, "total-cost") == cost_of(acme.calls)
    page.go_back()

    # A narrower range, by hour: the call of 2026-11-05 leaves every figure.
    _pick(page, "2026-11-02", "2026-11-03", "hour")
    two_days = _within(acme.calls, "2026-11-02", "2026-11-03")
    assert _text(page, "total-cost") == cost_of(two_days)
    assert (
        _text(page, "total-cost")
        == "$" + api.usage.summary(start_date="2026-11-02", end_date="2026-11-04")["totalCost"]
    )
    assert _text(page, "total-events") == str(len(two_days))
    hours = {(c.ts[:13], c.model) for c in two_days if c.cost is not None}
    assert page.locator("[data-testid=chart] rect").count() == len(hours)
    assert "2026-11-02 09:00" in page.inner_html("[data-testid=chart]")

    # Drill down: support-bot's figure -> the three calls behind it, with the same total.
    page.click("[data-testid=by-agent_id] tr[data-value=support-bot] a")
    bot = [c for c in two_days if c.agent == "support-bot"]
    assert _text(page, "filter") == "agent = support-bot"
    assert _text(page, "total-cost") == cost_of(bot)
    rows = page.locator("[data-testid=events] tbody tr[data-id]")
    assert rows.count() == len(bot)
    assert [r.strip() for r in rows.locator("td.cost").all_inner_texts()] == [f"${c.cost}" for c in bot]
    api_events = api.usage.query(agent_id="support-bot", start_date="2026-11-02", end_date="2026-11-04")[
        "events"
    ]
    assert [rows.nth(i).get_attribute("data-id") for i in range(rows.count())] == [
        e["id"] for e in api_events
    ]
    _shoot(page, dash, "calls")

    # An end user's page: what cust_alice cost, by agent and model, over time.
    page.go_back()
    page.click("[data-testid=by-page-end-user]")
    assert _table(page, "end_user_id")[acme.end_users["cust_bob"]] == [
        cost_of([c for c in two_days if c.end_user == "cust_bob"]),
        "3",
        "1",
    ]
    _shoot(page, dash, "end_users")
    page.click("[data-testid=by-end_user_id] tr a:text('cust_alice')")
    alice = [c for c in two_days if c.end_user == "cust_alice"]
    assert _text(page, "end-user").startswith("cust_alice")
    assert _text(page, "total-cost") == cost_of(alice)
    assert (
        _text(page, "total-cost")
        == "$"
        + api.usage.summary(end_user_id="cust_alice", start_date="2026-11-02", end_date="2026-11-04")[
            "totalCost"
        ]
    )
    assert _text(page, "total-unpriced") == "1"
    assert _table(page, "model") == {
        "gpt-4o": ["$0.012345", "1", ""],
        "gpt-4o-mini": ["$0.00015", "1", ""],
        "llama3": ["unpriced", "1", "1"],
    }
    assert _table(page, "agent_id")["triage"] == ["unpriced", "1", "1"]
    _shoot(page, dash, "end_user")

    # Sign out (a POST carrying the session's CSRF token): back at the form, and the old cookie is dead.
    page.click("[data-testid=sign-out]")
    assert page.url.endswith("/dashboard/login")
    assert "bearlumen_session" not in {c["name"] for c in page.context.cookies()}
    page.context.add_cookies([{**session, "sameSite": "Strict"}])  # replay the old session token
    page.goto(f"{dash.service.base_url}/dashboard")
    assert page.url.endswith("/dashboard/login")
    api.close()


def test_another_tenant_sees_none_of_it(page: Any, dash: Deployment) -> None:
    globex, acme = dash.globex, dash.acme
    _sign_in(page, dash, globex.key)
    _pick(page, "2026-11-01", "2026-11-30", "day")
    assert _text(page, "tenant") == "tenant globex-dashboard"
    assert _text(page, "total-cost") == cost_of(globex.calls) == "$10"
    assert list(_table(page, "agent_id")) == ["globex-bot"]
    body = page.inner_text("body")
    only_acme = {c.agent for c in acme.calls} | {c.model for c in acme.calls} | set(acme.end_users)
    only_acme -= {c.model for c in globex.calls}  # gpt-4o: both use it
    assert sorted(name for name in only_acme if name in body) == []
    # Acme's end user and calls, asked for by id and by name: not there.
    page.goto(f"{dash.service.base_url}/dashboard/end-users/{acme.end_users['cust_alice']}")
    assert _text(page, "error") == "No such end user."
    page.goto(f"{dash.service.base_url}/dashboard/end-users/cust_alice")
    assert _text(page, "error") == "No such end user."
    page.goto(
        f"{dash.service.base_url}/dashboard/events?start=2026-11-01&end=2026-11-30&agent_id=support-bot"
    )
    assert page.locator("[data-testid=events] tbody tr[data-id]").count() == 0
    assert _text(page, "total-events") == "0"


def test_a_wrong_key_is_refused(page: Any, dash: Deployment) -> None:
    _sign_in(page, dash, "blm_" + "x" * 43)
    assert page.url.endswith("/dashboard/login")
    assert _text(page, "login-error") == "Invalid or revoked API key."
    assert "bearlumen_session" not in {c["name"] for c in page.context.cookies()}
    page.goto(f"{dash.service.base_url}/dashboard")
    assert page.url.endswith("/dashboard/login")
