"""Ingestion throughput: 1000-event batches over loopback HTTP into a real ``bearlumen serve`` process.

    .venv/bin/python benchmarks/ingest.py                 # SQLite and PostgreSQL, 300k events each
    .venv/bin/python benchmarks/ingest.py --backend sqlite --events 1000000
    .venv/bin/python benchmarks/ingest.py --backend postgresql --workers 1,2,4   # one row per worker count

Every event has a random idempotency key (as the SDK makes them), so the dedup index is exercised the
realistic way; the service checks every key. The client pre-serializes the batches and sends them from
``--clients`` keep-alive connections in parallel. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import glob
import os
import statistics
import threading
import time
from typing import Any, Dict, List

import httpx
import orjson
from _service import make_events, running_service

HOUR_US = 3_600_000_000


def _batches(total: int, size: int, seed: int) -> List[bytes]:
    now_us = time.time_ns() // 1000
    # Live traffic: timestamps increase through the run, ending now (as an exporter delivers them). A backfill
    # of old, shuffled timestamps costs more (see attribution.py, which loads one).
    span_us = total * 20
    events = make_events(total, start_us=now_us - span_us, span_us=span_us, seed=seed, ordered=True)
    return [orjson.dumps({"events": events[i : i + size]}) for i in range(0, total, size)]


def _send_all(base_url: str, key: str, bodies: List[bytes], clients: int) -> Dict[str, Any]:
    """POST every body; return recorded/skipped counts and per-request latencies."""
    lock = threading.Lock()
    queue = list(reversed(bodies))
    latencies: List[float] = []
    counts = {"recorded": 0, "skipped": 0}
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def worker() -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                started = time.perf_counter()
                response = client.post("/v1/usage/events/batch", content=body)
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                answer = orjson.loads(response.content)
                with lock:
                    latencies.append(elapsed)
                    counts["recorded"] += answer["recorded_count"]
                    counts["skipped"] += answer["skipped_count"]

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {**counts, "latencies": latencies}


def run(backend: str, total: int, size: int, clients: int, workers: int = 1) -> Dict[str, Any]:
    bodies = _batches(total, size, seed=1)
    warmup = _batches(20 * size * workers, size, seed=2)
    with running_service(backend, args=["--workers", str(workers)]) as service:
        _send_all(service.base_url, service.api_key, warmup, clients)
        cpu_before = _cpu_seconds(service.pid)
        started = time.perf_counter()
        result = _send_all(service.base_url, service.api_key, bodies, clients)
        elapsed = time.perf_counter() - started
        server_cpu = _cpu_seconds(service.pid) - cpu_before
        assert result["recorded"] == total, result  # every key was new: every event must be recorded
        # The same batches again: all duplicates, nothing written (the retry / replay path).
        dup_started = time.perf_counter()
        dups = _send_all(service.base_url, service.api_key, bodies[: max(1, len(bodies) // 5)], clients)
        dup_elapsed = time.perf_counter() - dup_started
        assert dups["recorded"] == 0
    latencies = sorted(result["latencies"])
    return {
        "backend": backend,
        "workers": workers,
        "events": total,
        "seconds": elapsed,
        "rate": total / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p95_ms": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "dup_rate": dups["skipped"] / dup_elapsed,
        "cpu_ms": server_cpu / len(bodies) * 1000,
    }


def _cpu_seconds(pid: Any) -> float:
    """User + system CPU time of the server process and its worker processes (Linux /proc), to show where
    the time goes."""
    stats = {}
    for path in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(path) as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(path.split("/")[2])] = fields
    if pid not in stats:
        return float("nan")
    ours = [f for p, f in stats.items() if p == pid or int(f[1]) == pid]  # fields[1]: the parent's pid
    return sum(int(f[11]) + int(f[12]) for f in ours) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2, help="parallel keep-alive connections")
    parser.add_argument(
        "--workers", default="1", help="bearlumen serve --workers; a list (1,2,4) gives one row per count"
    )
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    counts = [int(w) for w in args.workers.split(",")]
    rows = [run(b, args.events, args.batch, args.clients, w) for b in backends for w in counts]
    print(
        f"\nBatch ingest over loopback HTTP ({args.batch}-event batches, {args.clients} client connections, "
        "random idempotency keys)\n"
    )
    print(
        "| backend | workers | events | seconds | events/s | batch p50 ms | batch p95 ms "
        "| server CPU ms/batch | duplicate resend events/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['backend']} | {r['workers']} | {r['events']:,} | {r['seconds']:.1f} | {r['rate']:,.0f} "
            f"| {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['cpu_ms']:.1f} | {r['dup_rate']:,.0f} |"
        )


if __name__ == "__main__":
    main()
