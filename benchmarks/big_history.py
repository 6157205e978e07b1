"""Big histories: reports and event pages over 10,000,000 events, on SQLite and PostgreSQL.

    .venv/bin/python benchmarks/big_history.py                          # both backends, 10M events
    .venv/bin/python benchmarks/big_history.py --backend sqlite --events 1000000

The events (30 days ending now, 50 agents, 20 workflows, 5 models, 10% unpriced) are written straight into
a fresh database by SQL bulk inserts (a recursive CTE on SQLite, generate_series on PostgreSQL, where they
land in the monthly partitions and their keys in usage_event_keys), and the rollups are built from them by
GROUP BY: the same rows the ingest path would have written, minutes instead of hours. The script checks
that by_agent's totals equal the raw events' before timing anything.

Then a real ``bearlumen serve`` answers over loopback HTTP (client-side milliseconds, median and p95 of
REPEAT requests): by_agent / by_workflow / summary over the 30 days (start and end mid-hour, so each
answer also reads two partial hours of raw events), by_agent over one day; and ``usage.query`` pages of
100 events at growing depth, by ``offset`` and by ``cursor`` at the same position, interleaved.
The machine is shared (2 cores, other jobs running): figures are noisy, medians are reported.
"""

from __future__ import annotations

import argparse
import statistics
import time
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

import httpx
from _service import ServiceHandle, running_service

from bearlumen.server.db import Database
from bearlumen.server.usage.events import encode_cursor
from bearlumen.server.usage.rollups import ROLLUPS
from tests.support.service import start_service

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
REPEAT = 30
DEPTHS = (0, 100_000, 1_000_000, 5_000_000)


def _event_select(sqlite: bool, total: int, start_us: int, step: int) -> str:
    i = "i"
    m = "%" if sqlite else "%%"  # psycopg's placeholder character must be doubled
    key = "CAST(printf('%016d', i) AS BLOB)" if sqlite else "decode(lpad(to_hex(i), 32, '0'), 'hex')"
    cat = "||"
    return (
        f"SELECT 'evt_bench' {cat} {i}, 1, {key}, 'bench-' {cat} {i}, 'llm_call', "
        f"CASE WHEN {i} {m} 4 = 0 THEN 'requests' ELSE 'llm_tokens' END, (100 + {i} {m} 900) * 1000000, "
        f"CASE WHEN {i} {m} 10 = 0 THEN NULL ELSE 1000000 + ({i} {m} 7919) * 12345 END, "
        f"'agent-' {cat} ({i} {m} 50), 'workflow-' {cat} ({i} {m} 20), NULL, NULL, "
        f"'model-' {cat} ({i} {m} 5), "
        f"{start_us} + {i} * {step}, {start_us} + {i} * {step}, '{{}}'"
    )


_COLUMNS = (
    "public_id, tenant_id, key_hash, idempotency_key, event_type, metric_name, quantity_micro, cost_pico, "
    "agent_id, workflow_id, subscription_id, end_user_id, model, ts_us, received_us, metadata"
)


def fill(url: str, total: int, days: int, end_us: int) -> float:
    """Write ``total`` events and their rollups for tenant 1; seconds taken."""
    db = Database(url)
    start_us = end_us - days * DAY_US
    step = days * DAY_US // total
    started = time.perf_counter()
    try:
        chunk = 1_000_000  # one transaction per million rows keeps the WAL / memory bounded

        def events(conn: Any, first: int, count: int) -> None:
            select = _event_select(db.is_sqlite, total, start_us, step)
            if db.is_sqlite:
                conn.exec_driver_sql(
                    f"INSERT INTO usage_events ({_COLUMNS}) WITH RECURSIVE n(i) AS (SELECT {first} UNION ALL "
                    f"SELECT i + 1 FROM n WHERE i + 1 < {first + count}) {select} FROM n"
                )
            else:
                conn.exec_driver_sql(
                    f"INSERT INTO usage_events ({_COLUMNS}) {select} "
                    f"FROM generate_series({first}::bigint, {first + count - 1}::bigint) AS i"
                )
                conn.exec_driver_sql(
                    "INSERT INTO usage_event_keys (tenant_id, key_hash, public_id, ts_us) "
                    "SELECT tenant_id, key_hash, public_id, ts_us FROM usage_events "
                    f"WHERE tenant_id = 1 AND ts_us >= {start_us + first * step} "
                    f"AND ts_us < {start_us + (first + count) * step}"
                )

        for first in range(0, total, chunk):
            db.write(lambda conn, f=first: events(conn, f, min(chunk, total - f)))  # type: ignore[misc]
        for rollup in ROLLUPS:
            keys = [c.name for c in rollup.table.primary_key.columns]
            exprs = {
                "tenant_id": "tenant_id",
                "hour": f"ts_us / {HOUR_US}",
                "metric_name": "metric_name",
                "event_type": "event_type",
            }
            select = ", ".join(exprs.get(k, f"coalesce({k}, '')") for k in keys)
            db.write(
                lambda conn, t=rollup.table.name, k=keys, s=select: conn.exec_driver_sql(  # type: ignore[misc]
                    f"INSERT INTO {t} ({', '.join(k)}, event_count, priced_count, cost_pico, quantity_micro, "
                    f"cost_pico_hi, quantity_micro_hi) SELECT {s}, count(*), count(cost_pico), "
                    f"coalesce(sum(cost_pico), 0), sum(quantity_micro), 0, 0 FROM usage_events "
                    f"GROUP BY {', '.join(str(n + 1) for n in range(len(k)))}"
                )
            )
        if db.is_sqlite:
            db.write(lambda conn: conn.exec_driver_sql("ANALYZE"))
        else:
            with db.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    finally:
        db.close()
    return time.perf_counter() - started


def _raw_totals(url: str, start_us: int, end_us: int) -> Tuple[int, int]:
    db = Database(url)
    try:
        row = db.read(
            lambda conn: conn.exec_driver_sql(
                "SELECT count(*), sum(cost_pico) FROM usage_events "
                f"WHERE tenant_id = 1 AND ts_us >= {start_us} AND ts_us < {end_us}"
            ).one()
        )
        return int(row[0]), int(row[1])
    finally:
        db.close()


def _cursor_at(url: str, depth: int) -> str:
    db = Database(url)
    try:
        ts, row_id = db.read(
            lambda conn: conn.exec_driver_sql(
                "SELECT ts_us, id FROM usage_events WHERE tenant_id = 1 "
                f"ORDER BY ts_us, id LIMIT 1 OFFSET {depth - 1}"
            ).one()
        )
        return encode_cursor(int(ts), int(row_id))
    finally:
        db.close()


def _sum_strategies(url: str, first_hour: int, end_hour: int) -> List[Dict[str, Any]]:
    """by_agent's rollup query with the old limb sums (baseline) and plain sums, in process, interleaved."""
    mask = (1 << 21) - 1
    limbs = ", ".join(
        f"sum({c} >> 42), sum(({c} >> 21) & {mask}), sum({c} & {mask})"
        for c in ("cost_pico", "quantity_micro")
    )
    plain = "sum(cost_pico), sum(quantity_micro)"
    where = f"WHERE tenant_id = 1 AND hour >= {first_hour} AND hour < {end_hour} GROUP BY agent_id"
    head = "SELECT agent_id, sum(event_count), sum(priced_count), "
    tail = f", sum(cost_pico_hi), sum(quantity_micro_hi) FROM usage_rollup_agent_hourly {where}"
    db = Database(url)
    samples: Dict[str, List[float]] = {"limb sums (before)": [], "plain sums (now)": []}
    try:
        for _ in range(REPEAT // 3):
            for label, sums in zip(samples, (limbs, plain)):
                started = time.perf_counter()
                db.read(lambda conn, q=f"{head}{sums}{tail}": conn.exec_driver_sql(q).all())  # type: ignore[misc]
                samples[label].append((time.perf_counter() - started) * 1000)
    finally:
        db.close()
    return [{"query": f"by_agent rollup SQL, {label}", **_stats(xs)} for label, xs in samples.items()]


def _iso(micros: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(micros / 1e6)) + f".{micros % 1_000_000:06d}Z"


def _timed(client: httpx.Client, path: str, params: Dict[str, Any]) -> Tuple[float, Dict[str, Any]]:
    started = time.perf_counter()
    response = client.get(path, params=params)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed, response.json()


def _stats(samples: List[float]) -> Dict[str, float]:
    ordered = sorted(samples)
    return {"median": statistics.median(ordered), "p95": ordered[max(0, int(len(ordered) * 0.95) - 1)]}


def run(backend: str, total: int, days: int, reuse: Optional[str] = None) -> List[Dict[str, Any]]:
    if reuse is None:
        with running_service(backend) as service:
            return _fill_and_measure(service, backend, total, days)
    with start_service(reuse) as service:  # a database kept between runs: filled once
        return _fill_and_measure(service, backend, total, days)


def _fill_and_measure(service: ServiceHandle, backend: str, total: int, days: int) -> List[Dict[str, Any]]:
    service.stop()
    db = Database(service.database_url)
    try:
        there = db.read(lambda conn: conn.exec_driver_sql("SELECT max(ts_us) FROM usage_events").scalar())
    finally:
        db.close()
    if there is None:
        end_us = time.time_ns() // 1000 // HOUR_US * HOUR_US
        seconds: Optional[float] = fill(service.database_url, total, days, end_us)
        print(f"{backend}: filled {total:,} events and rollups in {seconds:.0f} s", flush=True)
    else:
        end_us, seconds = (int(there) // HOUR_US + 1) * HOUR_US, None
    service.start()
    return _measure(service, backend, total, days, end_us, seconds)


def _measure(
    service: ServiceHandle, backend: str, total: int, days: int, end_us: int, seconds: Optional[float]
) -> List[Dict[str, Any]]:
    whole = (end_us - days * DAY_US - 1_800_000_000, end_us + 1_800_000_000)  # mid-hour edges
    one_day = (end_us - 3 * DAY_US + 1_800_000_000, end_us - 2 * DAY_US)
    count, cost_pico = _raw_totals(service.database_url, *whole)
    span = {"start_date": _iso(whole[0]), "end_date": _iso(whole[1])}
    day = {"start_date": _iso(one_day[0]), "end_date": _iso(one_day[1])}
    rows: List[Dict[str, Any]] = []
    with service.client(timeout=600) as client:
        _, check = _timed(client, "/v1/cost_attribution/by_agent", span)
        assert check["eventCount"] == count == total, (check["eventCount"], count)
        assert Decimal(check["totalCost"]) * 10**12 == cost_pico
        for label, path, params in (
            (f"by_agent, {days} days", "/v1/cost_attribution/by_agent", span),
            (f"by_workflow, {days} days", "/v1/cost_attribution/by_workflow", span),
            (f"usage summary, {days} days", "/v1/usage/summary", span),
            ("by_agent, 1 day", "/v1/cost_attribution/by_agent", day),
        ):
            _timed(client, path, params)  # warm
            samples = [_timed(client, path, params)[0] for _ in range(REPEAT)]
            rows.append({"backend": backend, "query": label, **_stats(samples)})
        for depth in (d for d in DEPTHS if d < total):
            cursor = _cursor_at(service.database_url, depth) if depth else None
            by_offset = {"limit": 100, "offset": depth}
            by_cursor = {"limit": 100} if cursor is None else {"limit": 100, "cursor": cursor}
            first = _timed(client, "/v1/usage/events", by_offset)[1]["events"]
            assert first == _timed(client, "/v1/usage/events", by_cursor)[1]["events"]
            offsets: List[float] = []
            cursors: List[float] = []
            for _ in range(max(3, REPEAT // (10 if depth >= 1_000_000 else 1))):  # interleaved
                offsets.append(_timed(client, "/v1/usage/events", by_offset)[0])
                cursors.append(_timed(client, "/v1/usage/events", by_cursor)[0])
            rows.append({"backend": backend, "query": f"events page at {depth:,}: offset", **_stats(offsets)})
            rows.append({"backend": backend, "query": f"events page at {depth:,}: cursor", **_stats(cursors)})
    first_hour, end_hour = -(-whole[0] // HOUR_US), whole[1] // HOUR_US
    rows += [{"backend": backend, **r} for r in _sum_strategies(service.database_url, first_hour, end_hour)]
    if seconds:
        rows[0]["fill"] = total / seconds
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument(
        "--reuse",
        default=None,
        help="A database URL kept between runs (filled on first use), with --backend sqlite|postgresql.",
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    rows = [row for b in backends for row in run(b, args.events, args.days, args.reuse)]
    print(f"\n{args.events:,} events ({args.days} days, 50 agents, 20 workflows), loopback HTTP\n")
    print("| backend | query | median ms | p95 ms |")
    print("|---|---|---:|---:|")
    for r in rows:
        print(f"| {r['backend']} | {r['query']} | {r['median']:.1f} | {r['p95']:.1f} |")
    for r in rows:
        if "fill" in r:
            print(f"\n{r['backend']}: bulk fill at {r['fill']:,.0f} events/s (SQL, rollups by GROUP BY)")


if __name__ == "__main__":
    main()
