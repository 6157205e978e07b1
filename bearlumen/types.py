"""Typed dicts for every request and response of the Bear Lumen API (docs/api.md).

Results are plain ``dict`` objects at runtime (``result['endUser']['id']``); these types only tell your IDE
and type checker which keys to expect. Request bodies and parameters are snake_case, response keys are
camelCase (except ``recorded_count`` / ``skipped_count`` of a batch answer), as the service speaks them.

Money is a decimal string (``"4.5"``), or ``None`` when unknown (no priced event): never a float.

Imported by ``import bearlumen``: this module must stay cheap (no httpx, no typing_extensions on 3.11+).
"""

import sys
from typing import Any, Dict, List, Optional, Union

if sys.version_info >= (3, 11):
    from typing import Literal, NotRequired, TypedDict
else:  # pragma: no cover - Python 3.9 / 3.10
    from typing_extensions import Literal, NotRequired, TypedDict

__all__ = [
    "AggregationGroupBy",
    "AttributionValuesResponse",
    "BillingCycle",
    "CostBreakdownItem",
    "CostBreakdownResponse",
    "EndUser",
    "EndUserCreateParams",
    "EndUserListResponse",
    "EndUserResponse",
    "EndUserStatus",
    "EndUserUpdateParams",
    "ErrorBody",
    "ErrorDetail",
    "ErrorItem",
    "Metadata",
    "Subscription",
    "SubscriptionCreateParams",
    "SubscriptionListResponse",
    "SubscriptionResponse",
    "SubscriptionStatus",
    "SubscriptionUpdateParams",
    "UsageAggregationItem",
    "UsageAggregationResponse",
    "UsageBatchResponse",
    "UsageBatchResult",
    "UsageEvent",
    "UsageEventListResponse",
    "UsageFilters",
    "UsageMetricSummary",
    "UsageRecordInput",
    "UsageRecordResponse",
    "UsageSummaryResponse",
]

Metadata = Dict[str, Any]
"""Free-form JSON object attached to end users, subscriptions and usage events."""

EndUserStatus = Literal["ACTIVE", "DEACTIVATED"]
SubscriptionStatus = Literal["ACTIVE", "CANCELED"]
BillingCycle = Literal["monthly", "quarterly", "yearly"]
AggregationGroupBy = Literal[
    "metric_name", "event_type", "agent_id", "workflow_id", "model", "end_user_id", "subscription_id", "day"
]

# --------------------------------------------------------------------------------------------- errors


class ErrorItem(TypedDict):
    """One invalid event of a rejected batch (``invalid_batch``)."""

    index: int
    code: str
    message: str
    param: NotRequired[Optional[str]]


class ErrorDetail(TypedDict):
    code: str
    message: str
    param: Optional[str]
    requestId: str
    errors: NotRequired[List[ErrorItem]]


class ErrorBody(TypedDict):
    """The body of every error answer."""

    error: ErrorDetail


# ------------------------------------------------------------------------------------------ end users


class EndUser(TypedDict):
    """A customer of your product whose usage you meter."""

    id: str
    externalId: str
    email: Optional[str]
    name: Optional[str]
    metadata: Metadata
    status: EndUserStatus
    createdAt: str
    updatedAt: str
    deactivatedAt: Optional[str]


class EndUserResponse(TypedDict):
    """Answer of ``end_users.create / retrieve / update / deactivate / reactivate``."""

    endUser: EndUser


class EndUserListResponse(TypedDict):
    """Answer of ``end_users.list`` (oldest first)."""

    endUsers: List[EndUser]
    total: int
    activeCount: int  # the tenant's end users per status, whatever the ``status`` filter
    deactivatedCount: int
    limit: int
    offset: int


class EndUserCreateParams(TypedDict):
    external_id: str
    email: NotRequired[Optional[str]]
    name: NotRequired[Optional[str]]
    metadata: NotRequired[Optional[Metadata]]


class EndUserUpdateParams(TypedDict, total=False):
    external_id: str
    email: Optional[str]
    name: Optional[str]
    metadata: Metadata


# -------------------------------------------------------------------------------------- subscriptions


class Subscription(TypedDict):
    """A subscription of an organization (optionally tied to an end user) to a plan."""

    id: str
    organizationId: str
    planId: str
    billingCycle: BillingCycle
    status: SubscriptionStatus
    startDate: str
    endDate: Optional[str]
    endUserId: Optional[str]
    metadata: Metadata
    createdAt: str
    updatedAt: str
    canceledAt: Optional[str]


class SubscriptionResponse(TypedDict):
    """Answer of ``subscriptions.create / retrieve / update / cancel``."""

    subscription: Subscription


class SubscriptionListResponse(TypedDict):
    subscriptions: List[Subscription]
    total: int
    limit: int
    offset: int


class SubscriptionCreateParams(TypedDict):
    organization_id: str
    plan_id: str
    billing_cycle: str
    start_date: str
    end_date: NotRequired[Optional[str]]
    end_user_id: NotRequired[Optional[str]]
    metadata: NotRequired[Optional[Metadata]]


class SubscriptionUpdateParams(TypedDict, total=False):
    organization_id: str
    plan_id: str
    billing_cycle: str
    end_date: Optional[str]
    end_user_id: Optional[str]
    metadata: Metadata


# ---------------------------------------------------------------------------------------------- usage


class UsageRecordInput(TypedDict):
    """One usage event to record (``usage.record`` keyword arguments; one item of ``usage.record_batch``).

    ``timestamp`` may also be a ``datetime`` (naive means UTC) and ``quantity`` a ``Decimal``; the SDK
    serializes them. ``metadata['provider_cost_usd']`` (a number or a decimal string) is the event's cost.
    """

    event_type: str
    metric_name: str
    quantity: Union[int, float]
    idempotency_key: NotRequired[Optional[str]]
    agent_id: NotRequired[Optional[str]]
    workflow_id: NotRequired[Optional[str]]
    subscription_id: NotRequired[Optional[str]]
    end_user_id: NotRequired[Optional[str]]
    timestamp: NotRequired[Optional[Any]]
    metadata: NotRequired[Optional[Metadata]]


class UsageEvent(TypedDict):
    """A stored usage event."""

    id: str
    eventType: str
    metricName: str
    quantity: Union[int, float]
    idempotencyKey: str
    agentId: Optional[str]
    workflowId: Optional[str]
    subscriptionId: Optional[str]
    endUserId: Optional[str]
    timestamp: str
    receivedAt: str
    providerCostUsd: Optional[str]
    metadata: Metadata


class UsageRecordResponse(TypedDict):
    """Answer of ``usage.record``: ``recorded`` is False for a duplicate (``event`` is the stored one)."""

    recorded: bool
    idempotencyKey: str
    event: UsageEvent


class UsageBatchResult(TypedDict):
    index: int
    idempotencyKey: str
    recorded: bool
    id: str


class UsageBatchResponse(TypedDict):
    """Answer of ``usage.record_batch``."""

    recorded_count: int
    skipped_count: int
    results: List[UsageBatchResult]


class UsageFilters(TypedDict, total=False):
    """Filters of ``usage.query / aggregation / summary`` (``start_date <= timestamp < end_date``)."""

    subscription_id: str
    end_user_id: str
    metric_name: str
    event_type: str
    agent_id: str
    workflow_id: str
    start_date: str
    end_date: str


class UsageEventListResponse(TypedDict):
    """Answer of ``usage.query`` (by timestamp, then id). ``nextCursor``: pass it as ``cursor`` for the
    next page (fast at any depth, unlike a large ``offset``); None on the last page."""

    events: List[UsageEvent]
    total: int
    limit: int
    offset: int
    nextCursor: Optional[str]


class UsageAggregationItem(TypedDict):
    """One metric (and group, unless grouped by metric name)."""

    metricName: str
    group: NotRequired[Optional[str]]
    totalQuantity: Union[int, float]
    eventCount: int
    totalCost: Optional[str]
    pricedEventCount: int
    unpricedEventCount: int


class UsageAggregationResponse(TypedDict):
    """Answer of ``usage.aggregation``."""

    items: List[UsageAggregationItem]
    totalCost: Optional[str]
    groupBy: str


class UsageMetricSummary(TypedDict):
    metricName: str
    totalQuantity: Union[int, float]
    eventCount: int
    totalCost: Optional[str]


class UsageSummaryResponse(TypedDict):
    """Answer of ``usage.summary``."""

    totalEvents: int
    totalQuantity: Union[int, float]
    totalCost: Optional[str]
    pricedEventCount: int
    unpricedEventCount: int
    metrics: List[UsageMetricSummary]


# ----------------------------------------------------------------------------------- cost attribution


class CostBreakdownItem(TypedDict):
    """One agent (workflow); ``attributionValue`` None gathers the events without one."""

    attributionValue: Optional[str]
    totalCost: Optional[str]
    eventCount: int
    pricedEventCount: int
    unpricedEventCount: int
    totalQuantity: Union[int, float]


class CostBreakdownResponse(TypedDict):
    """Answer of ``cost_attribution.by_agent / by_workflow`` (items by cost descending)."""

    dimension: Literal["agent", "workflow"]
    items: List[CostBreakdownItem]
    totalCost: Optional[str]
    eventCount: int
    unpricedEventCount: int
    startDate: str
    endDate: str


class AttributionValuesResponse(TypedDict):
    """Answer of ``cost_attribution.list_agents / list_workflows`` (sorted)."""

    values: List[str]
