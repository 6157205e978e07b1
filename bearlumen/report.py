"""The cost report: spend by agent and by workflow over a time range, as plain text.

    bearlumen report --since 2024-01-01 --until 2024-02-01

Costs are summed by the service in exact decimals; this module only lays them out.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Sequence

if TYPE_CHECKING:
    from bearlumen._client import Client


def default_range(now: Optional[datetime] = None) -> tuple[str, str]:
    """The last 30 days up to one minute from now (the end is exclusive)."""
    end = (now or datetime.now(timezone.utc)) + timedelta(minutes=1)
    start = end - timedelta(days=30, minutes=1)
    return _iso(start), _iso(end)


def render_report(client: Client, start_date: str, end_date: str) -> str:
    """Cost by agent and by workflow between `start_date` (inclusive) and `end_date` (exclusive)."""
    by_agent = client.cost_attribution.by_agent(start_date=start_date, end_date=end_date)
    by_workflow = client.cost_attribution.by_workflow(start_date=start_date, end_date=end_date)
    lines = [f"Bear Lumen cost report, {start_date} to {end_date}", ""]
    lines += _table("Cost by agent", "agent", by_agent)
    lines.append("")
    lines += _table("Cost by workflow", "workflow", by_workflow)
    return "\n".join(lines)


def _table(title: str, dimension: str, breakdown: Mapping[str, Any]) -> List[str]:
    rows = [
        (
            item.get("attributionValue") or f"(no {dimension})",
            _money(item.get("totalCost")),
            str(item.get("eventCount", "")),
            str(item.get("unpricedEventCount", 0)),
        )
        for item in breakdown.get("items", [])
    ]
    rows.append(
        (
            "TOTAL",
            _money(breakdown.get("totalCost")),
            str(breakdown.get("eventCount", "")),
            str(breakdown.get("unpricedEventCount", 0)),
        )
    )
    return [title, *_columns((dimension, "cost (USD)", "events", "unpriced"), rows)]


def _columns(header: Sequence[str], rows: Sequence[Sequence[str]]) -> List[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])]
        return "  ".join([first, *rest])

    separator = "  ".join("-" * width for width in widths)
    return [line(header), separator, *(line(row) for row in rows)]


def _money(value: Any) -> str:
    return "unpriced" if value is None else f"${value}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
