"""/v1/subscriptions"""

from __future__ import annotations

from typing import Annotated, Any, Dict, Optional

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from bearlumen.server.api import models
from bearlumen.server.api._call import Body, Ctx, bearer, call
from bearlumen.server.api.params import SubscriptionId, filter_param, page_params
from bearlumen.server.fields import page
from bearlumen.server.services import subscriptions

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"], dependencies=[Depends(bearer)])


@router.post(
    "",
    status_code=201,
    response_model=models.SubscriptionEnvelope,
    openapi_extra=models.body(models.SubscriptionCreate),
)
async def create_subscription(request: Request) -> Response:
    return await call(
        request,
        lambda ctx, body: subscriptions.create(ctx.db, ctx.tenant_id, body or {}),
        body=True,
        status=201,
    )


@router.get("", response_model=models.SubscriptionList)
async def list_subscriptions(
    request: Request,
    paging: Annotated[Dict[str, Optional[int]], Depends(page_params)],
    organization_id: Optional[str] = filter_param(),
    status: Annotated[Optional[str], Query(json_schema_extra={"enum": ["ACTIVE", "CANCELED"]})] = None,
) -> Response:
    def work(ctx: Ctx, _body: Body) -> Any:
        limit, offset = page(paging["limit"], paging["offset"])
        return subscriptions.list_(ctx.db, ctx.tenant_id, organization_id, status, limit, offset)

    return await call(request, work)


@router.get("/{subscription_id}", response_model=models.SubscriptionEnvelope)
async def get_subscription(request: Request, subscription_id: SubscriptionId) -> Response:
    return await call(
        request,
        lambda ctx, _: subscriptions.get(ctx.db, ctx.tenant_id, subscription_id),
    )


@router.patch(
    "/{subscription_id}",
    response_model=models.SubscriptionEnvelope,
    openapi_extra=models.body(models.SubscriptionUpdate),
)
async def update_subscription(request: Request, subscription_id: SubscriptionId) -> Response:
    return await call(
        request,
        lambda ctx, body: subscriptions.update_(ctx.db, ctx.tenant_id, subscription_id, body or {}),
        body=True,
    )


@router.post("/{subscription_id}/cancel", response_model=models.SubscriptionEnvelope)
async def cancel_subscription(request: Request, subscription_id: SubscriptionId) -> Response:
    return await call(
        request,
        lambda ctx, _: subscriptions.cancel(ctx.db, ctx.tenant_id, subscription_id),
    )
