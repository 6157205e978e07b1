"""Dashboard sessions: one row per signed-in browser (only the SHA-256 of its cookie token is stored).

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


def downgrade() -> None:
    op.drop_index("ix_dashboard_sessions_expires_us", table_name="dashboard_sessions")
    op.drop_table("dashboard_sessions")
