"""``client.cost_attribution``: what each AI agent and workflow cost, over a time range.

``totalCost`` values are decimal strings (``"4.5"``), or None when no event of the group had a price.
"""

from __future__ import annotations

from typing import Any, Dict, cast

from bearlumen.resources._base import AsyncAPIResource, DateLike, SyncAPIResource, date_param
from bearlumen.types import AttributionValuesResponse, CostBreakdownResponse

__all__ = ["AsyncCostAttribution", "CostAttribution"]


def _range(start_date: DateLike, end_date: DateLike) -> Dict[str, Any]:
    return {"start_date": date_param(start_date), "end_date": date_param(end_date)}


class CostAttribution(SyncAPIResource):
    def by_agent(self, start_date: DateLike, end_date: DateLike) -> CostBreakdownResponse:
        """Cost per agent in ``[start_date, end_date)``, most expensive first."""
        return cast(
            CostBreakdownResponse,
            self._http.request("GET", "/v1/cost_attribution/by_agent", params=_range(start_date, end_date)),
        )

    def by_workflow(self, start_date: DateLike, end_date: DateLike) -> CostBreakdownResponse:
        """Cost per workflow in ``[start_date, end_date)``, most expensive first."""
        return cast(
            CostBreakdownResponse,
            self._http.request(
                "GET", "/v1/cost_attribution/by_workflow", params=_range(start_date, end_date)
            ),
        )

    def list_agents(self, start_date: DateLike, end_date: DateLike) -> AttributionValuesResponse:
        """The agent ids with events in ``[start_date, end_date)``, sorted."""
        return cast(
            AttributionValuesResponse,
            self._http.request("GET", "/v1/cost_attribution/agents", params=_range(start_date, end_date)),
        )

    def list_workflows(self, start_date: DateLike, end_date: DateLike) -> AttributionValuesResponse:
        """The workflow ids with events in ``[start_date, end_date)``, sorted."""
        return cast(
            AttributionValuesResponse,
            self._http.request("GET", "/v1/cost_attribution/workflows", params=_range(start_date, end_date)),
        )


class AsyncCostAttribution(AsyncAPIResource):
    async def by_agent(self, start_date: DateLike, end_date: DateLike) -> CostBreakdownResponse:
        """Cost per agent in ``[start_date, end_date)``, most expensive first."""
        return cast(
            CostBreakdownResponse,
            await self._http.request(
                "GET", "/v1/cost_attribution/by_agent", params=_range(start_date, end_date)
            ),
        )

    async def by_workflow(self, start_date: DateLike, end_date: DateLike) -> CostBreakdownResponse:
        """Cost per workflow in ``[start_date, end_date)``, most expensive first."""
        return cast(
            CostBreakdownResponse,
            await self._http.request(
                "GET", "/v1/cost_attribution/by_workflow", params=_range(start_date, end_date)
            ),
        )

    async def list_agents(self, start_date: DateLike, end_date: DateLike) -> AttributionValuesResponse:
        """The agent ids with events in ``[start_date, end_date)``, sorted."""
        return cast(
            AttributionValuesResponse,
            await self._http.request(
                "GET", "/v1/cost_attribution/agents", params=_range(start_date, end_date)
            ),
        )

    async def list_workflows(self, start_date: DateLike, end_date: DateLike) -> AttributionValuesResponse:
        """The workflow ids with events in ``[start_date, end_date)``, sorted."""
        return cast(
            AttributionValuesResponse,
            await self._http.request(
                "GET", "/v1/cost_attribution/workflows", params=_range(start_date, end_date)
            ),
        )
