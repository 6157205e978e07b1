"""End users: the customers an AI product bills. Deactivation is a soft delete that keeps their usage."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from bearlumen.server.db import Database
from bearlumen.server.errors import ApiError, FieldError, invalid, not_found
from bearlumen.server.fields import check_fields, email, metadata_json, optional_text, text
from bearlumen.server.ids import new_id
from bearlumen.server.schema import end_users
from bearlumen.server.timefmt import format_ts, now_us

__all__ = ["CREATE_FIELDS", "STATUSES", "create", "deactivate", "get", "list_", "reactivate", "update_"]

CREATE_FIELDS = ("external_id", "email", "name", "metadata")
STATUSES = ("ACTIVE", "DEACTIVATED")
_eu = end_users.c


def end_user_json(row: Row[Any]) -> Dict[str, Any]:
    return {
        "id": row.id,
        "externalId": row.external_id,
        "email": row.email,
        "name": row.name,
        "metadata": orjson.Fragment(row.metadata),
        "status": row.status,
        "createdAt": format_ts(row.created_us),
        "updatedAt": format_ts(row.updated_us),
        "deactivatedAt": None if row.deactivated_us is None else format_ts(row.deactivated_us),
    }


def _duplicate() -> ApiError:
    return ApiError(
        409, "duplicate_external_id", "An end user with this external_id already exists.", param="external_id"
    )


def _row(conn: Connection, tenant_id: int, end_user_id: str) -> Row[Any]:
    row = conn.execute(select(end_users).where(_eu.tenant_id == tenant_id, _eu.id == end_user_id)).first()
    if row is None:
        raise not_found("end user", "end_user_id")
    return row


def _external_id_taken(conn: Connection, tenant_id: int, external_id: str, other_than: str = "") -> bool:
    found = conn.execute(
        select(_eu.id).where(_eu.tenant_id == tenant_id, _eu.external_id == external_id, _eu.id != other_than)
    ).first()
    return found is not None


def _write(db: Database, fn: Any) -> Any:
    """A write whose unique-index race (two requests, same external_id) answers 409, not 500."""
    try:
        return db.write(fn)
    except IntegrityError:
        raise _duplicate() from None


def create(db: Database, tenant_id: int, body: Mapping[str, Any]) -> Dict[str, Any]:
    check_fields(body, CREATE_FIELDS)
    if "external_id" not in body:
        raise invalid("external_id is required.", "external_id")
    external_id = text(body["external_id"], "external_id")
    values: Dict[str, Any] = {
        "external_id": external_id,
        "email": email(body.get("email")),
        "name": optional_text(body.get("name"), "name"),
        "metadata": metadata_json(body.get("metadata")),
    }

    def write(conn: Connection) -> Dict[str, Any]:
        if _external_id_taken(conn, tenant_id, external_id):
            raise _duplicate()
        now = now_us()
        end_user_id = new_id("eu")
        conn.execute(
            insert(end_users).values(
                id=end_user_id, tenant_id=tenant_id, status="ACTIVE", created_us=now, updated_us=now, **values
            )
        )
        return {"endUser": end_user_json(_row(conn, tenant_id, end_user_id))}

    result: Dict[str, Any] = _write(db, write)
    return result


def get(db: Database, tenant_id: int, end_user_id: str) -> Dict[str, Any]:
    return db.read(lambda conn: {"endUser": end_user_json(_row(conn, tenant_id, end_user_id))})


def update_(db: Database, tenant_id: int, end_user_id: str, body: Mapping[str, Any]) -> Dict[str, Any]:
    check_fields(body, CREATE_FIELDS)
    values: Dict[str, Any] = {}
    if body.get("external_id") is not None:  # null means "not given" (docs/api.md): it cannot be cleared
        values["external_id"] = text(body["external_id"], "external_id")
    if "email" in body:
        values["email"] = email(body["email"])
    if "name" in body:
        values["name"] = optional_text(body["name"], "name")
    if "metadata" in body:
        values["metadata"] = metadata_json(body["metadata"])  # replaces; null means {}

    def write(conn: Connection) -> Dict[str, Any]:
        _row(conn, tenant_id, end_user_id)
        external_id = values.get("external_id")
        if external_id is not None and _external_id_taken(conn, tenant_id, external_id, end_user_id):
            raise _duplicate()
        if values:
            conn.execute(
                update(end_users)
                .where(_eu.tenant_id == tenant_id, _eu.id == end_user_id)
                .values(updated_us=now_us(), **values)
            )
        return {"endUser": end_user_json(_row(conn, tenant_id, end_user_id))}

    result: Dict[str, Any] = _write(db, write)
    return result


def _set_status(db: Database, tenant_id: int, end_user_id: str, status: str) -> Dict[str, Any]:
    def write(conn: Connection) -> Dict[str, Any]:
        row = _row(conn, tenant_id, end_user_id)
        if row.status != status:  # idempotent: a second deactivate keeps the first deactivatedAt
            now = now_us()
            conn.execute(
                update(end_users)
                .where(_eu.tenant_id == tenant_id, _eu.id == end_user_id)
                .values(
                    status=status, updated_us=now, deactivated_us=now if status == "DEACTIVATED" else None
                )
            )
            row = _row(conn, tenant_id, end_user_id)
        return {"endUser": end_user_json(row)}

    return db.write(write)


def deactivate(db: Database, tenant_id: int, end_user_id: str) -> Dict[str, Any]:
    return _set_status(db, tenant_id, end_user_id, "DEACTIVATED")


def reactivate(db: Database, tenant_id: int, end_user_id: str) -> Dict[str, Any]:
    return _set_status(db, tenant_id, end_user_id, "ACTIVE")


def list_(db: Database, tenant_id: int, status: Optional[str], limit: int, offset: int) -> Dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise FieldError("invalid_request", f"status must be one of: {', '.join(STATUSES)}.", "status")
    where = [_eu.tenant_id == tenant_id]
    if status is not None:
        where.append(_eu.status == status)

    def read(conn: Connection) -> Dict[str, Any]:
        rows = conn.execute(
            select(end_users).where(*where).order_by(_eu.created_us, _eu.id).limit(limit).offset(offset)
        )
        total = conn.execute(select(func.count()).select_from(end_users).where(*where)).scalar_one()
        # The tenant's counts per status, whatever the filter: one grouped count, read in the same
        # transaction as the page, so they agree with `total`.
        by_status: Dict[str, int] = dict(
            conn.execute(
                select(_eu.status, func.count())
                .select_from(end_users)
                .where(_eu.tenant_id == tenant_id)
                .group_by(_eu.status)
            ).all()
        )
        return {
            "endUsers": [end_user_json(r) for r in rows],
            "total": int(total),
            "activeCount": int(by_status.get("ACTIVE", 0)),
            "deactivatedCount": int(by_status.get("DEACTIVATED", 0)),
            "limit": limit,
            "offset": offset,
        }

    return db.read(read)
