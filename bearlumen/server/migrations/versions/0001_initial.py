"""Initial schema: tenants, API keys, end users, subscriptions, usage events and their hourly rollups.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
MEASURES = ("event_count", "priced_count", "cost_pico", "quantity_micro")


def _rollup(name: str, *key: str) -> None:
    """An hourly rollup with primary key (tenant_id, *key); see bearlumen.server.schema."""
    sqlite = op.get_context().dialect.name == "sqlite"
    checks = [sa.CheckConstraint(f"typeof({m}) = 'integer'", name=f"ck_{name}_{m}_integer") for m in MEASURES]
    op.create_table(
        name,
        sa.Column("tenant_id", sa.Integer, nullable=False),
        *[sa.Column(k, sa.Integer if k == "hour" else sa.String(255), nullable=False) for k in key],
        *[sa.Column(m, sa.BigInteger, nullable=False) for m in MEASURES],
        sa.PrimaryKeyConstraint("tenant_id", *key, name=f"pk_{name}"),
        *(checks if sqlite else []),
        sqlite_with_rowid=False,
    )


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("revoked_us", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_api_keys_tenant_id_tenants"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )
    op.create_index("ix_api_keys_tenant_id", "api_keys", ["tenant_id"])
    op.create_table(
        "end_users",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("external_id", sa.String(255), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("name", sa.String(255), nullable=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("deactivated_us", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_end_users"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_end_users_tenant_id_tenants"),
        sa.UniqueConstraint("tenant_id", "external_id", name="uq_end_users_tenant_id_external_id"),
    )
    op.create_index("ix_end_users_tenant_id_created_us", "end_users", ["tenant_id", "created_us"])
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("organization_id", sa.String(255), nullable=False),
        sa.Column("plan_id", sa.String(255), nullable=False),
        sa.Column("billing_cycle", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("start_us", sa.BigInteger, nullable=False),
        sa.Column("end_us", sa.BigInteger, nullable=True),
        sa.Column("end_user_id", sa.String(32), nullable=True),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
        sa.Column("canceled_us", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subscriptions"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_subscriptions_tenant_id_tenants"),
        sa.ForeignKeyConstraint(
            ["end_user_id"], ["end_users.id"], name="fk_subscriptions_end_user_id_end_users"
        ),
    )
    op.create_index("ix_subscriptions_tenant_id_created_us", "subscriptions", ["tenant_id", "created_us"])
    op.create_table(
        "usage_events",
        sa.Column("id", RowId, nullable=False, autoincrement=True),
        sa.Column("public_id", sa.String(40), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("key_hash", sa.LargeBinary(16), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("metric_name", sa.String(100), nullable=False),
        sa.Column("quantity_micro", sa.BigInteger, nullable=False),
        sa.Column("cost_pico", sa.BigInteger, nullable=True),
        sa.Column("agent_id", sa.String(255), nullable=True),
        sa.Column("workflow_id", sa.String(255), nullable=True),
        sa.Column("subscription_id", sa.String(255), nullable=True),
        sa.Column("end_user_id", sa.String(32), nullable=True),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("ts_us", sa.BigInteger, nullable=False),
        sa.Column("received_us", sa.BigInteger, nullable=False),
        sa.Column("metadata", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_usage_events"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name="fk_usage_events_tenant_id_tenants"),
        sa.ForeignKeyConstraint(
            ["end_user_id"], ["end_users.id"], name="fk_usage_events_end_user_id_end_users"
        ),
        sa.UniqueConstraint("tenant_id", "key_hash", name="uq_usage_events_tenant_id_key_hash"),
    )
    op.create_index("ix_usage_events_tenant_id_ts_us_id", "usage_events", ["tenant_id", "ts_us", "id"])
    _rollup("usage_rollup_model_hourly", "hour", "model", "metric_name", "event_type")
    _rollup("usage_rollup_agent_hourly", "hour", "agent_id", "metric_name", "event_type")
    _rollup("usage_rollup_workflow_hourly", "hour", "workflow_id", "metric_name", "event_type")
    _rollup("usage_rollup_end_user_hourly", "end_user_id", "hour", "metric_name", "event_type")
    _rollup("usage_rollup_subscription_hourly", "subscription_id", "hour", "metric_name", "event_type")


def downgrade() -> None:
    for table in (
        "usage_rollup_subscription_hourly",
        "usage_rollup_end_user_hourly",
        "usage_rollup_workflow_hourly",
        "usage_rollup_agent_hourly",
        "usage_rollup_model_hourly",
        "usage_events",
        "subscriptions",
        "end_users",
        "api_keys",
        "tenants",
    ):
        op.drop_table(table)
