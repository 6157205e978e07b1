"""Hourly rollups: which exist, which one answers a query, and the statements that maintain them.

Every rollup keeps, per (tenant, hour, one dimension, metric_name, event_type), the event count, priced
count, exact cost sum and exact quantity sum of the *recorded* events. Only events that the insert really
added reach ``add_to_rollups``, in the transaction that inserted them, so a duplicate is never counted.
(Summing in Python and upserting the sums measured faster than five GROUP BY statements over the new rows.)

A query names the columns it filters or groups on; ``pick_rollup`` returns a rollup holding all of them, or
None when no single rollup does (e.g. filter by agent and group by workflow): the caller then reads raw
events, which is slower but exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from sqlalchemy import Table
from sqlalchemy.engine import Connection

from bearlumen.server.money import LIMB
from bearlumen.server.schema import (
    rollup_agent,
    rollup_end_user,
    rollup_model,
    rollup_subscription,
    rollup_workflow,
)
from bearlumen.server.timefmt import HOUR_US
from bearlumen.server.usage.bulk import upsert_rollup
from bearlumen.server.usage.validate import EventIn

__all__ = ["ROLLUPS", "Rollup", "RollupRows", "add_to_rollups", "pick_rollup", "rollup_rows", "write_rollups"]


@dataclass(frozen=True)
class Rollup:
    table: Table
    dimension: str  # the event attribute it breaks down by

    @property
    def columns(self) -> Tuple[str, ...]:
        """What a query can filter or group on here (``day`` derives from ``hour``)."""
        return (self.dimension, "metric_name", "event_type", "day", "hour")


ROLLUPS = (
    Rollup(rollup_model, "model"),  # first: the smallest, for queries that need no particular dimension
    Rollup(rollup_agent, "agent_id"),
    Rollup(rollup_workflow, "workflow_id"),
    Rollup(rollup_end_user, "end_user_id"),
    Rollup(rollup_subscription, "subscription_id"),
)


def pick_rollup(needed: Iterable[str]) -> Optional[Rollup]:
    wanted = set(needed)
    for rollup in ROLLUPS:
        if wanted <= set(rollup.columns):
            return rollup
    return None


RollupRows = List[Tuple[Table, List[Tuple[Any, ...]]]]


def add_to_rollups(conn: Connection, tenant_id: int, events: Iterable[EventIn]) -> None:
    """Fold newly inserted events (end users already resolved to ids) into every rollup."""
    write_rollups(conn, rollup_rows(tenant_id, events))


# rollup_rows adds each event's four measures as one packed integer, so a bucket costs one dict update per
# event and rollup instead of four: count in bits 0-39, priced count in 40-79, quantity from bit 80, cost
# from bit 200. A field's total never reaches the next field (2**40 events; quantities below 10**18 each,
# so 2**40 of them stay below 2**120), so the packed sums add exactly and unpack exactly.
_PRICED = 1 << 40
_QTY = 80
_COST = 200
_LOW40 = (1 << 40) - 1
_LOW120 = (1 << 120) - 1


def rollup_rows(tenant_id: int, events: Iterable[EventIn]) -> RollupRows:
    """The upsert rows of every rollup for ``events`` (pure Python: callers compute them before taking
    the write lock, and pass them to ``write_rollups`` only for events that were really inserted)."""
    events = list(events)
    if not events:
        return [(rollup.table, []) for rollup in ROLLUPS]
    field: Dict[str, Tuple[Any, ...]] = dict(zip(EventIn._fields, zip(*events)))  # columns, made in C
    packed = [
        1 + (q << _QTY) + (0 if c is None else _PRICED + (c << _COST))
        for q, c in zip(field["quantity_micro"], field["cost_pico"])
    ]
    hours = [ts // HOUR_US for ts in field["ts_us"]]
    columns = [field[rollup.dimension] for rollup in ROLLUPS]
    metrics, types = field["metric_name"], field["event_type"]
    result: RollupRows = []
    for rollup, column in zip(ROLLUPS, columns):
        sums: Dict[Tuple[Any, ...], int] = {}
        get = sums.get
        for key, value in zip(zip(column, hours, metrics, types), packed):
            sums[key] = get(key, 0) + value
        rows = _rows(tenant_id, rollup, sums)
        rows.sort()  # the lock order upsert_rollup wants, sorted here rather than under the write lock
        result.append((rollup.table, rows))
    return result


def write_rollups(conn: Connection, rows: RollupRows) -> None:
    for table, table_rows in rows:
        upsert_rollup(conn, table, table_rows)


def _rows(tenant_id: int, rollup: Rollup, sums: Dict[Tuple[Any, ...], int]) -> List[Tuple[Any, ...]]:
    """Rows in the table's primary-key column order, then schema.ROLLUP_MEASURES (each sum split into its
    part below money.LIMB and its carry: a batch's bucket can exceed one 64-bit integer). ``sums`` maps
    (dimension, hour, metric_name, event_type) to the packed sums of ``rollup_rows``."""
    order = [c.name for c in rollup.table.primary_key.columns][1:]  # after tenant_id
    position = {rollup.dimension: 0, "hour": 1, "metric_name": 2, "event_type": 3}
    index = [position[name] for name in order]
    merged: Dict[Tuple[Any, ...], int] = {}
    for key, total in sums.items():
        if key[0] is None:
            key = ("", *key[1:])  # '' stands for a missing dimension (see schema._rollup)
        merged[key] = merged.get(key, 0) + total
    rows = []
    for key, total in merged.items():
        cost, qty = total >> _COST, (total >> _QTY) & _LOW120
        rows.append(
            (
                tenant_id,
                *[key[i] for i in index],
                total & _LOW40,
                (total >> 40) & _LOW40,
                cost % LIMB,
                qty % LIMB,
                cost // LIMB,
                qty // LIMB,
            )
        )
    return rows
