"""Dashboard sessions: one row per signed-in browser (only the SHA-256 of its cookie token is stored), and
an index on one end user's events by time (the dashboard's end-user page reads them by agent and model,
which no rollup holds together).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_EVENTS_BY_END_USER = "ix_usage_events_tenant_id_end_user_id_ts_us"


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("tenant_id", sa.Integer, nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_dashboard_sessions_tenant_id_tenants"
        ),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name="fk_dashboard_sessions_key_id_api_keys"),
        sa.PrimaryKeyConstraint("token_hash", name="pk_dashboard_sessions"),
    )
    op.create_index("ix_dashboard_sessions_expires_us", "dashboard_sessions", ["expires_us"])
    op.create_index(_EVENTS_BY_END_USER, "usage_events", ["tenant_id", "end_user_id", "ts_us"])


def downgrade() -> None:
    op.drop_index(_EVENTS_BY_END_USER, table_name="usage_events")
    op.drop_index("ix_dashboard_sessions_expires_us", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
