"""Pydantic models that document the wire format in the OpenAPI schema.

They describe; they do not validate. Bodies are parsed with exact decimals and checked by the validators in
``bearlumen.server`` (which produce the error codes of docs/api.md); ``tests/server/test_openapi.py`` keeps
the documented request fields equal to the accepted ones.
"""

from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Type, Union

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from typing_extensions import Annotated

from bearlumen.server.openapi import ERRORS

__all__ = ["body", "schemas"]

Money = Optional[str]
Quantity = Union[int, float]
_MONEY = "Decimal string, exact to 1e-12 USD; null when no event of the group was priced."
NO_NUL = r"^[^\x00]*$"  # text is stored as is: a NUL character is refused (PostgreSQL cannot store it)
DATE_OR_TIME: Dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "format": "date"}],
    "description": "ISO 8601 date or date-time, between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z "
    "once its offset is applied; no zone means UTC, a bare date means midnight UTC.",
}
Text255 = Annotated[str, Field(min_length=1, max_length=255, pattern=NO_NUL)]
Text100 = Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]
DateOrTime = Annotated[str, WithJsonSchema(DATE_OR_TIME)]
Email = Annotated[str, Field(max_length=320, json_schema_extra={"format": "email"})]
ERROR_CODES: List[Any] = sorted(
    {code for _meaning, codes in ERRORS.values() for code in codes} | {"internal_error"}
)


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- requests ---------------------------------------------------------------------------------------
class EndUserCreate(_Doc):
    external_id: Text255
    email: Optional[Email] = None
    name: Optional[Text255] = None
    metadata: Optional[Dict[str, Any]] = Field(None, description="<= 16 KiB as JSON, <= 254 levels deep.")


class EndUserUpdate(_Doc):
    external_id: Optional[Text255] = None
    email: Optional[Email] = None
    name: Optional[Text255] = None
    metadata: Optional[Dict[str, Any]] = Field(None, description="Replaces the stored metadata.")


class SubscriptionCreate(_Doc):
    organization_id: Text255
    plan_id: Text255
    billing_cycle: Literal["monthly", "quarterly", "yearly"]
    start_date: DateOrTime
    end_date: Optional[DateOrTime] = Field(None, description="Not before start_date.")
    end_user_id: Optional[Text255] = Field(
        None,
        description="An end user's id or external id; an unknown external id registers that end user "
        "on first use (an unknown id shaped like the service's own, eu_ + 24 hex digits, is not_found).",
    )
    metadata: Optional[Dict[str, Any]] = None


class SubscriptionUpdate(_Doc):
    organization_id: Optional[Text255] = None
    plan_id: Optional[Text255] = None
    billing_cycle: Optional[Literal["monthly", "quarterly", "yearly"]] = None
    end_date: Optional[DateOrTime] = None
    end_user_id: Optional[Text255] = None
    metadata: Optional[Dict[str, Any]] = None


class EventInput(_Doc):
    event_type: Text100
    metric_name: Text100
    quantity: Annotated[
        Quantity,
        WithJsonSchema({"type": "number", "minimum": 0, "maximum": 10**12}),
        Field(description="Finite, 0..1e12, at most 6 decimal places."),
    ]
    idempotency_key: Optional[Text255] = Field(None, description="Made by the service if absent.")
    agent_id: Optional[Text255] = None
    workflow_id: Optional[Text255] = None
    subscription_id: Optional[Text255] = None
    end_user_id: Optional[Text255] = Field(
        None,
        description="An end user's id or external id; an unknown external id registers that end user "
        "on first use (an unknown id shaped like the service's own, eu_ + 24 hex digits, is not_found).",
    )
    timestamp: Optional[DateOrTime] = Field(
        None,
        description="ISO 8601; default now; not before 1970. More than 5 minutes ahead of the service's "
        "clock: re-stamped with the receive time, the sent value kept in metadata.client_timestamp.",
    )
    metadata: Optional[Dict[str, Any]] = Field(
        None,
        description="<= 16 KiB as JSON, <= 254 levels deep. provider_cost_usd (number or decimal string, "
        "0..1000000) is the event's cost; pricing_status='unpriced' or no cost makes it unpriced; "
        "pricing_status='pending' without a cost asks the service to price the token buckets (docs/api.md, "
        "Service-side pricing); model (1..255 characters) is used by group_by=model.",
    )


class BatchInput(_Doc):
    events: List[EventInput] = Field(min_length=1, max_length=1000)


# ---- responses --------------------------------------------------------------------------------------
class EndUser(BaseModel):
    id: str
    externalId: str
    email: Optional[str]
    name: Optional[str]
    metadata: Dict[str, Any]
    status: Literal["ACTIVE", "DEACTIVATED"]
    createdAt: str
    updatedAt: str
    deactivatedAt: Optional[str]


class EndUserEnvelope(BaseModel):
    endUser: EndUser


class EndUserList(BaseModel):
    endUsers: List[EndUser]
    total: int
    activeCount: int
    deactivatedCount: int
    limit: int
    offset: int


class Subscription(BaseModel):
    id: str
    organizationId: str
    planId: str
    billingCycle: Literal["monthly", "quarterly", "yearly"]
    status: Literal["ACTIVE", "CANCELED"]
    startDate: str
    endDate: Optional[str]
    endUserId: Optional[str]
    metadata: Dict[str, Any]
    createdAt: str
    updatedAt: str
    canceledAt: Optional[str]


class SubscriptionEnvelope(BaseModel):
    subscription: Subscription


class SubscriptionList(BaseModel):
    subscriptions: List[Subscription]
    total: int
    limit: int
    offset: int


class Event(BaseModel):
    id: str
    eventType: str
    metricName: str
    quantity: Quantity
    idempotencyKey: str
    agentId: Optional[str]
    workflowId: Optional[str]
    subscriptionId: Optional[str]
    endUserId: Optional[str]
    timestamp: str
    receivedAt: str
    providerCostUsd: Money = Field(description="Decimal string; null when unpriced.")
    metadata: Dict[str, Any]


class RecordResult(BaseModel):
    recorded: bool
    idempotencyKey: str
    event: Optional[Event] = Field(
        description="The stored event; null when the key belongs to an event removed by bearlumen prune."
    )


class BatchItem(BaseModel):
    index: int
    idempotencyKey: str
    recorded: bool
    id: str


class BatchResult(BaseModel):
    recorded_count: int
    skipped_count: int
    results: List[BatchItem]


class EventList(BaseModel):
    events: List[Event]
    total: int
    limit: int
    offset: int
    nextCursor: Optional[str] = Field(
        description="Pass as cursor to get the next page; null on the last page."
    )


class _Measures(BaseModel):
    totalQuantity: Quantity
    eventCount: int
    totalCost: Money = Field(description=_MONEY)
    pricedEventCount: int
    unpricedEventCount: int


class AggregationItem(_Measures):
    metricName: str
    group: Optional[Union[str, None]] = Field(None, description="Absent when grouped by metric_name.")


class Aggregation(BaseModel):
    items: List[AggregationItem]
    totalCost: Money = Field(description="Exactly the sum of the items' totalCost.")
    eventCount: int
    pricedEventCount: int
    unpricedEventCount: int
    groupBy: str


class MetricSummary(_Measures):
    metricName: str


class Summary(BaseModel):
    totalEvents: int
    totalQuantity: Quantity
    totalCost: Money = Field(description=_MONEY)
    pricedEventCount: int
    unpricedEventCount: int
    metrics: List[MetricSummary]


class CostItem(_Measures):
    attributionValue: Optional[str] = Field(description="null: events without an agent (workflow).")


class CostBreakdown(BaseModel):
    dimension: Literal["agent", "workflow"]
    items: List[CostItem]
    totalCost: Money = Field(description="Exactly the sum of the items' totalCost.")
    eventCount: int
    pricedEventCount: int
    unpricedEventCount: int
    totalQuantity: Quantity
    startDate: str
    endDate: str


class Values(BaseModel):
    values: List[str]


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    schemaRevision: str


class ItemError(BaseModel):
    index: int = Field(ge=0)
    code: Literal["invalid_request", "invalid_quantity", "invalid_timestamp", "not_found"]
    message: str
    param: Optional[str]


class ErrorDetail(BaseModel):
    code: str = Field(json_schema_extra={"enum": list(ERROR_CODES)})
    message: str = Field(description="What to change.")
    param: Optional[str] = Field(description="The offending field or parameter, if one is.")
    requestId: str
    errors: Optional[List[ItemError]] = Field(None, description="`invalid_batch` only: one per bad event.")


class ErrorEnvelope(BaseModel):
    error: ErrorDetail


REQUEST_MODELS: List[Type[BaseModel]] = [
    EndUserCreate,
    EndUserUpdate,
    SubscriptionCreate,
    SubscriptionUpdate,
    EventInput,
    BatchInput,
]


def body(model: Type[BaseModel]) -> Dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON request body (its schema is added by ``schemas``)."""
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def schemas() -> Dict[str, Any]:
    """Component schemas of the request models (FastAPI only collects models it validates itself)."""
    out: Dict[str, Any] = {}
    models: List[Type[BaseModel]] = [*REQUEST_MODELS, ErrorEnvelope]
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out
