"""`bearlumen reprice`: recompute stored costs from the stored token buckets, and report what would change.

    bearlumen reprice --since 2026-11-01 --until 2026-12-01 [--tenant NAME] [--apply]

Every usage event the SDK builds keeps, in its metadata, everything its cost was computed from: the token
buckets (`input_tokens`, `cache_read_tokens`, ..., `input_audio_tokens`, `web_searches`), the billed
`model`, the `provider`, the served `tier`, an OpenAI-compatible host's `api_url` and the call's
timestamp. This command prices those facts again with the price data installed now (and the same user
prices: `$BEARLUMEN_PRICING_FILE`), compares with the stored `provider_cost_usd` to the pico-dollar (the
precision the service stores), and lists every event whose cost would change. A bill can so be checked
independently of the code that produced it, and a genai-prices upgrade can be audited before it is
trusted.

Nothing is written unless `--apply` is given: then each changed event gets the new cost and pricing
fields, and the hourly rollups are corrected by the difference, in one transaction.

Events without buckets (recorded through the API by other code, not by an integration) are counted as
skipped, never repriced; so are events whose cost the caller stated (`bearlumen.track(..., cost_usd=...)`,
`pricing_status: "caller_price"`): that figure is the bill's, not a price-table lookup.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import orjson

from bearlumen.metering.event import EVENT_TYPE, PRICED_BY_CALLER, _plain
from bearlumen.metering.pricing import UNPRICED, Price, PriceBook
from bearlumen.metering.record import TokenUsage

__all__ = ["Difference", "RepriceResult", "render", "reprice"]


@dataclass(frozen=True)
class _Stored:
    """The columns of one stored event that repricing reads (and the rollups are keyed by)."""

    id: int
    public_id: str
    tenant_id: int
    ts_us: int
    cost_pico: Optional[int]
    metadata: Dict[str, Any]
    model: Optional[str]
    agent_id: Optional[str]
    workflow_id: Optional[str]
    end_user_id: Optional[str]
    subscription_id: Optional[str]
    metric_name: str
    event_type: str
    quantity_micro: int


@dataclass(frozen=True)
class Difference:
    """One event whose recomputed cost differs from the stored one (None: unpriced)."""

    event_id: str
    timestamp_us: int
    model: Optional[str]
    stored_pico: Optional[int]
    recomputed_pico: Optional[int]
    price: Price


@dataclass
class RepriceResult:
    checked: int = 0
    skipped: int = 0  # events without stored buckets
    caller_priced: int = 0  # events whose cost the caller stated: kept as stated
    stored_total_pico: int = 0
    recomputed_total_pico: int = 0
    differences: List[Difference] = None  # type: ignore[assignment]
    applied: bool = False

    def __post_init__(self) -> None:
        if self.differences is None:
            self.differences = []


def reprice(
    db: Any,
    start_us: int,
    end_us: int,
    *,
    tenant: Optional[str] = None,
    prices: Optional[PriceBook] = None,
    apply: bool = False,
) -> RepriceResult:
    """Reprice the events of `db` (a `bearlumen.server.db.Database`) with timestamps in [start, end)."""
    book = prices if prices is not None else PriceBook.from_config()
    result = RepriceResult()
    changed: List[Tuple[_Stored, Optional[int], Price]] = []
    for stored in db.read(lambda conn: list(_events(conn, start_us, end_us, tenant))):
        usage = TokenUsage.from_metadata(stored.metadata)
        if usage is None or stored.event_type != EVENT_TYPE:
            result.skipped += 1
            continue
        if stored.metadata.get("pricing_status") == PRICED_BY_CALLER:
            result.caller_priced += 1
            continue
        result.checked += 1
        price = _price(book, stored.metadata, usage, stored.ts_us)
        recomputed = _pico(price)
        result.stored_total_pico += stored.cost_pico or 0
        result.recomputed_total_pico += recomputed or 0
        if recomputed != stored.cost_pico:
            model = stored.metadata.get("model")
            result.differences.append(
                Difference(stored.public_id, stored.ts_us, model, stored.cost_pico, recomputed, price)
            )
            changed.append((stored, recomputed, price))
    if apply and changed:
        db.write(lambda conn: _apply(conn, changed))
        result.applied = True
    return result


def _price(book: PriceBook, metadata: Dict[str, Any], usage: TokenUsage, ts_us: int) -> Price:
    facts: Dict[str, Any] = {}
    for name in ("tier", "api_url"):
        if isinstance(metadata.get(name), str):
            facts[name] = metadata[name]
    provider = metadata.get("provider")
    model = metadata.get("model")
    return book.price(
        provider if isinstance(provider, str) else "unknown",
        model if isinstance(model, str) else None,
        usage,
        ts_us / 1_000_000,
        **facts,
    )


def _pico(price: Price) -> Optional[int]:
    from bearlumen.server.money import parse_cost

    if price.cost_usd is None or price.status == UNPRICED:
        return None
    return parse_cost(_plain(price.cost_usd))


def _events(conn: Any, start_us: int, end_us: int, tenant: Optional[str]) -> Iterator[_Stored]:
    from sqlalchemy import select

    from bearlumen.server.schema import tenants, usage_events

    ev = usage_events.c
    query = select(usage_events).where(ev.ts_us >= start_us, ev.ts_us < end_us)
    if tenant is not None:
        query = query.where(
            ev.tenant_id == select(tenants.c.id).where(tenants.c.name == tenant).scalar_subquery()
        )
    for row in conn.execute(query.order_by(ev.ts_us, ev.id)):
        try:
            metadata = orjson.loads(row.metadata)
        except orjson.JSONDecodeError:
            metadata = {}
        yield _Stored(
            id=row.id,
            public_id=row.public_id,
            tenant_id=row.tenant_id,
            ts_us=row.ts_us,
            cost_pico=row.cost_pico,
            metadata=metadata if isinstance(metadata, dict) else {},
            model=row.model,
            agent_id=row.agent_id,
            workflow_id=row.workflow_id,
            end_user_id=row.end_user_id,
            subscription_id=row.subscription_id,
            metric_name=row.metric_name,
            event_type=row.event_type,
            quantity_micro=row.quantity_micro,
        )


def _apply(conn: Any, changed: List[Tuple[_Stored, Optional[int], Price]]) -> None:
    """New costs on the events, and the rollups moved by the difference (new minus old)."""
    from sqlalchemy import update

    from bearlumen.server.money import format_money
    from bearlumen.server.schema import usage_events
    from bearlumen.server.usage.bulk import upsert_rollup
    from bearlumen.server.usage.rollups import rollup_rows

    by_tenant: Dict[int, List[Tuple[_Stored, Optional[int]]]] = {}
    for stored, recomputed, price in changed:
        metadata = dict(stored.metadata)
        metadata.pop("provider_cost_usd", None)
        if recomputed is not None:
            metadata["provider_cost_usd"] = format_money(recomputed)
        metadata.update(
            pricing_status=price.status, pricing_source=price.source, pricing_model=price.model_ref
        )
        conn.execute(
            update(usage_events)
            .where(usage_events.c.id == stored.id)
            .values(cost_pico=recomputed, metadata=orjson.dumps(metadata).decode())
        )
        by_tenant.setdefault(stored.tenant_id, []).append((stored, recomputed))
    for tenant_id, events in by_tenant.items():
        old = rollup_rows(tenant_id, [_as_event(stored, stored.cost_pico) for stored, _ in events])
        new = rollup_rows(tenant_id, [_as_event(stored, cost) for stored, cost in events])
        for (table, old_rows), (_, new_rows) in zip(old, new):
            upsert_rollup(conn, table, _deltas(old_rows, new_rows))


def _as_event(stored: _Stored, cost_pico: Optional[int]) -> Any:
    """The stored event as the EventIn tuple ``rollup_rows`` reads (it transposes EventIn fields)."""
    from bearlumen.server.usage.validate import EventIn

    return EventIn(
        idempotency_key="",
        event_type=stored.event_type,
        metric_name=stored.metric_name,
        quantity_micro=stored.quantity_micro,
        cost_pico=cost_pico,
        agent_id=stored.agent_id,
        workflow_id=stored.workflow_id,
        subscription_id=stored.subscription_id,
        end_user_id=stored.end_user_id,
        model=stored.model,
        ts_us=stored.ts_us,
        metadata="",
    )


def _deltas(old_rows: List[Tuple[Any, ...]], new_rows: List[Tuple[Any, ...]]) -> List[Tuple[Any, ...]]:
    """Rows whose measures are new minus old, per rollup key.

    A rollup row ends with ``ROLLUP_MEASURES``: count, priced, cost and quantity below ``LIMB``, then their
    carries. The difference is taken on whole sums and split again with floor division, so a negative
    difference has its low part in ``[0, LIMB)`` and the upsert's carry arithmetic stays exact."""
    from bearlumen.server.money import LIMB

    sums: Dict[Tuple[Any, ...], List[int]] = {}
    for rows, sign in ((new_rows, 1), (old_rows, -1)):
        for row in rows:
            key, (count, priced, cost_lo, qty_lo, cost_hi, qty_hi) = row[:-6], row[-6:]
            whole = (count, priced, cost_lo + cost_hi * LIMB, qty_lo + qty_hi * LIMB)
            total = sums.setdefault(key, [0, 0, 0, 0])
            for i, value in enumerate(whole):
                total[i] += sign * value
    return [
        (*key, count, priced, cost % LIMB, qty % LIMB, cost // LIMB, qty // LIMB)
        for key, (count, priced, cost, qty) in sums.items()
        if any((count, priced, cost, qty))
    ]


def render(result: RepriceResult) -> str:
    """The report: one line per difference, then the totals."""
    from bearlumen.server.money import format_money
    from bearlumen.server.timefmt import format_ts

    def money(pico: Optional[int]) -> str:
        return "unpriced" if pico is None else format_money(pico)

    lines: List[str] = []
    if result.differences:
        lines.append(f"{'EVENT':<40} {'TIMESTAMP':<28} {'MODEL':<40} {'STORED':>16} {'RECOMPUTED':>16}  NOTE")
        for d in result.differences:
            note = d.price.source if d.recomputed_pico is None else ""
            lines.append(
                f"{d.event_id:<40} {format_ts(d.timestamp_us):<28} {d.model or '-':<40} "
                f"{money(d.stored_pico):>16} {money(d.recomputed_pico):>16}  {note}"
            )
    verb = "changed" if result.applied else "would change"
    lines.append(
        f"{result.checked} events repriced, {len(result.differences)} {verb}, {result.skipped} without "
        f"token buckets skipped, {result.caller_priced} priced by the caller kept. "
        f"Stored total {format_money(result.stored_total_pico)} USD, recomputed "
        f"{format_money(result.recomputed_total_pico)} USD."
    )
    if result.differences and not result.applied:
        lines.append("Nothing was changed (use --apply to store the recomputed costs).")
    return "\n".join(lines)
