"""Tenants and API keys.

A key is ``blm_`` + 43 URL-safe characters (256 random bits). The service stores only its SHA-256 (hex)
and a display prefix (``blm_`` + 8 chars); the plaintext is shown once, when the key is created.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import List, Optional

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from bearlumen.server.db import Database, dialect_insert
from bearlumen.server.ids import new_id
from bearlumen.server.schema import api_keys, tenants
from bearlumen.server.timefmt import now_us

__all__ = [
    "KeyInfo",
    "Principal",
    "authenticate",
    "bootstrap_key",
    "create_api_key",
    "ensure_tenant",
    "has_any_key",
    "issue_key",
    "list_keys",
    "revoke_key",
]

_KEY_FORMAT = re.compile(r"blm_[A-Za-z0-9_-]{43}")
_PREFIX_LEN = 12


@dataclass(frozen=True)
class Principal:
    """Who is calling: the tenant every query is scoped to, and the key (for rate limiting)."""

    tenant_id: int
    key_id: str


@dataclass(frozen=True)
class KeyInfo:
    id: str
    tenant: str
    prefix: str
    created_us: int
    revoked_us: Optional[int]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def ensure_tenant(conn: Connection, name: str) -> int:
    """The id of tenant ``name``, created if missing (call inside a write transaction)."""
    if not name or len(name) > 255:
        raise ValueError("A tenant name must be 1 to 255 characters long.")
    # ON CONFLICT DO NOTHING: two processes creating the same tenant at once both succeed.
    conn.execute(
        dialect_insert(conn, tenants).values(name=name, created_us=now_us()).on_conflict_do_nothing()
    )
    return int(conn.execute(select(tenants.c.id).where(tenants.c.name == name)).scalar_one())


def issue_key(conn: Connection, tenant: str) -> str:
    """Create a key for ``tenant`` (created if missing) and return its plaintext, inside a write txn."""
    tenant_id = ensure_tenant(conn, tenant)
    key = "blm_" + secrets.token_urlsafe(32)
    conn.execute(
        insert(api_keys).values(
            id=new_id("key"),
            tenant_id=tenant_id,
            key_hash=hash_key(key),
            prefix=key[:_PREFIX_LEN],
            created_us=now_us(),
        )
    )
    return key


def has_any_key(conn: Connection) -> bool:
    return bool(conn.execute(select(func.count()).select_from(api_keys)).scalar())


def bootstrap_key(db: Database) -> Optional[str]:
    """Create tenant ``default`` and its first key if the database has no key at all; else None."""

    def run(conn: Connection) -> Optional[str]:
        if not db.is_sqlite:  # two servers starting at once on an empty database must not both make one
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(1651794546)")
        return None if has_any_key(conn) else issue_key(conn, "default")

    return db.write(run)


def authenticate(conn: Connection, key: str) -> Optional[Principal]:
    """The principal of an active key, or None (malformed, unknown and revoked keys alike)."""
    if not _KEY_FORMAT.fullmatch(key):
        return None
    row = conn.execute(
        select(api_keys.c.id, api_keys.c.tenant_id).where(
            api_keys.c.key_hash == hash_key(key), api_keys.c.revoked_us.is_(None)
        )
    ).first()
    return None if row is None else Principal(tenant_id=row.tenant_id, key_id=row.id)


def list_keys(conn: Connection, tenant: Optional[str] = None) -> List[KeyInfo]:
    query = (
        select(api_keys.c.id, tenants.c.name, api_keys.c.prefix, api_keys.c.created_us, api_keys.c.revoked_us)
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .order_by(api_keys.c.created_us, api_keys.c.id)
    )
    if tenant is not None:
        query = query.where(tenants.c.name == tenant)
    return [KeyInfo(*row) for row in conn.execute(query)]


def revoke_key(conn: Connection, key_id_or_prefix: str) -> Optional[KeyInfo]:
    """Revoke the key with this id (``key_...``) or display prefix (``blm_...``); None if no single match."""
    matches = [k for k in list_keys(conn) if key_id_or_prefix in (k.id, k.prefix)]
    if len(matches) != 1:
        return None
    target = matches[0]
    if target.revoked_us is None:
        revoked = now_us()
        conn.execute(update(api_keys).where(api_keys.c.id == target.id).values(revoked_us=revoked))
        target = KeyInfo(target.id, target.tenant, target.prefix, target.created_us, revoked)
    return target


def create_api_key(database_url: str, tenant: str) -> str:
    """Create tenant ``tenant`` if needed and a key for it; return the plaintext key.

    Migrates the database first if needed. For scripts, tests and embedded mode::

        key = create_api_key("sqlite:///usage.db", "acme")
    """
    from bearlumen.server.migrate import upgrade  # alembic loads only when keys are made

    db = Database(database_url)
    try:
        upgrade(db)
        return db.write(lambda conn: issue_key(conn, tenant))
    finally:
        db.close()
