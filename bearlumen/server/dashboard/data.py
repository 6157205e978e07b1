"""What the dashboard pages show, read with the same exact totals the API answers with (usage/totals.py).

Every figure is an integer sum (pico-dollars, micro-units) formatted by money.py, so a page's total and the
API's ``totalCost`` over the same range are the same string. Whole hours come from the hourly rollups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from sqlalchemy import select
from sqlalchemy.engine import Connection

from bearlumen.server.money import format_money
from bearlumen.server.schema import end_users, subscriptions, usage_events
from bearlumen.server.timefmt import DAY_US, HOUR_US, format_date, format_ts
from bearlumen.server.usage.totals import Totals, totals

__all__ = [
    "BREAKDOWNS",
    "ON_OVERVIEW",
    "STACKS",
    "Breakdown",
    "Row",
    "Series",
    "end_user_info",
    "events_page",
    "figures",
    "over_time",
]

# (dimension, title, path segment) of the breakdowns, in page order. The overview shows the first three:
# their rollups lead with the hour, so a range reads only its own rows; end users and subscriptions (rollups
# led by the entity, possibly one row per customer and hour) have their own pages.
BREAKDOWNS = (
    ("agent_id", "Agent", "agent"),
    ("workflow_id", "Workflow", "workflow"),
    ("model", "Model", "model"),
    ("end_user_id", "End user", "end-user"),
    ("subscription_id", "Subscription", "subscription"),
)
ON_OVERVIEW = ("agent_id", "workflow_id", "model")
STACKS = ("model", "agent_id", "workflow_id")
Span = Tuple[int, int]


@dataclass(frozen=True)
class Row:
    """One group of a breakdown, with its figures as the API writes them (cost None: nothing priced)."""

    value: Optional[str]  # the dimension's value (None: events without one)
    label: str
    cost: Optional[str]
    events: int
    priced: int
    unpriced: int
    quantity: str


@dataclass(frozen=True)
class Breakdown:
    dimension: str
    title: str
    rows: List[Row]
    total: Row


def _row(value: Optional[str], label: str, t: Totals) -> Row:
    return Row(
        value=value,
        label=label,
        cost=format_money(t.cost_pico) if t.priced_count else None,
        events=t.event_count,
        priced=t.priced_count,
        unpriced=t.unpriced_count,
        quantity=_quantity(t.quantity_micro),
    )


def _quantity(micro: int) -> str:
    whole, frac = divmod(micro, 10**6)
    return f"{whole:,}" if not frac else f"{whole:,}.{frac:06d}".rstrip("0")


def _sum(parts: Sequence[Totals]) -> Totals:
    total = Totals()
    for part in parts:
        total.add(part)
    return total


def _order(item: Tuple[Tuple[Any, ...], Totals]) -> Tuple[Any, ...]:
    """Most expensive first, groups with nothing priced after, then by value (none last)."""
    key, t = item
    return (t.priced_count == 0, -t.cost_pico, key[0] is None, key[0] or "")


def _labels(
    conn: Connection, tenant_id: int, dimension: str, values: Sequence[Optional[str]]
) -> Dict[str, str]:
    """End users are stored by internal id: show their external id (and name); subscriptions their plan."""
    wanted = [v for v in values if v is not None]
    if dimension == "subscription_id":  # the id tells two subscriptions on one plan apart
        return {sid: f"{plan} ({sid})" for sid, plan in _plans(conn, tenant_id, wanted).items()}
    if dimension != "end_user_id" or not wanted:
        return {}
    rows = conn.execute(
        select(end_users.c.id, end_users.c.external_id, end_users.c.name).where(
            end_users.c.tenant_id == tenant_id, end_users.c.id.in_(wanted)
        )
    )
    return {r.id: r.external_id + (f" ({r.name})" if r.name else "") for r in rows}


def _plans(conn: Connection, tenant_id: int, ids: Sequence[Optional[str]]) -> Dict[str, str]:
    """Subscription id -> its plan id."""
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = conn.execute(
        select(subscriptions.c.id, subscriptions.c.plan_id).where(
            subscriptions.c.tenant_id == tenant_id, subscriptions.c.id.in_(wanted)
        )
    )
    return {r.id: r.plan_id for r in rows}


def _label(value: Optional[str], labels: Mapping[str, str]) -> str:
    return "(none)" if value is None else labels.get(value, value)


def breakdown(
    conn: Connection, tenant_id: int, dimension: str, title: str, span: Span, filters: Mapping[str, str]
) -> Breakdown:
    rows = totals(conn, tenant_id, filters=filters, group_by=(dimension,), start_us=span[0], end_us=span[1])
    ordered = sorted(rows.items(), key=_order)
    labels = _labels(conn, tenant_id, dimension, [key[0] for key, _ in ordered])
    return Breakdown(
        dimension=dimension,
        title=title,
        rows=[_row(key[0], _label(key[0], labels), t) for key, t in ordered],
        total=_row(None, "Total", _sum(list(rows.values()))),
    )


def figures(conn: Connection, tenant_id: int, span: Span, filters: Mapping[str, str]) -> Row:
    """The range's totals (the API's summary ``totalCost`` / counts)."""
    rows = totals(conn, tenant_id, filters=filters, start_us=span[0], end_us=span[1])
    return _row(None, "Total", _sum(list(rows.values())))


@dataclass
class Series:
    """Cost over time, stacked: per bucket (hour or day number) and per stack value, exact pico-dollars."""

    bucket: str  # "hour" or "day"
    buckets: List[int]
    labels: List[str]  # one per bucket
    stacks: List[Tuple[str, Dict[int, int]]]  # (stack label, bucket -> pico), most expensive first
    unpriced: Dict[int, int] = field(default_factory=dict)  # bucket -> unpriced event count


MAX_STACKS = 8  # the rest draws as "other"


def over_time(
    conn: Connection,
    tenant_id: int,
    span: Span,
    bucket: str,
    stack: str,
    filters: Mapping[str, str],
) -> Series:
    size = HOUR_US if bucket == "hour" else DAY_US
    rows = totals(
        conn, tenant_id, filters=filters, group_by=(bucket, stack), start_us=span[0], end_us=span[1]
    )
    first, last = span[0] // size, (span[1] - 1) // size
    buckets = list(range(first, last + 1))
    by_stack: Dict[Optional[str], Dict[int, int]] = {}
    spent: Dict[Optional[str], int] = {}
    unpriced: Dict[int, int] = {}
    for (number, value), t in rows.items():
        if t.priced_count:
            by_stack.setdefault(value, {})[number] = by_stack.get(value, {}).get(number, 0) + t.cost_pico
            spent[value] = spent.get(value, 0) + t.cost_pico
        if t.unpriced_count:
            unpriced[number] = unpriced.get(number, 0) + t.unpriced_count
    order = sorted(by_stack, key=lambda v: (-spent[v], v is None, v or ""))
    labels = _labels(conn, tenant_id, stack, order)
    stacks = [(_label(v, labels), by_stack[v]) for v in order[:MAX_STACKS]]
    if len(order) > MAX_STACKS:
        other: Dict[int, int] = {}
        for v in order[MAX_STACKS:]:
            for number, pico in by_stack[v].items():
                other[number] = other.get(number, 0) + pico
        stacks.append(("other", other))
    if bucket == "hour":
        names = [format_ts(n * size)[:13].replace("T", " ") + ":00" for n in buckets]
    else:
        names = [format_date(n * size) for n in buckets]
    return Series(bucket=bucket, buckets=buckets, labels=names, stacks=stacks, unpriced=unpriced)


@dataclass(frozen=True)
class EventRow:
    id: str
    timestamp: str
    metric: str
    quantity: str
    cost: Optional[str]
    model: Optional[str]
    agent: Optional[str]
    workflow: Optional[str]
    end_user: Optional[str]
    subscription: Optional[str]
    plan: Optional[str]  # the subscription's plan, shown (the id is in the cell's title)


_ev = usage_events.c


def events_page(
    conn: Connection, tenant_id: int, span: Span, filters: Mapping[str, str], limit: int, offset: int
) -> List[EventRow]:
    """The events behind a figure, by (timestamp, id): the API's ``GET /v1/usage/events`` order."""
    query = (
        select(
            _ev.public_id,
            _ev.ts_us,
            _ev.metric_name,
            _ev.quantity_micro,
            _ev.cost_pico,
            _ev.model,
            _ev.agent_id,
            _ev.workflow_id,
            _ev.end_user_id,
            _ev.subscription_id,
        )
        .where(_ev.tenant_id == tenant_id, _ev.ts_us >= span[0], _ev.ts_us < span[1])
        .where(*[_ev[k] == v for k, v in filters.items()])
        .order_by(_ev.ts_us, _ev.id)
        .limit(limit)
        .offset(offset)
    )
    rows = list(conn.execute(query))
    labels = _labels(conn, tenant_id, "end_user_id", [r.end_user_id for r in rows])
    plans = _plans(conn, tenant_id, [r.subscription_id for r in rows])
    return [
        EventRow(
            id=r.public_id,
            timestamp=format_ts(r.ts_us)[:19].replace("T", " "),  # to the second; the API has the rest
            metric=r.metric_name,
            quantity=_quantity(r.quantity_micro),
            cost=None if r.cost_pico is None else format_money(r.cost_pico),
            model=r.model,
            agent=r.agent_id,
            workflow=r.workflow_id,
            end_user=None if r.end_user_id is None else labels.get(r.end_user_id, r.end_user_id),
            subscription=r.subscription_id,
            plan=None if r.subscription_id is None else plans.get(r.subscription_id, r.subscription_id),
        )
        for r in rows
    ]


def end_user_info(conn: Connection, tenant_id: int, end_user_id: str) -> Optional[Dict[str, Any]]:
    """The tenant's end user by internal or external id (another tenant's is None, like an unknown one)."""
    row = conn.execute(
        select(end_users.c.id, end_users.c.external_id, end_users.c.name, end_users.c.email).where(
            end_users.c.tenant_id == tenant_id,
            (end_users.c.id == end_user_id) | (end_users.c.external_id == end_user_id),
        )
    ).first()
    return None if row is None else dict(row._mapping)
