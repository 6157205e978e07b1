"""Cost attribution latency: ``GET /v1/cost_attribution/by_agent`` over 1,000,000 events (30 days, 50 agents,
20 workflows) served by a real ``bearlumen serve`` process.

    .venv/bin/python benchmarks/attribution.py                  # SQLite and PostgreSQL
    .venv/bin/python benchmarks/attribution.py --backend sqlite --events 1000000

The events are loaded through the service's own ingestion code (validation, idempotency, rollups), in
process and before the server starts, which is faster than HTTP; then every query goes over loopback HTTP.
Ranges start and end mid-hour, so each answer also reads the two partial hours from raw events.
Prints a markdown table (milliseconds per request, client-side, including HTTP).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, Dict, List

import httpx
import orjson
from _service import ServiceHandle, make_events, range_args, running_service

from bearlumen.server.db import Database
from bearlumen.server.usage.service import record_batch

DAY_US = 86_400_000_000
REPEAT = 50


def _load(service: ServiceHandle, total: int, days: int) -> float:
    """Insert ``total`` events spread over ``days`` days ending now; returns seconds taken."""
    db = Database(service.database_url)
    tenant_id = db.read(
        lambda conn: conn.exec_driver_sql("SELECT id FROM tenants WHERE name = 'test'").scalar_one()
    )
    end_us = time.time_ns() // 1000
    started = time.perf_counter()
    try:
        for chunk in range(0, total, 1000):
            events = make_events(
                min(1000, total - chunk), start_us=end_us - days * DAY_US, span_us=days * DAY_US, seed=chunk
            )
            answer = record_batch(db, tenant_id, orjson.dumps({"events": events}))
            assert answer["recorded_count"] == len(events)
    finally:
        db.close()
    return time.perf_counter() - started


def _time(client: httpx.Client, path: str, params: Dict[str, str]) -> Dict[str, float]:
    client.get(path, params=params).raise_for_status()  # warm
    samples: List[float] = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        client.get(path, params=params).raise_for_status()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {"median": statistics.median(samples), "p95": samples[int(len(samples) * 0.95) - 1]}


def _iso(micros: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(micros / 1e6)) + f".{micros % 1_000_000:06d}Z"


def run(backend: str, total: int, days: int) -> List[Dict[str, Any]]:
    with running_service(backend) as service:
        service.stop()  # load straight into the database, then serve it
        load_seconds = _load(service, total, days)
        service.start()
        now_us = time.time_ns() // 1000
        whole = {
            "start_date": _iso(now_us - days * DAY_US - 1_234_567_890),
            "end_date": _iso(now_us + 60_000_000),
        }
        one_day = {
            "start_date": _iso(now_us - 3 * DAY_US + 1_800_000_000),
            "end_date": _iso(now_us - 2 * DAY_US),
        }
        rows = []
        with service.client() as client:
            check = client.get("/v1/cost_attribution/by_agent", params=whole).json()
            assert check["eventCount"] == total and len(check["items"]) == 50, check["eventCount"]
            for label, path, params in (
                (f"by_agent, {days} days", "/v1/cost_attribution/by_agent", whole),
                (f"by_workflow, {days} days", "/v1/cost_attribution/by_workflow", whole),
                ("by_agent, 1 day", "/v1/cost_attribution/by_agent", one_day),
                (f"list agents, {days} days", "/v1/cost_attribution/agents", whole),
                (f"usage summary, {days} days", "/v1/usage/summary", whole),
            ):
                rows.append({"backend": backend, "query": label, **_time(client, path, params)})
        rows[0]["load"] = total / load_seconds
    return rows


def main() -> None:
    backends, events, days = range_args(__doc__.split("\n")[0])
    rows = [row for b in backends for row in run(b, events, days)]
    print(
        f"\nCost attribution over {events:,} events ({days} days, 50 agents, 20 workflows), "
        f"{REPEAT} requests each over loopback HTTP\n"
    )
    print("| backend | query | median ms | p95 ms |")
    print("|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['backend']} | {r['query']} | {r['median']:.1f} | {r['p95']:.1f} |")
    for r in rows:
        if "load" in r:
            print(
                f"\n{r['backend']}: loaded at {r['load']:,.0f} events/s "
                "(in-process ingestion, rollups included)"
            )


if __name__ == "__main__":
    main()
