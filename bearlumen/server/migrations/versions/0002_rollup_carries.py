"""Rollup sums that never overflow: a carry column per sum.

Each rollup sum becomes ``x + x_hi * 10**18`` with ``0 <= x < 10**18`` (see bearlumen.server.schema). The
upgrade adds the carry columns (0) and moves every existing sum's whole 10**18 units into its carry, in one
UPDATE whose right-hand sides both read the old value: the represented number of every row is unchanged.
The downgrade folds the carries back and fails (leaving everything as it was) if a sum no longer fits in
one BIGINT, rather than rewrite it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

LIMB = 10**18
SUMS = ("cost_pico", "quantity_micro")
ROLLUPS = (
    "usage_rollup_model_hourly",
    "usage_rollup_agent_hourly",
    "usage_rollup_workflow_hourly",
    "usage_rollup_end_user_hourly",
    "usage_rollup_subscription_hourly",
)


def upgrade() -> None:
    for table in ROLLUPS:
        for column in SUMS:
            op.add_column(table, sa.Column(f"{column}_hi", sa.BigInteger, nullable=False, server_default="0"))
        moves = ", ".join(f"{c}_hi = {c} / {LIMB}, {c} = {c} % {LIMB}" for c in SUMS)
        op.execute(f"UPDATE {table} SET {moves} WHERE {' OR '.join(f'{c} >= {LIMB}' for c in SUMS)}")


def downgrade() -> None:
    for table in ROLLUPS:
        folds = ", ".join(f"{c} = {c} + {c}_hi * {LIMB}, {c}_hi = 0" for c in SUMS)
        op.execute(f"UPDATE {table} SET {folds}")  # an overflow raises: the downgrade rolls back
        for column in SUMS:
            op.drop_column(table, f"{column}_hi")
