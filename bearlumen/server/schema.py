"""The database schema (SQLAlchemy Core). Migrations in ``migrations/versions`` create exactly this.

Conventions, identical on SQLite and PostgreSQL:
- times are BIGINT microseconds since the Unix epoch (UTC), columns suffixed ``_us``;
- money is BIGINT pico-dollars (``cost_pico``), quantities BIGINT micro-units (``quantity_micro``);
- every tenant-owned row carries ``tenant_id`` and every lookup filters on it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = [
    "PARTITION_PREFIX",
    "ROLLUP_MEASURES",
    "ROLLUP_SUMS",
    "api_keys",
    "dashboard_sessions",
    "end_users",
    "include_object",
    "metadata",
    "rollup_agent",
    "rollup_end_user",
    "rollup_model",
    "rollup_subscription",
    "rollup_workflow",
    "subscriptions",
    "tenants",
    "usage_event_keys",
    "usage_events",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# INTEGER PRIMARY KEY is SQLite's rowid alias (no separate index); BIGINT identity on PostgreSQL.
RowId = BigInteger().with_variant(Integer(), "sqlite")


def _tenant_fk() -> Column[int]:
    return Column("tenant_id", Integer, ForeignKey("tenants.id"), nullable=False)


tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_us", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    _tenant_fk(),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 hex of the whole key
    Column("prefix", String(16), nullable=False),  # shown in listings, e.g. blm_AbCd1234
    Column("created_us", BigInteger, nullable=False),
    Column("revoked_us", BigInteger, nullable=True),
    Index(None, "tenant_id"),
)

# A dashboard sign-in (bearlumen/server/dashboard): the cookie holds a random token, the table only its
# SHA-256, so a leaked database row cannot be replayed and the API key never leaves the sign-in request.
# Bound to the key it signed in with: revoking the key ends its sessions.
dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    _tenant_fk(),
    Column("key_id", String(32), ForeignKey("api_keys.id"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Index(None, "expires_us"),
)

end_users = Table(
    "end_users",
    metadata,
    Column("id", String(32), primary_key=True),
    _tenant_fk(),
    Column("external_id", String(255), nullable=False),
    Column("email", String(320), nullable=True),
    Column("name", String(255), nullable=True),
    Column("metadata", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("deactivated_us", BigInteger, nullable=True),
    UniqueConstraint("tenant_id", "external_id"),
    Index(None, "tenant_id", "created_us"),
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", String(32), primary_key=True),
    _tenant_fk(),
    Column("organization_id", String(255), nullable=False),
    Column("plan_id", String(255), nullable=False),
    Column("billing_cycle", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("start_us", BigInteger, nullable=False),
    Column("end_us", BigInteger, nullable=True),
    Column("end_user_id", String(32), ForeignKey("end_users.id"), nullable=True),
    Column("metadata", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("canceled_us", BigInteger, nullable=True),
    Index(None, "tenant_id", "created_us"),
)

usage_events = Table(
    "usage_events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("public_id", String(40), nullable=False),  # evt_<128 random bits>; not indexed (never looked up)
    _tenant_fk(),
    Column("key_hash", LargeBinary(16), nullable=False),  # ids.key_digest(idempotency_key)
    Column("idempotency_key", String(255), nullable=False),
    Column("event_type", String(100), nullable=False),
    Column("metric_name", String(100), nullable=False),
    Column("quantity_micro", BigInteger, nullable=False),
    Column("cost_pico", BigInteger, nullable=True),  # NULL: unpriced (unknown), never zero
    Column("agent_id", String(255), nullable=True),
    Column("workflow_id", String(255), nullable=True),
    Column("subscription_id", String(255), nullable=True),
    Column("end_user_id", String(32), ForeignKey("end_users.id"), nullable=True),
    Column("model", String(255), nullable=True),  # metadata.model, for group_by=model
    Column("ts_us", BigInteger, nullable=False),
    Column("received_us", BigInteger, nullable=False),
    Column("metadata", Text, nullable=False),
    # Idempotency on SQLite: (tenant, key) is unique here. PostgreSQL partitions this table by ts_us (see
    # usage/partitions.py) and a unique constraint there must hold the partition key, so it has none: every
    # key goes through usage_event_keys instead (migration 0004_16c).
    UniqueConstraint("tenant_id", "key_hash", info={"sqlite_only": True}),
    Index(None, "tenant_id", "ts_us", "id"),
    # One customer's calls (the dashboard's end-user page, `GET /v1/usage/events?end_user_id=`) without
    # scanning every call of the range (migration 0003).
    Index(None, "tenant_id", "end_user_id", "ts_us"),
)

# The idempotency keys, unpartitioned: on PostgreSQL every event's key is inserted here first (ON CONFLICT DO
# NOTHING) and only the events whose key was new are inserted, in the same transaction, so exactly-once holds
# across partitions and replicas. On SQLite it holds only the keys of pruned events (``bearlumen prune``):
# the key outlives its event so a late retry is still recognised and not counted again.
usage_event_keys = Table(
    "usage_event_keys",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id"), primary_key=True),
    Column("key_hash", LargeBinary(16), primary_key=True),
    Column("public_id", String(40), nullable=False),
    Column("ts_us", BigInteger, nullable=False),  # finds the event in its partition
    sqlite_with_rowid=False,
)

PARTITION_PREFIX = "usage_events_p"  # usage_events_p202612, usage_events_pdefault (PostgreSQL only)


def include_object(obj: object, name: object, type_: str, reflected: bool, compare_to: object) -> bool:
    """Alembic's comparison filter: PostgreSQL's event partitions and the SQLite-only unique constraint
    are the migrations' business, not the models'."""
    if type_ == "table" and reflected and compare_to is None:
        return not str(name).startswith(PARTITION_PREFIX)
    if type_ == "unique_constraint" and compare_to is None and not reflected:
        return not getattr(obj, "info", {}).get("sqlite_only", False)
    return True


# The measures every rollup keeps: counts and exact integer sums over the *recorded* events of a bucket.
# A sum is two BIGINT columns, ``x + x_hi * 10**18`` with ``0 <= x < 10**18`` (money.LIMB): one event is at
# most 10**18 units, so the carry grows by at most one per event and can never overflow (migration 0002).
ROLLUP_SUMS = ("cost_pico", "quantity_micro")
ROLLUP_MEASURES = (
    "event_count",
    "priced_count",
    "cost_pico",
    "quantity_micro",
    "cost_pico_hi",
    "quantity_micro_hi",
)


def _rollup(name: str, *key: str) -> Table:
    """An hourly rollup with primary key (tenant_id, *key) where ``key`` holds ``hour`` and dimensions.

    A missing dimension is stored as '' (names are never empty) because NULLs never conflict in a unique
    key, and the upsert needs them to."""
    columns = [
        Column(k, Integer, primary_key=True) if k == "hour" else Column(k, String(255), primary_key=True)
        for k in key
    ]
    measures = [Column(m, BigInteger, nullable=False) for m in ROLLUP_MEASURES[:4]]
    carries = [Column(f"{m}_hi", BigInteger, nullable=False, server_default="0") for m in ROLLUP_SUMS]
    return Table(
        name,
        metadata,
        Column("tenant_id", Integer, primary_key=True),
        *columns,
        *measures,
        *carries,
        # SQLite silently turns an overflowing integer addition into a float; this makes it an error instead.
        *[
            CheckConstraint(f"typeof({m}) = 'integer'", name=f"{m}_integer").ddl_if(dialect="sqlite")
            for m in ROLLUP_MEASURES[:4]
        ],
        sqlite_with_rowid=False,
    )


# Five narrow rollups rather than one cube: a cube over every dimension gains a row for nearly every event
# once one dimension has many values (end users), doubling ingest cost. Each table here stays as small as
# its own dimension. Agent, workflow and model tables lead with the hour (queries scan a time range across
# all values); end-user and subscription tables lead with the entity (queries ask about one customer).
rollup_model = _rollup("usage_rollup_model_hourly", "hour", "model", "metric_name", "event_type")
rollup_agent = _rollup("usage_rollup_agent_hourly", "hour", "agent_id", "metric_name", "event_type")
rollup_workflow = _rollup("usage_rollup_workflow_hourly", "hour", "workflow_id", "metric_name", "event_type")
rollup_end_user = _rollup("usage_rollup_end_user_hourly", "end_user_id", "hour", "metric_name", "event_type")
rollup_subscription = _rollup(
    "usage_rollup_subscription_hourly", "subscription_id", "hour", "metric_name", "event_type"
)
