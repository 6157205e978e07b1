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
from bearlumen.server.schema import metadata
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
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
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
