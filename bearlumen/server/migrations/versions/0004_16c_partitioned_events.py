"""Events partitioned by month on PostgreSQL; idempotency keys in their own table.

PostgreSQL: ``usage_events`` becomes a table partitioned by range of ``ts_us`` (one partition per UTC month,
plus a default partition; see bearlumen.server.usage.partitions). A unique constraint on a partitioned
table must contain the partition key, so (tenant, key) uniqueness moves to the new unpartitioned
``usage_event_keys`` table, which every insert goes through. The data is copied into the new table (same
ids, same sequence) and the old table dropped, in the migration's one transaction.

SQLite: the events table is unchanged (one table, its unique constraint kept); ``usage_event_keys`` is
created and keeps the keys of events removed by ``bearlumen prune``.

The downgrade copies the events back into one plain table (PostgreSQL) and drops ``usage_event_keys``: the
keys of pruned events are forgotten with it.

Revision ID: 0004_16c
Revises: 0003 (0003_14_dashboard_sessions)
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bearlumen.server.timefmt import now_us
from bearlumen.server.usage.partitions import ensure_partitions, month_of

revision = "0004_16c"
down_revision = "0003"
branch_labels = None
depends_on = None

_COLUMNS = """
    id BIGINT NOT NULL DEFAULT nextval('usage_events_id_seq'),
    public_id VARCHAR(40) NOT NULL,
    tenant_id INTEGER NOT NULL,
    key_hash BYTEA NOT NULL,
    idempotency_key VARCHAR(255) NOT NULL,
    event_type VARCHAR(100) NOT NULL,
    metric_name VARCHAR(100) NOT NULL,
    quantity_micro BIGINT NOT NULL,
    cost_pico BIGINT,
    agent_id VARCHAR(255),
    workflow_id VARCHAR(255),
    subscription_id VARCHAR(255),
    end_user_id VARCHAR(32),
    model VARCHAR(255),
    ts_us BIGINT NOT NULL,
    received_us BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    CONSTRAINT fk_usage_events_tenant_id_tenants FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT fk_usage_events_end_user_id_end_users FOREIGN KEY (end_user_id) REFERENCES end_users (id)
"""
_OLD_CONSTRAINTS = (
    "uq_usage_events_tenant_id_key_hash",
    "fk_usage_events_tenant_id_tenants",
    "fk_usage_events_end_user_id_end_users",
    "pk_usage_events",
)
_INDEXES = (
    "CREATE INDEX ix_usage_events_tenant_id_ts_us_id ON usage_events (tenant_id, ts_us, id)",
    "CREATE INDEX ix_usage_events_tenant_id_end_user_id_ts_us "
    "ON usage_events (tenant_id, end_user_id, ts_us)",
)
# Months older or further ahead than this stay in the default partition (a stray timestamp must not
# create thousands of partitions).
_YEARS_BACK = 10


def upgrade() -> None:
    op.create_table(
        "usage_event_keys",
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("key_hash", sa.LargeBinary(16), nullable=False),
        sa.Column("public_id", sa.String(40), nullable=False),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "key_hash", name="pk_usage_event_keys"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_usage_event_keys_tenant_id_tenants"),
        sqlite_with_rowid=False,
    )
    if op.get_context().dialect.name != "postgresql":
        return
    conn = op.get_bind()
    op.execute(
        "INSERT INTO usage_event_keys (tenant_id, key_hash, public_id, ts_us) "
        "SELECT tenant_id, key_hash, public_id, ts_us FROM usage_events"
    )
    op.execute("ALTER SEQUENCE usage_events_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE usage_events RENAME TO usage_events_old")
    for name in _OLD_CONSTRAINTS:
        op.execute(f"ALTER TABLE usage_events_old DROP CONSTRAINT {name}")
    for index in _INDEXES:
        op.execute(f"DROP INDEX {index.split()[2]}")
    op.execute(
        f"CREATE TABLE usage_events ({_COLUMNS}, CONSTRAINT pk_usage_events PRIMARY KEY (id, ts_us)) "
        "PARTITION BY RANGE (ts_us)"
    )
    for index in _INDEXES:
        op.execute(index)
    op.execute("ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id")
    now = now_us()
    lowest, highest = month_of(now)[0] - _YEARS_BACK, month_of(now)[0] + 1
    months = conn.exec_driver_sql(
        "SELECT DISTINCT extract(year FROM t)::int, extract(month FROM t)::int FROM "
        "(SELECT to_timestamp(ts_us / 1000000) AT TIME ZONE 'UTC' AS t FROM usage_events_old) AS times"
    ).all()
    extra = tuple((int(y), int(m)) for y, m in months if lowest <= y <= highest)
    ensure_partitions(conn, now=now, extra=extra)
    op.execute("INSERT INTO usage_events SELECT * FROM usage_events_old")
    op.execute("DROP TABLE usage_events_old")


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        columns = _COLUMNS.replace("CONSTRAINT fk_", "CONSTRAINT old_fk_")
        op.execute(f"CREATE TABLE usage_events_flat ({columns})")
        op.execute("INSERT INTO usage_events_flat SELECT * FROM usage_events")
        op.execute("ALTER SEQUENCE usage_events_id_seq OWNED BY NONE")
        op.execute("DROP TABLE usage_events")  # and its partitions
        op.execute("ALTER TABLE usage_events_flat RENAME TO usage_events")
        for old in ("fk_usage_events_tenant_id_tenants", "fk_usage_events_end_user_id_end_users"):
            op.execute(f"ALTER TABLE usage_events RENAME CONSTRAINT old_{old} TO {old}")
        op.execute("ALTER TABLE usage_events ADD CONSTRAINT pk_usage_events PRIMARY KEY (id)")
        op.execute(
            "ALTER TABLE usage_events ADD CONSTRAINT uq_usage_events_tenant_id_key_hash "
            "UNIQUE (tenant_id, key_hash)"
        )
        for index in _INDEXES:
            op.execute(index)
        op.execute("ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id")
    op.drop_table("usage_event_keys")
