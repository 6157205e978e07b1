"""Migrations: from an empty database to head, a re-run is a no-op, the result matches the models, data
survives, and concurrent upgrades are safe. SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from bearlumen.server.db import Database
from bearlumen.server.keys import issue_key
from bearlumen.server.migrate import VERSION_TABLE, current_revision, head_revision, upgrade
from bearlumen.server.schema import include_object, metadata
from tests.support.service import drop_postgres_database, new_postgres_database

BEARLUMEN = [str(Path(sys.executable).with_name("bearlumen"))]


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    request.getfixturevalue("postgres_url")  # PostgreSQL reachable (or the test is skipped)
    url = new_postgres_database()
    yield url
    drop_postgres_database(url)


def _schema(db: Database) -> Dict[str, Any]:
    with db.connect() as conn:
        inspector = inspect(conn)
        return {
            table: (
                [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                sorted(str(i) for i in inspector.get_indexes(table)),
                inspector.get_pk_constraint(table),
            )
            for table in sorted(inspector.get_table_names())
        }


def test_upgrade_from_empty_then_rerun_is_a_noop(empty_url: str) -> None:
    db = Database(empty_url)
    try:
        assert current_revision(db) is None
        assert upgrade(db) == head_revision()
        schema = _schema(db)
        assert {"tenants", "api_keys", "end_users", "subscriptions", "usage_events", VERSION_TABLE} <= set(
            schema
        )
        key = db.write(lambda conn: issue_key(conn, "kept"))
        assert upgrade(db) == head_revision()  # second run: nothing to do
        assert _schema(db) == schema
        with db.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM api_keys")).scalar() == 1
            assert conn.execute(text(f"SELECT count(*) FROM {VERSION_TABLE}")).scalar() == 1
        assert key.startswith("blm_")
        with db.connect() as conn:  # the migrations build exactly the tables the code uses
            # include_object: PostgreSQL's event partitions and the SQLite-only unique key (schema.py)
            opts = {"version_table": VERSION_TABLE, "include_object": include_object}
            context = MigrationContext.configure(conn, opts=opts)
            assert compare_metadata(context, metadata) == []
    finally:
        db.close()


def test_migrate_command_twice_and_concurrently(empty_url: str) -> None:
    runs: List[subprocess.Popen[str]] = [
        subprocess.Popen(
            [*BEARLUMEN, "migrate", "--database-url", empty_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
        assert f"schema revision {head_revision()}" in out
        assert "password" not in out
    again = subprocess.run(
        [*BEARLUMEN, "migrate", "--database-url", empty_url], capture_output=True, text=True, timeout=120
    )
    assert again.returncode == 0 and "(latest)" in again.stdout


# -- 0002: rollup carries -------------------------------------------------------------------------------
LIMB = 10**18
BIG = 2**63 - 1  # the largest sum a 0001 rollup could hold


def _at(db: Database, revision: str, direction: str = "upgrade") -> None:
    from alembic import command

    from bearlumen.server.migrate import _config

    db.write(lambda conn: getattr(command, direction)(_config(conn), revision))


def test_0002_moves_whole_limbs_into_the_carry_without_changing_a_sum(empty_url: str) -> None:
    """Sums written by 0001 (up to 2**63-1) read back identically after 0002, low parts below 10**18; a
    downgrade restores them, and refuses (changing nothing) once a sum no longer fits one BIGINT."""
    from bearlumen.server.usage.totals import totals

    db = Database(empty_url)
    try:
        _at(db, "0001")
        sums = {"a": (BIG, 5), "b": (LIMB, LIMB - 1), "c": (3 * LIMB + 7, 0), "d": (0, BIG)}
        db.write(
            lambda conn: [
                conn.execute(
                    text(
                        "INSERT INTO usage_rollup_model_hourly (tenant_id, hour, model, metric_name, "
                        "event_type, event_count, priced_count, cost_pico, quantity_micro) "
                        "VALUES (1, 100, :model, 'm', 't', 1, 1, :cost, :qty)"
                    ),
                    {"model": model, "cost": cost, "qty": qty},
                )
                for model, (cost, qty) in sums.items()
            ]
        )
        _at(db, "head")
        read = db.read(lambda conn: totals(conn, 1, filters={}, group_by=("model",)))
        assert {key[0]: (t.cost_pico, t.quantity_micro) for key, t in read.items()} == sums
        lows = db.read(
            lambda conn: conn.execute(
                text("SELECT max(cost_pico), max(quantity_micro) FROM usage_rollup_model_hourly")
            ).one()
        )
        assert max(lows) < LIMB
        total = db.read(lambda conn: totals(conn, 1, filters={}))[()]
        assert total.cost_pico == sum(c for c, _ in sums.values())  # past 2**63: exact
        assert total.quantity_micro == sum(q for _, q in sums.values())

        _at(db, "0001", "downgrade")
        restored = db.read(
            lambda conn: dict(
                [
                    tuple(row)
                    for row in conn.execute(text("SELECT model, cost_pico FROM usage_rollup_model_hourly"))
                ]
            )
        )
        assert restored == {model: cost for model, (cost, _) in sums.items()}
        _at(db, "head")
        db.write(
            lambda conn: conn.execute(
                text("UPDATE usage_rollup_model_hourly SET cost_pico_hi = 10 WHERE model = 'a'")
            )
        )
        with pytest.raises(Exception):  # noqa: B017 - the driver's overflow error, whichever it is
            _at(db, "0001", "downgrade")
        assert current_revision(db) == head_revision()
        still = db.read(lambda conn: totals(conn, 1, filters={}, group_by=("model",)))
        assert still[("a",)].cost_pico == 10 * LIMB + BIG % LIMB
    finally:
        db.close()
