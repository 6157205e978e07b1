"""Monthly partitions of usage_events on PostgreSQL (usage/partitions.py, migration 0004_16c): an existing
table is converted with every row kept, months are created ahead, a stray timestamp lands in the default
partition instead of failing, and exactly-once holds through usage_event_keys under concurrent duplicates."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Dict, Iterator, List

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bearlumen.server.db import Database
from bearlumen.server.ids import key_digest
from bearlumen.server.migrate import head_revision, upgrade
from bearlumen.server.timefmt import now_us
from bearlumen.server.usage.partitions import (
    DEFAULT_PARTITION,
    ensure_partitions,
    is_partitioned,
    month_of,
    month_partitions,
    partition_name,
)
from tests.server.helpers import event, ok, uid
from tests.server.test_server_concurrency import _barrier_run
from tests.server.test_server_migrations import _at
from tests.support.service import ServiceHandle, drop_postgres_database, new_postgres_database

US = 1_000_000


def _ts(*when: int) -> int:
    return int(datetime(*when, tzinfo=timezone.utc).timestamp()) * US  # type: ignore[misc]


@pytest.fixture
def pg_db(postgres_url: str) -> Iterator[Database]:
    url = new_postgres_database()
    db = Database(url)
    yield db
    db.close()
    drop_postgres_database(url)


def _where(db: Database) -> Dict[str, int]:
    """Rows per partition."""
    rows = db.read(
        lambda conn: conn.execute(
            text("SELECT tableoid::regclass::text, count(*) FROM usage_events GROUP BY 1")
        ).all()
    )
    return {name: count for name, count in rows}


def _insert_old(conn: Any, tenant: int, key: str, ts: int) -> None:
    conn.execute(
        text(
            "INSERT INTO usage_events (public_id, tenant_id, key_hash, idempotency_key, event_type, "
            "metric_name, quantity_micro, cost_pico, ts_us, received_us, metadata) "
            "VALUES (:pid, :t, :h, :k, 'llm_call', 'llm_tokens', 1000000, 5, :ts, :ts, '{}')"
        ),
        {"pid": f"evt_{key}", "t": tenant, "h": key_digest(key), "k": key, "ts": ts},
    )


def test_upgrade_converts_existing_events_into_partitions_and_downgrade_restores(pg_db: Database) -> None:
    db = pg_db
    _at(db, "0003")
    now = now_us()
    this_month = month_of(now)
    times = {"now": now, "june": _ts(2026, 6, 15), "far_past": _ts(1971, 1, 1), "far_future": _ts(2400, 1, 1)}

    def seed(conn: Any) -> None:
        conn.execute(text("INSERT INTO tenants (id, name, created_us) VALUES (1, 't', 0)"))
        for key, ts in times.items():
            _insert_old(conn, 1, key, ts)

    db.write(seed)
    before = db.read(lambda conn: conn.execute(text("SELECT * FROM usage_events ORDER BY id")).all())
    _at(db, "head")
    assert db.read(is_partitioned)
    assert _where(db) == {
        partition_name(this_month): 1,
        partition_name((2026, 6)): 1,
        DEFAULT_PARTITION: 2,  # 1971 and 2400: outside any month partition, never rejected
    }
    after = db.read(lambda conn: conn.execute(text("SELECT * FROM usage_events ORDER BY id")).all())
    assert after == before
    keys = db.read(lambda conn: conn.execute(text("SELECT count(*) FROM usage_event_keys")).scalar())
    assert keys == 4
    months = [month for _, month in db.read(month_partitions)]
    assert this_month in months and (2026, 6) in months
    # the next ids continue the same sequence
    db.write(lambda conn: _insert_old(conn, 1, "later", now))
    newest = db.read(lambda conn: conn.execute(text("SELECT max(id) FROM usage_events")).scalar())
    assert newest == max(row.id for row in before) + 1

    _at(db, "0003", "downgrade")
    assert not db.read(is_partitioned)
    back = db.read(lambda conn: conn.execute(text("SELECT count(*) FROM usage_events")).scalar())
    assert back == 5
    with pytest.raises(IntegrityError):  # the unique key is back on the plain table
        db.write(lambda conn: _insert_old(conn, 1, "now", now))
    _at(db, "head")
    assert db.read(is_partitioned)
    assert sum(_where(db).values()) == 5


def test_a_month_created_late_takes_its_rows_out_of_the_default_partition(pg_db: Database) -> None:
    db = pg_db
    upgrade(db)
    db.write(lambda conn: conn.execute(text("INSERT INTO tenants (id, name, created_us) VALUES (1, 't', 0)")))
    later = _ts(2031, 3, 10)
    db.write(lambda conn: _insert_old(conn, 1, "a", later))
    db.write(lambda conn: _insert_old(conn, 1, "b", later + 1))
    assert _where(db) == {DEFAULT_PARTITION: 2}
    assert db.write(lambda conn: ensure_partitions(conn)) == []  # nothing missing around now
    created = db.write(lambda conn: ensure_partitions(conn, extra=((2031, 3),)))
    assert created == [partition_name((2031, 3))]
    assert _where(db) == {partition_name((2031, 3)): 2}
    assert head_revision() is not None


def test_concurrent_duplicates_across_partitions_are_recorded_once(postgres_service: ServiceHandle) -> None:
    key = postgres_service.create_key(uid("parts"))
    times = ["2026-06-15T10:00:00Z", "2026-12-01T00:00:00Z", "1971-01-01T00:00:00Z", "2400-01-01T00:00:00Z"]
    events = [
        event(idempotency_key=f"dup-{i}", timestamp=times[i % 4], metadata={"provider_cost_usd": "0.001"})
        for i in range(200)
    ]
    clients = [postgres_service.client(key) for _ in range(6)]
    try:
        answers: List[Dict[str, Any]] = _barrier_run(
            6,
            lambda i: ok(
                clients[i].post(
                    "/v1/usage/events/batch", json={"events": events[i * 33 :] + events[: i * 33]}
                )
            ),
        )
        assert sum(a["recorded_count"] for a in answers) == 200
        assert sum(a["skipped_count"] for a in answers) == 5 * 200
        ids = {r["idempotencyKey"]: r["id"] for r in answers[0]["results"]}
        assert all({r["idempotencyKey"]: r["id"] for r in a["results"]} == ids for a in answers)
        single = ok(clients[0].post("/v1/usage/events", json=events[7]))
        assert single["recorded"] is False
        assert single["event"]["id"] == ids["dup-7"]
        summary = ok(clients[0].get("/v1/usage/summary"))
        assert (summary["totalEvents"], summary["totalCost"]) == (200, "0.2")
    finally:
        for client in clients:
            client.close()
    db = Database(postgres_service.database_url)  # shared by the session's tests: only these events
    try:
        mine = {"ids": list(ids.values())}
        counts = db.read(
            lambda conn: conn.execute(
                text(
                    "SELECT (SELECT count(*) FROM usage_events WHERE public_id = ANY(:ids)), "
                    "(SELECT count(*) FROM usage_event_keys WHERE public_id = ANY(:ids))"
                ),
                mine,
            ).one()
        )
        assert tuple(counts) == (200, 200)
        where = db.read(
            lambda conn: dict(
                conn.execute(
                    text(
                        "SELECT tableoid::regclass::text, count(*) FROM usage_events "
                        "WHERE public_id = ANY(:ids) GROUP BY 1"
                    ),
                    mine,
                ).all()
            )
        )
        # 2400 is re-stamped to the arrival time (validate.py): this month, with 2026-12-01
        assert where == {
            # 1971 and June 2026: months before last month have no partition on a new database
            DEFAULT_PARTITION: 100,
            partition_name(month_of(now_us())): 100,
        }
    finally:
        db.close()
