"""Page contents over plain HTTP (what the browser test does not click through): the chart's segments add
up to the page's total exactly, by hour and by day and per stack; the range picker's fallbacks; the breakdown
pages; pages need a session."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Dict, List

import httpx
import pytest

from tests.dashboard.conftest import Deployment, cost_of, http_client, http_sign_in


def _segments(html: str) -> List[Decimal]:
    return [Decimal(v) for v in re.findall(r"<title>[^<]*: \$([0-9.]+)</title>", html)]


@pytest.mark.parametrize("bucket", ["hour", "day"])
@pytest.mark.parametrize("stack", ["model", "agent_id", "workflow_id"])
def test_the_chart_adds_up_to_the_total(dash: Deployment, bucket: str, stack: str) -> None:
    with http_client(dash) as client:
        http_sign_in(client, dash.acme.key)
        params = {"start": "2026-11-02", "end": "2026-11-05", "bucket": bucket, "stack": stack}
        html = client.get("/dashboard", params=params).text
    calls = [c for c in dash.acme.calls if "2026-11-02" <= c.ts[:10] <= "2026-11-05"]
    assert "$" + format(sum(_segments(html), Decimal(0)).normalize(), "f") == cost_of(calls)
    key = {"model": "model", "agent_id": "agent", "workflow_id": "workflow"}[stack]
    width = 13 if bucket == "hour" else 10
    expected = {(c.ts[:width], getattr(c, key)) for c in calls if c.cost is not None}
    assert len(_segments(html)) == len(expected)
    assert "2 unpriced calls not drawn" in html


def test_the_range_picker_falls_back_and_says_so(dash: Deployment) -> None:
    with http_client(dash) as client:
        http_sign_in(client, dash.acme.key)
        for params in (
            {"start": "2026-13-01", "end": "2026-11-03"},
            {"start": "2026-11-05", "end": "2026-11-01"},
        ):
            html = client.get("/dashboard", params=params).text
            assert 'data-testid="range-error"' in html and "showing the last 7 days" in html
        long = client.get("/dashboard", params={"start": "2026-01-01", "end": "2026-12-31", "bucket": "hour"})
        assert '<option value="day" selected>' in long.text  # a year by hour would be 8,760 bars
        assert f'data-testid="total-cost">{cost_of(dash.acme.calls)}<' in long.text


def test_breakdown_pages(dash: Deployment) -> None:
    acme = dash.acme
    with http_client(dash) as client:
        http_sign_in(client, acme.key)
        month = {"start": "2026-11-01", "end": "2026-11-30"}
        users = client.get("/dashboard/by/end-user", params=month).text
        alice = [c for c in acme.calls if c.end_user == "cust_alice"]
        row = re.search(rf'<tr data-value="{acme.end_users["cust_alice"]}">(.*?)</tr>', users, re.S)
        assert row is not None and "cust_alice (Alice Co)" in row.group(1)
        assert f'<td class="num cost">{cost_of(alice)}</td>' in row.group(1)
        plans = client.get("/dashboard/by/subscription", params=month).text
        assert f"team ({acme.subscriptions['team']})" in plans
        missing = client.get("/dashboard/by/nothing", params=month)
        assert missing.status_code == 404 and "No such breakdown." in missing.text


@pytest.mark.parametrize(
    "path", ["/dashboard", "/dashboard/by/agent", "/dashboard/events", "/dashboard/end-users/x"]
)
def test_every_page_needs_a_session(dash: Deployment, path: str) -> None:
    with httpx.Client(base_url=dash.service.base_url) as client:
        answer = client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard/login")
        # An API key in the header is not a dashboard session either.
        headers: Dict[str, str] = {"Authorization": f"Bearer {dash.acme.key}"}
        assert client.get(path, headers=headers).status_code == 303
