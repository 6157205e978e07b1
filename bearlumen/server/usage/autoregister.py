"""End users registered on first use: usage for an end user the service does not know yet is never lost.

An AI product often meters a call before its own signup flow has called ``POST /v1/end_users`` (or it
never does). A usage event whose ``end_user_id`` matches no end user of the tenant (neither an ``id`` nor
an ``externalId``) registers one, with that reference as its ``externalId`` and
``metadata.registered_by = "usage"``; the event is then recorded against it. A later
``POST /v1/end_users`` with the same ``external_id`` answers 409 ``duplicate_external_id`` (the end user
exists): read it, or update it with ``PATCH``. Concurrent requests registering the same reference create
one end user (``ON CONFLICT DO NOTHING`` on the unique (tenant, external_id) index).

A reference shaped like an id the service issues (``eu_`` and 24 hex digits) is never registered: unknown
to the tenant, it is another tenant's end user or a typo, and stays ``not_found`` (it can never become
valid; a tenant's events can never point at another tenant's end user).
"""

from __future__ import annotations

import re
from typing import Dict, Set

from sqlalchemy import Executable, insert
from sqlalchemy.engine import Connection

from bearlumen.server.db import Database
from bearlumen.server.ids import new_id
from bearlumen.server.schema import end_users
from bearlumen.server.timefmt import now_us

__all__ = ["REGISTERED_BY", "register_end_users", "registrable"]

REGISTERED_BY = '{"registered_by":"usage"}'
_SERVICE_ID = re.compile(r"eu_[0-9a-f]{24}")


def registrable(ref: str) -> bool:
    """Whether an unknown reference may register an end user (not one shaped like a service-issued id)."""
    return _SERVICE_ID.fullmatch(ref) is None


def register_end_users(db: Database, tenant_id: int, refs: Set[str]) -> Dict[str, str]:
    """Register an end user for each reference in ``refs`` (none is known yet); reference -> its id."""
    from bearlumen.server.usage.ingest import resolve_end_users

    def write(conn: Connection) -> Dict[str, str]:
        now = now_us()
        rows = [
            {
                "id": new_id("eu"),
                "tenant_id": tenant_id,
                "external_id": ref,
                "metadata": REGISTERED_BY,
                "status": "ACTIVE",
                "created_us": now,
                "updated_us": now,
            }
            for ref in sorted(refs)
        ]
        conn.execute(_insert_ignoring_duplicates(conn), rows)
        return resolve_end_users(conn, tenant_id, refs)

    return db.write(write)


def _insert_ignoring_duplicates(conn: Connection) -> Executable:
    # A concurrent request may register the same reference first: the unique index decides, no 409/500.
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(end_users).on_conflict_do_nothing(index_elements=["tenant_id", "external_id"])
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(end_users).on_conflict_do_nothing(index_elements=["tenant_id", "external_id"])
    return insert(end_users)
