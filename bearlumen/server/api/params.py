"""Query and path parameters shared by several routes, declared with their real ranges so the OpenAPI
document states them (FastAPI checks the declared bounds; a failure is a 400 in the error envelope)."""

from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import Path, Query
from typing_extensions import Annotated

from bearlumen.server.api.models import DATE_OR_TIME, NO_NUL
from bearlumen.server.fields import MAX_OFFSET
from bearlumen.server.usage.totals import GROUPS

__all__ = [
    "Cursor",
    "EndUserId",
    "GroupBy",
    "SubscriptionId",
    "filter_param",
    "page_params",
    "range_params",
    "usage_params",
]


def _date(description: str, required: bool = False) -> Any:
    extra = {**DATE_OR_TIME, "description": f"{description} {DATE_OR_TIME['description']}"}
    return Query(... if required else None, json_schema_extra=extra)


def filter_param(description: Optional[str] = None) -> Any:
    return Query(None, min_length=1, max_length=255, pattern=NO_NUL, description=description)


def _id(name: str) -> Any:
    return Path(min_length=1, max_length=255, pattern=NO_NUL, description=f"The {name}'s id.")


EndUserId = Annotated[str, _id("end user")]
SubscriptionId = Annotated[str, _id("subscription")]
Cursor = Annotated[
    Optional[str],
    Query(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The previous page's nextCursor: this page starts just after its last event "
        "(keyset pagination, fast at any depth). offset, if given too, counts from there.",
    ),
]
GroupBy = Annotated[
    Optional[str],
    Query(
        description="What each item groups on (default metric_name).",
        json_schema_extra={"enum": list(GROUPS)},
    ),
]


async def page_params(
    limit: Optional[int] = Query(None, ge=1, le=1000, description="Default 100."),
    offset: Optional[int] = Query(None, ge=0, le=MAX_OFFSET, description="Default 0."),
) -> Dict[str, Optional[int]]:
    return {"limit": limit, "offset": offset}


async def range_params(
    start_date: str = _date("Inclusive.", required=True),
    end_date: str = _date("Exclusive.", required=True),
) -> Dict[str, Optional[str]]:
    return {"start_date": start_date, "end_date": end_date}


async def usage_params(
    subscription_id: Optional[str] = filter_param(),
    end_user_id: Optional[str] = filter_param("An end user's id or external id."),
    metric_name: Optional[str] = filter_param(),
    event_type: Optional[str] = filter_param(),
    agent_id: Optional[str] = filter_param(),
    workflow_id: Optional[str] = filter_param(),
    start_date: Optional[str] = _date("Inclusive."),
    end_date: Optional[str] = _date("Exclusive."),
) -> Dict[str, Optional[str]]:
    return {
        "subscription_id": subscription_id,
        "end_user_id": end_user_id,
        "metric_name": metric_name,
        "event_type": event_type,
        "agent_id": agent_id,
        "workflow_id": workflow_id,
        "start_date": start_date,
        "end_date": end_date,
    }
