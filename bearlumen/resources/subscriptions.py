"""``client.subscriptions``: which plan an organization (or end user) is on, and since when."""

from __future__ import annotations

from typing import Any, Dict, Optional, Union, cast

from bearlumen._config import NOT_GIVEN, NotGiven
from bearlumen.resources._base import (
    AsyncAPIResource,
    DateLike,
    SyncAPIResource,
    date_param,
    given,
    not_none,
    path,
)
from bearlumen.types import (
    BillingCycle,
    Metadata,
    SubscriptionListResponse,
    SubscriptionResponse,
    SubscriptionStatus,
)

__all__ = ["AsyncSubscriptions", "Subscriptions"]


def _create_body(
    organization_id: str,
    plan_id: str,
    billing_cycle: str,
    start_date: DateLike,
    end_date: Optional[DateLike],
    end_user_id: Optional[str],
    metadata: Optional[Metadata],
) -> Dict[str, Any]:
    return not_none(
        organization_id=organization_id,
        plan_id=plan_id,
        billing_cycle=billing_cycle,
        start_date=date_param(start_date),
        end_date=date_param(end_date),
        end_user_id=end_user_id,
        metadata=metadata,
    )


def _update_body(**fields: Any) -> Dict[str, Any]:
    body = given(**fields)
    if body.get("end_date") is not None:
        body["end_date"] = date_param(body["end_date"])
    return body


def _list_params(
    organization_id: Optional[str], limit: Optional[int], offset: Optional[int], status: Optional[str]
) -> Dict[str, Any]:
    return {"organization_id": organization_id, "status": status, "limit": limit, "offset": offset}


class Subscriptions(SyncAPIResource):
    def create(
        self,
        organization_id: str,
        plan_id: str,
        billing_cycle: Union[BillingCycle, str],
        start_date: DateLike,
        *,
        end_date: Optional[DateLike] = None,
        end_user_id: Optional[str] = None,
        metadata: Optional[Metadata] = None,
    ) -> SubscriptionResponse:
        """Create a subscription; ``billing_cycle`` is ``'monthly'``, ``'quarterly'`` or ``'yearly'``.

        Not repeated after a timeout or a dropped connection (it could create a second subscription):
        such a failure raises NetworkError; check with ``list()`` before creating again.
        """
        body = _create_body(
            organization_id, plan_id, billing_cycle, start_date, end_date, end_user_id, metadata
        )
        return cast(
            SubscriptionResponse,
            self._http.request("POST", "/v1/subscriptions", body=body, retry_ambiguous=False),
        )

    def retrieve(self, subscription_id: str) -> SubscriptionResponse:
        """Fetch one subscription by id (``sub_...``)."""
        return cast(
            SubscriptionResponse, self._http.request("GET", path("/v1/subscriptions/{}", subscription_id))
        )

    def update(
        self,
        subscription_id: str,
        *,
        plan_id: Union[str, NotGiven] = NOT_GIVEN,
        billing_cycle: Union[BillingCycle, str, NotGiven] = NOT_GIVEN,
        end_date: Union[DateLike, NotGiven, None] = NOT_GIVEN,
        end_user_id: Union[str, NotGiven, None] = NOT_GIVEN,
        metadata: Union[Metadata, NotGiven] = NOT_GIVEN,
        organization_id: Union[str, NotGiven] = NOT_GIVEN,
    ) -> SubscriptionResponse:
        """Change the given fields only (``end_date=None`` clears it; ``metadata`` replaces it)."""
        body = _update_body(
            plan_id=plan_id,
            billing_cycle=billing_cycle,
            end_date=end_date,
            end_user_id=end_user_id,
            metadata=metadata,
            organization_id=organization_id,
        )
        return cast(
            SubscriptionResponse,
            self._http.request("PATCH", path("/v1/subscriptions/{}", subscription_id), body=body),
        )

    def cancel(self, subscription_id: str) -> SubscriptionResponse:
        """Cancel a subscription (status ``CANCELED``, ``canceledAt`` set; idempotent)."""
        return cast(
            SubscriptionResponse,
            self._http.request("POST", path("/v1/subscriptions/{}/cancel", subscription_id)),
        )

    def list(
        self,
        organization_id: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        *,
        status: Optional[SubscriptionStatus] = None,
    ) -> SubscriptionListResponse:
        """List subscriptions, optionally of one organization and / or with one status."""
        return cast(
            SubscriptionListResponse,
            self._http.request(
                "GET", "/v1/subscriptions", params=_list_params(organization_id, limit, offset, status)
            ),
        )


class AsyncSubscriptions(AsyncAPIResource):
    async def create(
        self,
        organization_id: str,
        plan_id: str,
        billing_cycle: Union[BillingCycle, str],
        start_date: DateLike,
        *,
        end_date: Optional[DateLike] = None,
        end_user_id: Optional[str] = None,
        metadata: Optional[Metadata] = None,
    ) -> SubscriptionResponse:
        """Create a subscription; ``billing_cycle`` is ``'monthly'``, ``'quarterly'`` or ``'yearly'``.

        Not repeated after a timeout or a dropped connection (it could create a second subscription):
        such a failure raises NetworkError; check with ``list()`` before creating again.
        """
        body = _create_body(
            organization_id, plan_id, billing_cycle, start_date, end_date, end_user_id, metadata
        )
        return cast(
            SubscriptionResponse,
            await self._http.request("POST", "/v1/subscriptions", body=body, retry_ambiguous=False),
        )

    async def retrieve(self, subscription_id: str) -> SubscriptionResponse:
        """Fetch one subscription by id (``sub_...``)."""
        return cast(
            SubscriptionResponse,
            await self._http.request("GET", path("/v1/subscriptions/{}", subscription_id)),
        )

    async def update(
        self,
        subscription_id: str,
        *,
        plan_id: Union[str, NotGiven] = NOT_GIVEN,
        billing_cycle: Union[BillingCycle, str, NotGiven] = NOT_GIVEN,
        end_date: Union[DateLike, NotGiven, None] = NOT_GIVEN,
        end_user_id: Union[str, NotGiven, None] = NOT_GIVEN,
        metadata: Union[Metadata, NotGiven] = NOT_GIVEN,
        organization_id: Union[str, NotGiven] = NOT_GIVEN,
    ) -> SubscriptionResponse:
        """Change the given fields only (``end_date=None`` clears it; ``metadata`` replaces it)."""
        body = _update_body(
            plan_id=plan_id,
            billing_cycle=billing_cycle,
            end_date=end_date,
            end_user_id=end_user_id,
            metadata=metadata,
            organization_id=organization_id,
        )
        return cast(
            SubscriptionResponse,
            await self._http.request("PATCH", path("/v1/subscriptions/{}", subscription_id), body=body),
        )

    async def cancel(self, subscription_id: str) -> SubscriptionResponse:
        """Cancel a subscription (status ``CANCELED``, ``canceledAt`` set; idempotent)."""
        return cast(
            SubscriptionResponse,
            await self._http.request("POST", path("/v1/subscriptions/{}/cancel", subscription_id)),
        )

    async def list(
        self,
        organization_id: Optional[str] = None,
        limit: Optional[int] = None,
        offset: Optional[int] = None,
        *,
        status: Optional[SubscriptionStatus] = None,
    ) -> SubscriptionListResponse:
        """List subscriptions, optionally of one organization and / or with one status."""
        return cast(
            SubscriptionListResponse,
            await self._http.request(
                "GET", "/v1/subscriptions", params=_list_params(organization_id, limit, offset, status)
            ),
        )
