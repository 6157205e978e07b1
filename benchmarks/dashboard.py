"""Dashboard page latency over 1,000,000 events, served by a real ``bearlumen serve`` process.

    .venv/bin/python benchmarks/dashboard.py                    # SQLite and PostgreSQL
    .venv/bin/python benchmarks/dashboard.py --backend sqlite --events 1000000

The events (30 days, 50 agents, 20 workflows, 5 models, 1,000 end users, 200 subscriptions, 5% unpriced) go
straight into ``usage_events`` with bulk SQL inserts, and the hourly rollups are built from them with one
``INSERT ... SELECT ... GROUP BY`` each (what ingestion would have written, much faster to load). Then a
signed-in session requests each page over loopback HTTP, interleaved with the baseline, the API's
``GET /v1/cost_attribution/by_agent`` over the same 30 days, and the script prints medians and the ratio.
A page's figures are checked against the API's and against a direct SQL sum first.
"""

from __future__ import annotations

import random
import re
import statistics
import time
from typing import Any, Dict, List, Tuple

import httpx
from _service import MODELS, ServiceHandle, range_args, running_service
from sqlalchemy import insert, text

from bearlumen.server.db import Database
from bearlumen.server.ids import key_digest
from bearlumen.server.money import format_money
from bearlumen.server.schema import end_users, usage_events
from bearlumen.server.timefmt import DAY_US, HOUR_US, format_date

REPEAT = 15
END_USERS = 1000
SUBSCRIPTIONS = 200
CHUNK = 20_000
_ROLLUPS = {
    "usage_rollup_model_hourly": "model",
    "usage_rollup_agent_hourly": "agent_id",
    "usage_rollup_workflow_hourly": "workflow_id",
    "usage_rollup_end_user_hourly": "end_user_id",
    "usage_rollup_subscription_hourly": "subscription_id",
}


def _load(service: ServiceHandle, total: int, days: int, end_us: int) -> Tuple[float, int]:
    """Bulk-insert ``total`` events over ``days`` days before ``end_us``; (seconds, exact cost in pico)."""
    db = Database(service.database_url)
    rng = random.Random(14)
    started, cost_total = time.perf_counter(), 0
    try:
        tenant_id = db.read(
            lambda c: c.execute(text("SELECT id FROM tenants WHERE name = 'test'")).scalar_one()
        )
        users = [
            {
                "id": f"eu_{i:024x}",
                "tenant_id": tenant_id,
                "external_id": f"customer-{i:04d}",
                "email": None,
                "name": None,
                "metadata": "{}",
                "status": "ACTIVE",
                "created_us": end_us,
                "updated_us": end_us,
            }
            for i in range(END_USERS)
        ]
        db.write(lambda c: c.execute(insert(end_users), users))
        start_us = end_us - days * DAY_US
        for offset in range(0, total, CHUNK):
            rows = []
            for i in range(offset, min(total, offset + CHUNK)):
                cost = None if rng.random() < 0.05 else rng.randint(1, 5_000_000) * 10_000
                cost_total += cost or 0
                rows.append(
                    {
                        "public_id": f"evt_{i:032x}",
                        "tenant_id": tenant_id,
                        "key_hash": key_digest(f"bench-{i}"),
                        "idempotency_key": f"bench-{i}",
                        "event_type": "llm_call",
                        "metric_name": "llm_tokens",
                        "quantity_micro": rng.randint(100, 20_000) * 1_000_000,
                        "cost_pico": cost,
                        "agent_id": f"agent-{rng.randrange(50):02d}",
                        "workflow_id": f"workflow-{rng.randrange(20):02d}",
                        "subscription_id": f"sub-{rng.randrange(SUBSCRIPTIONS):03d}",
                        "end_user_id": users[rng.randrange(END_USERS)]["id"],
                        "model": rng.choice(MODELS),
                        "ts_us": start_us + rng.randrange(days * DAY_US),
                        "received_us": end_us,
                        "metadata": "{}",
                    }
                )
            db.write(lambda c, rows=rows: c.execute(insert(usage_events), rows))  # type: ignore[misc]
        for table, column in _ROLLUPS.items():
            sql = _rollup_sql(table, column)
            db.write(lambda c, sql=sql: c.execute(text(sql)))  # type: ignore[misc]
        if not db.is_sqlite:
            db.write(lambda c: c.execute(text("ANALYZE")))
    finally:
        db.close()
    return time.perf_counter() - started, cost_total


def _rollup_sql(table: str, column: str) -> str:
    """What ingestion keeps in ``table``, rebuilt from the raw events in one statement."""
    key = f"tenant_id, ts_us / {HOUR_US}, COALESCE({column}, ''), metric_name, event_type"
    measures = "COUNT(*), COUNT(cost_pico), COALESCE(SUM(cost_pico), 0), SUM(quantity_micro), 0, 0"
    columns = (
        f"tenant_id, hour, {column}, metric_name, event_type, event_count, priced_count, cost_pico, "
        "quantity_micro, cost_pico_hi, quantity_micro_hi"
    )
    return f"INSERT INTO {table} ({columns}) SELECT {key}, {measures} FROM usage_events GROUP BY {key}"


def _signed_in(service: ServiceHandle) -> httpx.Client:
    client = httpx.Client(base_url=service.base_url, timeout=120)
    form = client.get("/dashboard/login").text
    match = re.search(r'name="csrf" value="([^"]+)"', form)
    assert match is not None
    answer = client.post("/dashboard/login", data={"csrf": match.group(1), "api_key": service.api_key})
    assert answer.status_code == 303, answer.text
    return client


def _sample(client: httpx.Client, path: str, params: Dict[str, str], headers: Dict[str, str]) -> float:
    started = time.perf_counter()
    answer = client.get(path, params=params, headers=headers)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, (path, answer.status_code)
    return elapsed


def run(backend: str, total: int, days: int) -> List[Dict[str, Any]]:
    with running_service(backend) as service:
        service.stop()
        end_us = (time.time_ns() // 1000) // DAY_US * DAY_US  # today, 00:00 UTC
        load_seconds, cost_total = _load(service, total, days, end_us)
        service.start()
        first, last = format_date(end_us - days * DAY_US), format_date(end_us - DAY_US)
        month = {"start": first, "end": last, "bucket": "day"}
        api_month = {"start_date": first, "end_date": format_date(end_us)}
        bearer = {"Authorization": f"Bearer {service.api_key}"}
        day = format_date(end_us - 2 * DAY_US)
        cases = [
            ("API by_agent (baseline)", "/v1/cost_attribution/by_agent", api_month, bearer),
            ("overview, 30 days by day, stacked by model", "/dashboard", month, {}),
            (
                "overview, 1 day by hour, stacked by agent",
                "/dashboard",
                {"start": day, "end": day, "stack": "agent_id"},
                {},
            ),
            ("one end user's page, 30 days", "/dashboard/end-users/customer-0007", month, {}),
            ("by end user (1,000 customers), 30 days", "/dashboard/by/end-user", month, {}),
            ("by subscription (200), 30 days", "/dashboard/by/subscription", month, {}),
            (
                "drill-down: one agent's calls, page 1",
                "/dashboard/events",
                {**month, "agent_id": "agent-07"},
                {},
            ),
        ]
        client = _signed_in(service)
        try:
            page = client.get("/dashboard", params=month).text
            shown = re.search(r'data-testid="total-cost">\$([0-9.]+)<', page)
            api = client.get("/v1/usage/summary", params=api_month, headers=bearer).json()
            assert shown is not None and shown.group(1) == api["totalCost"] == format_money(cost_total)
            assert api["totalEvents"] == total
            samples: Dict[str, List[float]] = {label: [] for label, *_ in cases}
            for _label, path, params, headers in cases:  # warm
                _sample(client, path, params, headers)
            for _ in range(REPEAT):  # interleaved: every round measures each case once
                for label, path, params, headers in cases:
                    samples[label].append(_sample(client, path, params, headers))
        finally:
            client.close()
        baseline = statistics.median(samples[cases[0][0]])
        rows = []
        for label, *_ in cases:
            values = sorted(samples[label])
            median = statistics.median(values)
            rows.append(
                {
                    "backend": backend,
                    "page": label,
                    "median": median,
                    "max": values[-1],
                    "ratio": median / baseline,
                }
            )
        rows[0]["load"] = total / load_seconds
        return rows


def main() -> None:
    backends, events, days = range_args(__doc__.split("\n")[0])
    rows = [row for b in backends for row in run(b, events, days)]
    print(
        f"\nDashboard pages over {events:,} events ({days} days, {END_USERS} end users), "
        f"{REPEAT} interleaved requests each over loopback HTTP (server render included)\n"
    )
    print("| backend | page | median ms | max ms | x baseline |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['backend']} | {r['page']} | {r['median']:.1f} | {r['max']:.1f} | {r['ratio']:.2f} |")
    for r in rows:
        if "load" in r:
            print(
                f"\n{r['backend']}: loaded at {r['load']:,.0f} events/s (bulk SQL, rollups by INSERT SELECT)"
            )


if __name__ == "__main__":
    main()
