"""Recording events: validate everything, then write the whole batch in one transaction, or nothing.

Batch policy (docs/api.md): one invalid event rejects the whole batch with one error per invalid event, so a
batch is never half-written and the client can drop the bad events and resend the rest with the same keys.
Inside a batch a repeated idempotency key counts once (the first occurrence).
"""

from __future__ import annotations

from time import sleep
from typing import Any, Dict, List, NamedTuple, Sequence, Set, Tuple

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection

from bearlumen.server.db import Database
from bearlumen.server.errors import ApiError, FieldError
from bearlumen.server.ids import key_digest, new_ids
from bearlumen.server.schema import end_users
from bearlumen.server.timefmt import now_us
from bearlumen.server.usage.autoregister import register_end_users, registrable
from bearlumen.server.usage.bulk import existing_event_ids, insert_new_events
from bearlumen.server.usage.rollups import add_to_rollups, rollup_rows, write_rollups
from bearlumen.server.usage.validate import EventIn, validate_event

__all__ = ["MAX_BATCH", "Outcome", "record_events", "resolve_end_users", "validate_batch"]

MAX_BATCH = 1000


class Outcome(NamedTuple):
    """What happened to one input event."""

    idempotency_key: str
    recorded: bool
    public_id: str


def validate_batch(raw_events: Any, db: Database, tenant_id: int) -> List[EventIn]:
    """The events, validated and with end users resolved to ids; else ApiError ``invalid_batch`` listing
    every invalid event."""
    if not isinstance(raw_events, list):
        raise FieldError("invalid_request", "events must be a list of events.", "events").as_api_error()
    if not raw_events:
        raise FieldError(
            "invalid_request", "events must contain at least one event.", "events"
        ).as_api_error()
    if len(raw_events) > MAX_BATCH:
        raise ApiError(
            400,
            "batch_too_large",
            f"A batch holds at most {MAX_BATCH} events; this one has {len(raw_events)}. Split it.",
            param="events",
        )
    now = now_us()
    valid: Dict[int, EventIn] = {}
    errors: List[Dict[str, Any]] = []
    for index, raw in enumerate(raw_events):
        if not index & 63 and index:
            # Hand the GIL to a writer that is waiting for it (it holds the write lock, between two
            # statements) rather than make it wait out the interpreter's whole switch interval.
            sleep(0)
        try:
            valid[index] = validate_event(raw, now)
        except FieldError as exc:
            errors.append(exc.as_item(index))
    errors.extend(_resolve_end_users(db, tenant_id, valid))
    if errors:
        errors.sort(key=lambda item: int(item["index"]))
        raise ApiError(
            400,
            "invalid_batch",
            f"{len(errors)} of {len(raw_events)} events are invalid; nothing was recorded.",
            param="events",
            errors=errors,
        )
    return list(valid.values())


def _resolve_end_users(db: Database, tenant_id: int, events: Dict[int, EventIn]) -> List[Dict[str, Any]]:
    """Replace each event's end-user reference by the end user's id in place; one error per unknown one."""
    refs = {e.end_user_id for e in events.values() if e.end_user_id is not None}
    if not refs:
        return []
    # End users are never deleted, so resolving outside the write transaction cannot go stale.
    resolved = db.read(lambda conn: resolve_end_users(conn, tenant_id, refs))
    unknown = {ref for ref in refs - set(resolved) if registrable(ref)}
    if unknown:  # registered on first use (autoregister.py): usage is never refused for it
        resolved.update(register_end_users(db, tenant_id, unknown))
    errors = []
    for index, event in events.items():
        if event.end_user_id is None:
            continue
        if event.end_user_id in resolved:
            events[index] = event._replace(end_user_id=resolved[event.end_user_id])
        else:
            errors.append(FieldError("not_found", "No such end user.", "end_user_id", 404).as_item(index))
    return errors


def resolve_end_users(conn: Connection, tenant_id: int, refs: Set[str]) -> Dict[str, str]:
    """Map each reference (an end user's ``id``, or its ``externalId``) to the id, within the tenant."""
    found: Dict[str, str] = {}
    refs_list = sorted(refs)
    for start in range(0, len(refs_list), 400):
        chunk = refs_list[start : start + 400]
        rows = conn.execute(
            select(end_users.c.id, end_users.c.external_id).where(
                end_users.c.tenant_id == tenant_id,
                or_(end_users.c.id.in_(chunk), end_users.c.external_id.in_(chunk)),
            )
        )
        for eu_id, external_id in rows:
            if external_id in refs:
                found.setdefault(external_id, eu_id)
            if eu_id in refs:
                found[eu_id] = eu_id  # an id wins over an external id that happens to look the same
    return found


def record_events(db: Database, tenant_id: int, events: Sequence[EventIn]) -> List[Outcome]:
    """Store the events whose key is new (one transaction, rollups included); report each input's fate."""
    received = now_us()
    digests = [key_digest(e.idempotency_key) for e in events]
    first: Dict[bytes, int] = {}
    for index, digest in enumerate(digests):
        if digest not in first:
            first[digest] = index
    ids = dict(zip(first, new_ids("evt", len(first))))
    sleep(0)  # as in validate_batch: let a waiting writer go on
    rows = [_row(events[i], tenant_id, digest, ids[digest], received) for digest, i in first.items()]
    sleep(0)
    # Python work stays out of the write lock: the rollup rows assume every event is new (the usual case)
    # and are recomputed under the lock only when some were already stored.
    all_new = rollup_rows(tenant_id, [events[i] for i in first.values()])

    def write(conn: Connection) -> Dict[bytes, Tuple[str, bool]]:
        inserted = insert_new_events(conn, tenant_id, rows)
        if len(inserted) == len(rows):
            write_rollups(conn, all_new)
        else:
            add_to_rollups(conn, tenant_id, [events[i] for digest, i in first.items() if digest in inserted])
        skipped = [d for d in first if d not in inserted]
        stored = existing_event_ids(conn, tenant_id, skipped) if skipped else {}
        # digest -> (public id, recorded by this request)
        return {d: (ids[d], True) if d in inserted else (stored[d], False) for d in first}

    final = db.write(write)
    return [
        Outcome(e.idempotency_key, first[d] == i and final[d][1], final[d][0])
        for i, (e, d) in enumerate(zip(events, digests))
    ]


def _row(e: EventIn, tenant_id: int, digest: bytes, public_id: str, received: int) -> Tuple[Any, ...]:
    # bulk.EVENT_COLUMNS order
    return (
        public_id,
        tenant_id,
        digest,
        e.idempotency_key,
        e.event_type,
        e.metric_name,
        e.quantity_micro,
        e.cost_pico,
        e.agent_id,
        e.workflow_id,
        e.subscription_id,
        e.end_user_id,
        e.model,
        e.ts_us,
        received,
        e.metadata,
    )
