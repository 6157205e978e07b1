"""Subscriptions: a plan on a billing cycle for an organization, optionally tied to an end user."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import orjson
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection, Row

from bearlumen.server.db import Database
from bearlumen.server.errors import FieldError, invalid, not_found
from bearlumen.server.fields import check_fields, enum, metadata_json, optional_text, text, timestamp_param
from bearlumen.server.ids import new_id
from bearlumen.server.schema import subscriptions
from bearlumen.server.timefmt import format_ts, now_us
from bearlumen.server.usage.ingest import resolve_end_users

__all__ = ["CREATE_FIELDS", "UPDATE_FIELDS", "cancel", "create", "get", "list_", "update_"]

CREATE_FIELDS = (
    "organization_id",
    "plan_id",
    "billing_cycle",
    "start_date",
    "end_date",
    "end_user_id",
    "metadata",
)
UPDATE_FIELDS = ("organization_id", "plan_id", "billing_cycle", "end_date", "end_user_id", "metadata")
CYCLES = ("monthly", "quarterly", "yearly")
STATUSES = ("ACTIVE", "CANCELED")
_sub = subscriptions.c


def subscription_json(row: Row[Any]) -> Dict[str, Any]:
    return {
        "id": row.id,
        "organizationId": row.organization_id,
        "planId": row.plan_id,
        "billingCycle": row.billing_cycle,
        "status": row.status,
        "startDate": format_ts(row.start_us),
        "endDate": None if row.end_us is None else format_ts(row.end_us),
        "endUserId": row.end_user_id,
        "metadata": orjson.Fragment(row.metadata),
        "createdAt": format_ts(row.created_us),
        "updatedAt": format_ts(row.updated_us),
        "canceledAt": None if row.canceled_us is None else format_ts(row.canceled_us),
    }


def _row(conn: Connection, tenant_id: int, subscription_id: str) -> Row[Any]:
    row = conn.execute(
        select(subscriptions).where(_sub.tenant_id == tenant_id, _sub.id == subscription_id)
    ).first()
    if row is None:
        raise not_found("subscription", "subscription_id")
    return row


def _end_user(conn: Connection, tenant_id: int, ref: Optional[str]) -> Optional[str]:
    if ref is None:
        return None
    resolved = resolve_end_users(conn, tenant_id, {ref}).get(ref)
    if resolved is None:
        raise not_found("end user", "end_user_id")
    return resolved


def _check_span(start_us: int, end_us: Optional[int]) -> None:
    if end_us is not None and end_us < start_us:
        raise FieldError("invalid_date", "end_date must not be before start_date.", "end_date")


def create(db: Database, tenant_id: int, body: Mapping[str, Any]) -> Dict[str, Any]:
    check_fields(body, CREATE_FIELDS)
    for name in ("organization_id", "plan_id", "billing_cycle", "start_date"):
        if body.get(name) is None:
            raise invalid(f"{name} is required.", name)
    start_us = timestamp_param(body["start_date"], "start_date")
    end_us = None if body.get("end_date") is None else timestamp_param(body["end_date"], "end_date")
    _check_span(start_us, end_us)
    values: Dict[str, Any] = {
        "organization_id": text(body["organization_id"], "organization_id"),
        "plan_id": text(body["plan_id"], "plan_id"),
        "billing_cycle": enum(body["billing_cycle"], "billing_cycle", CYCLES),
        "start_us": start_us,
        "end_us": end_us,
        "metadata": metadata_json(body.get("metadata")),
    }
    end_user_ref = optional_text(body.get("end_user_id"), "end_user_id")

    def write(conn: Connection) -> Dict[str, Any]:
        now = now_us()
        subscription_id = new_id("sub")
        conn.execute(
            insert(subscriptions).values(
                id=subscription_id,
                tenant_id=tenant_id,
                status="ACTIVE",
                end_user_id=_end_user(conn, tenant_id, end_user_ref),
                created_us=now,
                updated_us=now,
                **values,
            )
        )
        return {"subscription": subscription_json(_row(conn, tenant_id, subscription_id))}

    return db.write(write)


def get(db: Database, tenant_id: int, subscription_id: str) -> Dict[str, Any]:
    return db.read(lambda conn: {"subscription": subscription_json(_row(conn, tenant_id, subscription_id))})


def update_(db: Database, tenant_id: int, subscription_id: str, body: Mapping[str, Any]) -> Dict[str, Any]:
    check_fields(body, UPDATE_FIELDS)
    values: Dict[str, Any] = {}
    for name in ("organization_id", "plan_id"):
        if body.get(name) is not None:  # null means "not given" (docs/api.md): these cannot be cleared
            values[name] = text(body[name], name)
    if body.get("billing_cycle") is not None:
        values["billing_cycle"] = enum(body["billing_cycle"], "billing_cycle", CYCLES)
    if "end_date" in body:
        values["end_us"] = None if body["end_date"] is None else timestamp_param(body["end_date"], "end_date")
    if "metadata" in body:
        values["metadata"] = metadata_json(body["metadata"])
    end_user_ref = optional_text(body.get("end_user_id"), "end_user_id")

    def write(conn: Connection) -> Dict[str, Any]:
        row = _row(conn, tenant_id, subscription_id)
        if "end_us" in values:
            _check_span(row.start_us, values["end_us"])
        if "end_user_id" in body:
            values["end_user_id"] = _end_user(conn, tenant_id, end_user_ref)
        if values:
            conn.execute(
                update(subscriptions)
                .where(_sub.tenant_id == tenant_id, _sub.id == subscription_id)
                .values(updated_us=now_us(), **values)
            )
        return {"subscription": subscription_json(_row(conn, tenant_id, subscription_id))}

    return db.write(write)


def cancel(db: Database, tenant_id: int, subscription_id: str) -> Dict[str, Any]:
    def write(conn: Connection) -> Dict[str, Any]:
        row = _row(conn, tenant_id, subscription_id)
        if row.status != "CANCELED":  # idempotent: a second cancel keeps the first canceledAt
            now = now_us()
            conn.execute(
                update(subscriptions)
                .where(_sub.tenant_id == tenant_id, _sub.id == subscription_id)
                .values(status="CANCELED", canceled_us=now, updated_us=now)
            )
            row = _row(conn, tenant_id, subscription_id)
        return {"subscription": subscription_json(row)}

    return db.write(write)


def list_(
    db: Database,
    tenant_id: int,
    organization_id: Optional[str],
    status: Optional[str],
    limit: int,
    offset: int,
) -> Dict[str, Any]:
    where = [_sub.tenant_id == tenant_id]
    if organization_id is not None:
        where.append(_sub.organization_id == text(organization_id, "organization_id"))
    if status is not None:
        where.append(_sub.status == enum(status, "status", STATUSES))

    def read(conn: Connection) -> Dict[str, Any]:
        rows = conn.execute(
            select(subscriptions).where(*where).order_by(_sub.created_us, _sub.id).limit(limit).offset(offset)
        )
        total = conn.execute(select(func.count()).select_from(subscriptions).where(*where)).scalar_one()
        return {
            "subscriptions": [subscription_json(r) for r in rows],
            "total": int(total),
            "limit": limit,
            "offset": offset,
        }

    return db.read(read)
