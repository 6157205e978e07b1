"""Query parameters shared by several routes (declared here so the OpenAPI document lists them)."""

from __future__ import annotations

from typing import Dict, Optional

from fastapi import Query

__all__ = ["page_params", "range_params", "usage_params"]

_DATE = "ISO 8601 date or date-time; no zone means UTC, a bare date means midnight UTC."


async def page_params(
    limit: Optional[int] = Query(None, description="1..1000, default 100"),
    offset: Optional[int] = Query(None, description=">= 0, default 0"),
) -> Dict[str, Optional[int]]:
    return {"limit": limit, "offset": offset}


async def range_params(
    start_date: str = Query(..., description=f"Inclusive. {_DATE}"),
    end_date: str = Query(..., description=f"Exclusive. {_DATE}"),
) -> Dict[str, Optional[str]]:
    return {"start_date": start_date, "end_date": end_date}


async def usage_params(
    subscription_id: Optional[str] = Query(None),
    end_user_id: Optional[str] = Query(None, description="An end user's id or external id."),
    metric_name: Optional[str] = Query(None),
    event_type: Optional[str] = Query(None),
    agent_id: Optional[str] = Query(None),
    workflow_id: Optional[str] = Query(None),
    start_date: Optional[str] = Query(None, description=f"Inclusive. {_DATE}"),
    end_date: Optional[str] = Query(None, description=f"Exclusive. {_DATE}"),
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
