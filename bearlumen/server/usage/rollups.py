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

Sums = List[int]  # [event_count, priced_count, cost_pico, quantity_micro]
Bucket = Dict[Tuple[Any, ...], Sums]  # (dimension, hour, metric_name, event_type) -> sums


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


def rollup_rows(tenant_id: int, events: Iterable[EventIn]) -> RollupRows:
    """The upsert rows of every rollup for ``events`` (pure Python: callers compute them before taking
    the write lock, and pass them to ``write_rollups`` only for events that were really inserted)."""
    buckets: List[Bucket] = [{} for _ in ROLLUPS]
    for e in events:
        hour = e.ts_us // HOUR_US
        priced = 0 if e.cost_pico is None else 1
        cost = e.cost_pico or 0
        # ROLLUPS order; '' stands for a missing dimension (see schema._rollup)
        values = (e.model, e.agent_id, e.workflow_id, e.end_user_id, e.subscription_id)
        for table_buckets, value in zip(buckets, values):
            key = (value or "", hour, e.metric_name, e.event_type)
            sums = table_buckets.get(key)
            if sums is None:
                table_buckets[key] = [1, priced, cost, e.quantity_micro]
            else:
                sums[0] += 1
                sums[1] += priced
                sums[2] += cost
                sums[3] += e.quantity_micro
    result: RollupRows = []
    for rollup, table_buckets in zip(ROLLUPS, buckets):
        rows = _rows(tenant_id, rollup, table_buckets)
        rows.sort()  # the lock order upsert_rollup wants, sorted here rather than under the write lock
        result.append((rollup.table, rows))
    return result


def write_rollups(conn: Connection, rows: RollupRows) -> None:
    for table, table_rows in rows:
        upsert_rollup(conn, table, table_rows)


def _rows(
    tenant_id: int, rollup: Rollup, table_buckets: Dict[Tuple[Any, ...], Sums]
) -> List[Tuple[Any, ...]]:
    """Rows in the table's primary-key column order, then schema.ROLLUP_MEASURES (each sum split into its
    part below money.LIMB and its carry: a batch's bucket can exceed one 64-bit integer)."""
    order = [c.name for c in rollup.table.primary_key.columns][1:]  # after tenant_id
    position = {rollup.dimension: 0, "hour": 1, "metric_name": 2, "event_type": 3}
    index = [position[name] for name in order]
    return [
        (
            tenant_id,
            *[key[i] for i in index],
            count,
            priced,
            cost % LIMB,
            qty % LIMB,
            cost // LIMB,
            qty // LIMB,
        )
        for key, (count, priced, cost, qty) in table_buckets.items()
    ]
