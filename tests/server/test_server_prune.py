"""``bearlumen prune`` on SQLite and PostgreSQL, through the real command next to a real service: exact
counts removed, whole months dropped on PostgreSQL, rollups kept (reports unchanged) or dropped, one
tenant only, dry runs that change nothing, and retries of pruned events never counted again."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from sqlalchemy import text

from bearlumen.server.db import Database
from bearlumen.server.timefmt import now_us
from bearlumen.server.usage.partitions import bounds, month_of, partition_name, shift_month
from tests.server.helpers import event, ok, record_batch
from tests.support.service import (
    ServiceHandle,
    drop_postgres_database,
    new_postgres_database,
    start_service,
)

BEARLUMEN = str(Path(sys.executable).with_name("bearlumen"))


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest) -> Iterator[ServiceHandle]:
    """A service on its own new database (prune removes every tenant's old events)."""
    if request.param == "sqlite":
        with start_service() as service:
            yield service
        return
    request.getfixturevalue("postgres_url")
    url = new_postgres_database()
    try:
        with start_service(url) as service:
            yield service
    finally:
        drop_postgres_database(url)


def _iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _prune(service: ServiceHandle, *args: str) -> str:
    done = subprocess.run(
        [BEARLUMEN, "prune", *args, "--database-url", service.database_url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _count(service: ServiceHandle, sql: str) -> int:
    db = Database(service.database_url)
    try:
        return int(db.read(lambda conn: conn.execute(text(sql)).scalar()) or 0)
    finally:
        db.close()


def test_prune_keeps_rollups_and_keys_and_counts_exactly(fresh: ServiceHandle) -> None:
    this_month = month_of(now_us())
    cutoff = bounds(this_month)[0]  # midnight UTC on the 1st of this month
    last_month = bounds(shift_month(this_month, -1))[0]
    older = bounds(shift_month(this_month, -3))[0]
    hour = 3_600_000_000

    def at(base: int, hours: int, key: str, cost: str) -> Dict[str, Any]:
        return event(
            idempotency_key=key, timestamp=_iso(base + hours * hour), metadata={"provider_cost_usd": cost}
        )

    a_events = [
        at(older, 5, "a-old-1", "0.10"),
        at(older, 5, "a-old-2", "0.20"),  # same hour
        at(older, 30, "a-old-3", "0.30"),
        at(last_month, 48, "a-last-1", "1.00"),  # last month: a partition of its own on PostgreSQL
        at(last_month, 49, "a-last-2", "2.00"),
        at(cutoff, 1, "a-new-1", "5.00"),  # after the cut-off: stays
    ]
    b_events = [at(older, 5, "b-old-1", "7.00"), at(cutoff, 2, "b-new-1", "9.00")]
    key_a, key_b = fresh.create_key("tenant-a"), fresh.create_key("tenant-b")
    with fresh.client(key_a) as api_a, fresh.client(key_b) as api_b:
        assert record_batch(api_a, a_events)["recorded_count"] == 6
        assert record_batch(api_b, b_events)["recorded_count"] == 2
        whole = {"start_date": _iso(older), "end_date": _iso(cutoff + 24 * hour)}
        before_summary = ok(api_a.get("/v1/usage/summary", params=whole))
        assert (before_summary["totalEvents"], before_summary["totalCost"]) == (6, "8.6")

        dry = _prune(fresh, "--before", _iso(cutoff), "--dry-run")
        assert "Would remove 6 events" in dry
        assert _count(fresh, "SELECT count(*) FROM usage_events") == 8

        only_b = _prune(fresh, "--before", _iso(cutoff), "--tenant", "tenant-b")
        assert "Removed 1 events" in only_b and "Partitions dropped" not in only_b
        assert _count(fresh, "SELECT count(*) FROM usage_events") == 7

        out = _prune(fresh, "--before", _iso(cutoff))
        assert "Removed 5 events" in out
        if fresh.database_url.startswith("postgresql"):  # last month went as one partition
            assert f"Partitions dropped: {partition_name(shift_month(this_month, -1))}" in out
        assert _count(fresh, "SELECT count(*) FROM usage_events") == 2
        assert _count(fresh, f"SELECT count(*) FROM usage_events WHERE ts_us < {cutoff}") == 0
        assert _count(fresh, "SELECT count(*) FROM usage_event_keys WHERE ts_us < " + str(cutoff)) == 6
        assert "Removed 0 events" in _prune(fresh, "--before", _iso(cutoff))  # idempotent

        # Reports over whole pruned hours read the rollups: unchanged.
        assert ok(api_a.get("/v1/usage/summary", params=whole)) == before_summary
        # The raw list holds only what is left; its total still counts the pruned events (rollups).
        listed = ok(api_a.get("/v1/usage/events", params=whole))
        assert [e["idempotencyKey"] for e in listed["events"]] == ["a-new-1"]
        assert listed["total"] == 6

        # A late retry of a pruned event is recognised, never counted again.
        retry = ok(api_a.post("/v1/usage/events", json=a_events[0]))
        assert (retry["recorded"], retry["event"]) == (False, None)
        again = record_batch(api_a, a_events)
        assert (again["recorded_count"], again["skipped_count"]) == (0, 6)
        assert _count(fresh, "SELECT count(*) FROM usage_events") == 2
        assert ok(api_a.get("/v1/usage/summary", params=whole)) == before_summary

        # --drop-rollups: the pruned hours disappear from the reports too.
        dropped = _prune(fresh, "--before", _iso(cutoff), "--drop-rollups")
        assert "Removed 0 events" in dropped and "Rollups: 25 hourly rows deleted." in dropped
        after = ok(api_a.get("/v1/usage/summary", params=whole))
        assert (after["totalEvents"], after["totalCost"]) == (1, "5")
        b_after = ok(api_b.get("/v1/usage/summary", params=whole))
        assert (b_after["totalEvents"], b_after["totalCost"]) == (1, "9")


def test_prune_rejects_a_cut_off_inside_an_hour_and_an_unknown_tenant(fresh: ServiceHandle) -> None:
    runs: List[subprocess.CompletedProcess[str]] = [
        subprocess.run(
            [BEARLUMEN, "prune", *args, "--database-url", fresh.database_url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        for args in (["--before", "2024-01-01T10:30:00Z"], ["--before", "2024-01-01", "--tenant", "nobody"])
    ]
    assert [r.returncode for r in runs] == [2, 1]
    assert "whole hour" in runs[0].stderr
    assert "No tenant named 'nobody'" in runs[1].stderr
