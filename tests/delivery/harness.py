"""Helpers of the delivery tests: producing processes, exporters, and the "exactly N" check."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

import bearlumen
from bearlumen.delivery.exporter import Exporter
from bearlumen.metering.pricing import PriceBook
from tests.delivery.producer import llm_call

ROOT = Path(__file__).resolve().parents[2]
PRODUCER = Path(__file__).with_name("producer.py")

# Fast settings for tests: the defaults (1 s batches, 30 s max backoff) are for production.
FAST: Dict[str, Any] = {
    "send_interval": 0.2,
    "initial_backoff": 0.05,
    "max_backoff": 0.5,
    "request_timeout": 3.0,
    "poll_interval": 0.2,
    "shutdown_timeout": 20.0,
}

BATCH_PATH = "/v1/usage/events/batch"


def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, interval: float = 0.05) -> bool:
    """Bounded polling (never a timed assertion): True as soon as ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def make_exporter(api_key: str, base_url: str, spool: Any, **options: Any) -> Exporter:
    client = bearlumen.Client(api_key=api_key, base_url=base_url)
    merged = {**FAST, **options}
    return Exporter(client, PriceBook.from_config(None), spool=spool, **merged)


def submit_calls(exporter: Exporter, prefix: str, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        exporter.submit(llm_call(prefix, i))


def ids(prefix: str, count: int, start: int = 0) -> List[str]:
    return [f"{prefix}-{i}" for i in range(start, start + count)]


# ------------------------------------------------------------------------------------------ processes


def producer_env() -> Dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def spawn_producer(config: Dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(PRODUCER), json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env=producer_env(),
        text=True,
    )


def finish_producer(proc: subprocess.Popen[str], timeout: float = 120.0) -> List[Dict[str, Any]]:
    """Wait for a producer; returns the stats lines it printed (one per process that printed)."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"producer failed ({proc.returncode}):\n{err[-4000:]}"
    return stats_lines(out)


def stats_lines(out: str) -> List[Dict[str, Any]]:
    found = []
    for line in out.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def run_producer(config: Dict[str, Any], timeout: float = 120.0) -> List[Dict[str, Any]]:
    return finish_producer(spawn_producer(config), timeout)


# ------------------------------------------------------------------------------------------ checks


def all_events(client: bearlumen.Client) -> List[Dict[str, Any]]:
    events: List[Dict[str, Any]] = []
    while True:
        page = client.usage.query(limit=1000, offset=len(events))
        events.extend(dict(event) for event in page["events"])
        if len(events) >= page["total"] or not page["events"]:
            return events


def total_events(client: bearlumen.Client) -> int:
    return int(client.usage.summary()["totalEvents"])


def wait_for_total(client: bearlumen.Client, expected: int, timeout: float = 60.0) -> int:
    wait_until(lambda: total_events(client) >= expected, timeout=timeout, interval=0.1)
    return total_events(client)


def assert_exactly(
    client: bearlumen.Client,
    llm_ids: Iterable[str],
    record_keys: Iterable[str] = (),
) -> List[Dict[str, Any]]:
    """The tenant holds exactly these events, each once, and the rollups equal the raw events."""
    expected_llm = sorted(llm_ids)
    expected_records = sorted(record_keys)
    events = all_events(client)
    llm = Counter(
        (e.get("metadata") or {}).get("response_id") for e in events if e["metricName"] == "llm_tokens"
    )
    records = Counter(e["idempotencyKey"] for e in events if e["metricName"] != "llm_tokens")
    doubled = {k: n for k, n in {**llm, **records}.items() if n > 1}
    assert not doubled, f"counted twice: {list(doubled)[:5]}"
    missing = sorted(set(expected_llm) - set(llm))
    extra = sorted(str(key) for key in set(llm) - set(expected_llm))
    assert not missing and not extra, f"missing {len(missing)} {missing[:5]}, extra {len(extra)} {extra[:5]}"
    assert sorted(records) == expected_records
    assert len(events) == len(expected_llm) + len(expected_records)
    summary = client.usage.summary()
    assert summary["totalEvents"] == len(events)
    raw_cost = sum(
        (Decimal(e["providerCostUsd"]) for e in events if e.get("providerCostUsd") is not None), Decimal(0)
    )
    rollup = Decimal(summary["totalCost"]) if summary["totalCost"] is not None else Decimal(0)
    assert rollup == raw_cost, f"rollup {rollup} != raw {raw_cost}"
    if expected_llm:
        assert raw_cost > 0  # the LLM calls were priced
    return events


def batch_keys(seen: Any) -> List[str]:
    body = seen.json() if callable(getattr(seen, "json", None)) else None
    if not isinstance(body, dict):
        return []
    return [str(e.get("idempotency_key")) for e in body.get("events", []) if isinstance(e, dict)]


def spool_pending(path: str) -> int:
    from bearlumen.delivery.spool import Spool

    spool = Spool(path)
    try:
        return spool.pending()
    finally:
        spool.close()


def optional(value: Optional[Any], default: Any) -> Any:
    return default if value is None else value
