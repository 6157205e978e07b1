"""Aggregation, summary and cost attribution: totals shaped into the answers of docs/api.md.

Every ``totalCost`` at the top is the exact sum of the items' ``totalCost`` (both come from the same integer
pico-dollar sums); a group without a priced event has ``totalCost: null`` and says how many were unpriced.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

from sqlalchemy.engine import Connection

from bearlumen.server.money import money_or_none, quantity_json
from bearlumen.server.timefmt import DAY_US, format_date, format_ts
from bearlumen.server.usage.totals import Totals, totals

__all__ = ["aggregation", "attribution", "attribution_values", "summary"]

Range = Tuple[Optional[int], Optional[int]]


def _measures(t: Totals) -> Dict[str, Any]:
    return {
        "totalQuantity": quantity_json(t.quantity_micro),
        "eventCount": t.event_count,
        "totalCost": money_or_none(t.cost_pico, t.priced_count),
        "pricedEventCount": t.priced_count,
        "unpricedEventCount": t.unpriced_count,
    }


def _sum(values: List[Totals]) -> Totals:
    total = Totals()
    for value in values:
        total.add(value)
    return total


def _none_last(value: Optional[Any]) -> Tuple[bool, Any]:
    return (value is None, "" if value is None else value)


def aggregation(
    conn: Connection, tenant_id: int, filters: Mapping[str, str], span: Range, group_by: str
) -> Dict[str, Any]:
    """Per metric (and per ``group_by`` value unless it is ``metric_name``), sorted by metric then group."""
    grouping = ("metric_name",) if group_by == "metric_name" else ("metric_name", group_by)
    rows = totals(conn, tenant_id, filters=filters, group_by=grouping, start_us=span[0], end_us=span[1])
    items = []
    for key in sorted(rows, key=lambda k: (k[0], *_none_last(k[1] if len(k) > 1 else None))):
        item: Dict[str, Any] = {"metricName": key[0]}
        if len(key) > 1:
            item["group"] = format_date(key[1] * DAY_US) if group_by == "day" else key[1]
        item.update(_measures(rows[key]))
        items.append(item)
    total = _sum(list(rows.values()))
    return {
        "items": items,
        "totalCost": money_or_none(total.cost_pico, total.priced_count),
        "eventCount": total.event_count,
        "pricedEventCount": total.priced_count,
        "unpricedEventCount": total.unpriced_count,
        "groupBy": group_by,
    }


def summary(conn: Connection, tenant_id: int, filters: Mapping[str, str], span: Range) -> Dict[str, Any]:
    rows = totals(
        conn, tenant_id, filters=filters, group_by=("metric_name",), start_us=span[0], end_us=span[1]
    )
    total = _sum(list(rows.values()))
    metrics = [
        {
            "metricName": metric,
            "totalQuantity": quantity_json(rows[(metric,)].quantity_micro),
            "eventCount": rows[(metric,)].event_count,
            "totalCost": money_or_none(rows[(metric,)].cost_pico, rows[(metric,)].priced_count),
            "pricedEventCount": rows[(metric,)].priced_count,
            "unpricedEventCount": rows[(metric,)].unpriced_count,
        }
        for (metric,) in sorted(rows)
    ]
    return {
        "totalEvents": total.event_count,
        "totalQuantity": quantity_json(total.quantity_micro),
        "totalCost": money_or_none(total.cost_pico, total.priced_count),
        "pricedEventCount": total.priced_count,
        "unpricedEventCount": total.unpriced_count,
        "metrics": metrics,
    }


def attribution(conn: Connection, tenant_id: int, dimension: str, span: Tuple[int, int]) -> Dict[str, Any]:
    """Cost by agent or workflow: items by cost descending (unpriced last), then value (null last)."""
    column = f"{dimension}_id"
    rows = totals(conn, tenant_id, filters={}, group_by=(column,), start_us=span[0], end_us=span[1])

    def order(key: Tuple[Any, ...]) -> Tuple[Any, ...]:
        t = rows[key]
        return (t.priced_count == 0, -t.cost_pico, *_none_last(key[0]))

    items = [{"attributionValue": key[0], **_measures(rows[key])} for key in sorted(rows, key=order)]
    total = _sum(list(rows.values()))
    return {
        "dimension": dimension,
        "items": items,
        "totalCost": money_or_none(total.cost_pico, total.priced_count),
        "eventCount": total.event_count,
        "pricedEventCount": total.priced_count,
        "unpricedEventCount": total.unpriced_count,
        "totalQuantity": quantity_json(total.quantity_micro),
        "startDate": format_ts(span[0]),
        "endDate": format_ts(span[1]),
    }


def attribution_values(conn: Connection, tenant_id: int, dimension: str, span: Tuple[int, int]) -> List[str]:
    """Distinct non-null agent (workflow) ids with events in the range, sorted."""
    column = f"{dimension}_id"
    rows = totals(conn, tenant_id, filters={}, group_by=(column,), start_us=span[0], end_us=span[1])
    return sorted(key[0] for key in rows if key[0] is not None)
