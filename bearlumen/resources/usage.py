"""``client.usage``: record usage events (one or a batch) and read them back (events, aggregates, summary).

Every event carries an idempotency key from before its first attempt (``sdk_<uuid4 hex>`` when you give
none), so a retried request never counts an event twice; give your own key (e.g. derived from your
invoice line or the provider's response id) to make your own replays safe too.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Union, cast

from bearlumen.resources._base import (
    AsyncAPIResource,
    DateLike,
    Quantity,
    SyncAPIResource,
    as_event_list,
    check_event,
    date_param,
    prepare_batch,
    prepare_event,
)
from bearlumen.types import (
    AggregationGroupBy,
    Metadata,
    UsageAggregationResponse,
    UsageBatchResponse,
    UsageEventListResponse,
    UsageRecordInput,
    UsageRecordResponse,
    UsageSummaryResponse,
)

__all__ = ["AsyncUsage", "Usage"]

BatchEvents = Sequence[Union[UsageRecordInput, Mapping[str, Any]]]


def _record_body(**fields: Any) -> Dict[str, Any]:
    check_event(fields)
    return prepare_event(fields)


def _own_record(given_key: Optional[str], result: Any) -> UsageRecordResponse:
    """A key the SDK made is unique to this call: if the service already had it, an earlier attempt of
    this very call stored the event (its answer was lost), so this call did record it."""
    if given_key is None and isinstance(result, dict) and result.get("recorded") is False:
        result["recorded"] = True
    return cast(UsageRecordResponse, result)


def _own_batch(events: Sequence[Any], result: Any) -> UsageBatchResponse:
    """The same for a batch: events whose key the SDK made count as recorded by this call."""
    if not isinstance(result, dict) or not isinstance(result.get("results"), list):
        return cast(UsageBatchResponse, result)
    for item in result["results"]:
        index = item.get("index") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < len(events) or item.get("recorded") is not False:
            continue
        given = events[index]
        if isinstance(given, Mapping) and given.get("idempotency_key") is None:
            item["recorded"] = True
            if isinstance(result.get("recorded_count"), int) and isinstance(result.get("skipped_count"), int):
                result["recorded_count"] += 1
                result["skipped_count"] -= 1
    return cast(UsageBatchResponse, result)


def _filters(
    subscription_id: Optional[str],
    end_user_id: Optional[str],
    metric_name: Optional[str],
    event_type: Optional[str],
    agent_id: Optional[str],
    workflow_id: Optional[str],
    start_date: Optional[DateLike],
    end_date: Optional[DateLike],
    **extra: Any,
) -> Dict[str, Any]:
    return {
        "subscription_id": subscription_id,
        "end_user_id": end_user_id,
        "metric_name": metric_name,
        "event_type": event_type,
        "agent_id": agent_id,
        "workflow_id": workflow_id,
        "start_date": date_param(start_date),
        "end_date": date_param(end_date),
        **extra,
    }


class Usage(SyncAPIResource):
    def record(
        self,
        event_type: str,
        metric_name: str,
        quantity: Quantity,
        *,
        idempotency_key: Optional[str] = None,
        agent_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        subscription_id: Optional[str] = None,
        end_user_id: Optional[str] = None,
        timestamp: Optional[DateLike] = None,
        metadata: Optional[Metadata] = None,
    ) -> UsageRecordResponse:
        """Record one usage event. ``result['recorded']`` is False when the key was already recorded.

        ``metadata['provider_cost_usd']`` (a number, Decimal or decimal string) is the event's cost;
        ``timestamp`` defaults to now (a naive datetime is read as UTC). Without ``idempotency_key``, the
        SDK makes one (``sdk_<uuid4 hex>``) before the first attempt, so retries cannot count it twice,
        and ``recorded`` is True even if an earlier, lost attempt of this call stored it.
        """
        body = _record_body(
            event_type=event_type,
            metric_name=metric_name,
            quantity=quantity,
            idempotency_key=idempotency_key,
            agent_id=agent_id,
            workflow_id=workflow_id,
            subscription_id=subscription_id,
            end_user_id=end_user_id,
            timestamp=timestamp,
            metadata=metadata,
        )
        return _own_record(idempotency_key, self._http.request("POST", "/v1/usage/events", body=body))

    def record_batch(self, events: BatchEvents) -> UsageBatchResponse:
        """Record up to 1000 events at once, all or nothing (an invalid event rejects the whole batch).

        Answers ``recorded_count``, ``skipped_count`` (keys already recorded, or repeated in the batch)
        and one ``results`` item per event, in order. An event without a key gets one from the SDK and
        counts as recorded even when an earlier, lost attempt of this call stored it.
        """
        events = as_event_list(events)
        body = {"events": prepare_batch(events)}
        return _own_batch(events, self._http.request("POST", "/v1/usage/events/batch", body=body))

    def query(
        self,
        subscription_id: Optional[str] = None,
        *,
        end_user_id: Optional[str] = None,
        metric_name: Optional[str] = None,
        event_type: Optional[str] = None,
        agent_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        start_date: Optional[DateLike] = None,
        end_date: Optional[DateLike] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> UsageEventListResponse:
        """Usage events matching the filters (``start_date <= timestamp < end_date``), by timestamp.

        Page with ``cursor=previous["nextCursor"]`` (fast at any depth) or with ``offset``."""
        params = _filters(
            subscription_id,
            end_user_id,
            metric_name,
            event_type,
            agent_id,
            workflow_id,
            start_date,
            end_date,
            limit=limit,
            offset=offset,
            cursor=cursor,
        )
        return cast(UsageEventListResponse, self._http.request("GET", "/v1/usage/events", params=params))

    def aggregation(
        self,
        subscription_id: Optional[str] = None,
        *,
        end_user_id: Optional[str] = None,
        metric_name: Optional[str] = None,
        event_type: Optional[str] = None,
        agent_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        start_date: Optional[DateLike] = None,
        end_date: Optional[DateLike] = None,
        group_by: Optional[AggregationGroupBy] = None,
    ) -> UsageAggregationResponse:
        """Totals per metric (or per ``group_by``: agent_id, workflow_id, model, end_user_id, ...)."""
        params = _filters(
            subscription_id,
            end_user_id,
            metric_name,
            event_type,
            agent_id,
            workflow_id,
            start_date,
            end_date,
            group_by=group_by,
        )
        return cast(
            UsageAggregationResponse, self._http.request("GET", "/v1/usage/aggregation", params=params)
        )

    def summary(
        self,
        subscription_id: Optional[str] = None,
        *,
        end_user_id: Optional[str] = None,
        metric_name: Optional[str] = None,
        event_type: Optional[str] = None,
        agent_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        start_date: Optional[DateLike] = None,
        end_date: Optional[DateLike] = None,
    ) -> UsageSummaryResponse:
        """Event count, quantity and cost over the filters, with a line per metric."""
        params = _filters(
            subscription_id, end_user_id, metric_name, event_type, agent_id, workflow_id, start_date, end_date
        )
        return cast(UsageSummaryResponse, self._http.request("GET", "/v1/usage/summary", params=params))


class AsyncUsage(AsyncAPIResource):
    async def record(
        self,
        event_type: str,
        metric_name: str,
        quantity: Quantity,
        *,
        idempotency_key: Optional[str] = None,
        agent_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        subscription_id: Optional[str] = None,
        end_user_id: Optional[str] = None,
        timestamp: Optional[DateLike] = None,
        metadata: Optional[Metadata] = None,
    ) -> UsageRecordResponse:
        """Record one usage event. ``result['recorded']`` is False when the key was already recorded.

        ``metadata['provider_cost_usd']`` (a number, Decimal or decimal string) is the event's cost;
        ``timestamp`` defaults to now (a naive datetime is read as UTC). Without ``idempotency_key``, the
        SDK makes one (``sdk_<uuid4 hex>``) before the first attempt, so retries cannot count it twice,
        and ``recorded`` is True even if an earlier, lost attempt of this call stored it.
        """
        body = _record_body(
            event_type=event_type,
            metric_name=metric_name,
            quantity=quantity,
            idempotency_key=idempotency_key,
            agent_id=agent_id,
            workflow_id=workflow_id,
            subscription_id=subscription_id,
            end_user_id=end_user_id,
            timestamp=timestamp,
            metadata=metadata,
        )
        return _own_record(idempotency_key, await self._http.request("POST", "/v1/usage/events", body=body))

    async def record_batch(self, events: BatchEvents) -> UsageBatchResponse:
        """Record up to 1000 events at once, all or nothing (an invalid event rejects the whole batch).

        Answers ``recorded_count``, ``skipped_count`` (keys already recorded, or repeated in the batch)
        and one ``results`` item per event, in order. An event without a key gets one from the SDK and
        counts as recorded even when an earlier, lost attempt of this call stored it.
        """
        events = as_event_list(events)
        body = {"events": prepare_batch(events)}
        return _own_batch(events, await self._http.request("POST", "/v1/usage/events/batch", body=body))

    async def query(
        self,
        subscription_id: Optional[str] = None,
        *,
        end_user_id: Optional[str] = None,
        metric_name: Optional[str] = None,
        event_type: Optional[str] = None,
        agent_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        start_date: Optional[DateLike] = None,
        end_date: Optional[DateLike] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> UsageEventListResponse:
        """Usage events matching the filters (``start_date <= timestamp < end_date``), by timestamp.

        Page with ``cursor=previous["nextCursor"]`` (fast at any depth) or with ``offset``."""
        params = _filters(
            subscription_id,
            end_user_id,
            metric_name,
            event_type,
            agent_id,
            workflow_id,
            start_date,
            end_date,
            limit=limit,
            offset=offset,
            cursor=cursor,
        )
        return cast(
            UsageEventListResponse, await self._http.request("GET", "/v1/usage/events", params=params)
        )

    async def aggregation(
        self,
        subscription_id: Optional[str] = None,
        *,
        end_user_id: Optional[str] = None,
        metric_name: Optional[str] = None,
        event_type: Optional[str] = None,
        agent_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        start_date: Optional[DateLike] = None,
        end_date: Optional[DateLike] = None,
        group_by: Optional[AggregationGroupBy] = None,
    ) -> UsageAggregationResponse:
        """Totals per metric (or per ``group_by``: agent_id, workflow_id, model, end_user_id, ...)."""
        params = _filters(
            subscription_id,
            end_user_id,
            metric_name,
            event_type,
            agent_id,
            workflow_id,
            start_date,
            end_date,
            group_by=group_by,
        )
        return cast(
            UsageAggregationResponse, await self._http.request("GET", "/v1/usage/aggregation", params=params)
        )

    async def summary(
        self,
        subscription_id: Optional[str] = None,
        *,
        end_user_id: Optional[str] = None,
        metric_name: Optional[str] = None,
        event_type: Optional[str] = None,
        agent_id: Optional[str] = None,
        workflow_id: Optional[str] = None,
        start_date: Optional[DateLike] = None,
        end_date: Optional[DateLike] = None,
    ) -> UsageSummaryResponse:
        """Event count, quantity and cost over the filters, with a line per metric."""
        params = _filters(
            subscription_id, end_user_id, metric_name, event_type, agent_id, workflow_id, start_date, end_date
        )
        return cast(UsageSummaryResponse, await self._http.request("GET", "/v1/usage/summary", params=params))
