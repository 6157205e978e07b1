"""/v1/end_users"""

from __future__ import annotations

from typing import Annotated, Any, Dict, Optional

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from bearlumen.server.api import models
from bearlumen.server.api._call import Body, Ctx, bearer, call
from bearlumen.server.api.params import EndUserId, page_params
from bearlumen.server.fields import page
from bearlumen.server.services import end_users

router = APIRouter(prefix="/v1/end_users", tags=["end users"], dependencies=[Depends(bearer)])


@router.post(
    "",
    status_code=201,
    response_model=models.EndUserEnvelope,
    openapi_extra=models.body(models.EndUserCreate),
)
async def create_end_user(request: Request) -> Response:
    return await call(
        request, lambda ctx, body: end_users.create(ctx.db, ctx.tenant_id, body or {}), body=True, status=201
    )


@router.get("", response_model=models.EndUserList)
async def list_end_users(
    request: Request,
    paging: Annotated[Dict[str, Optional[int]], Depends(page_params)],
    status: Annotated[Optional[str], Query(json_schema_extra={"enum": ["ACTIVE", "DEACTIVATED"]})] = None,
) -> Response:
    def work(ctx: Ctx, _body: Body) -> Any:
        limit, offset = page(paging["limit"], paging["offset"])
        return end_users.list_(ctx.db, ctx.tenant_id, status, limit, offset)

    return await call(request, work)


@router.get("/{end_user_id}", response_model=models.EndUserEnvelope)
async def get_end_user(request: Request, end_user_id: EndUserId) -> Response:
    return await call(request, lambda ctx, _: end_users.get(ctx.db, ctx.tenant_id, end_user_id))


@router.patch(
    "/{end_user_id}", response_model=models.EndUserEnvelope, openapi_extra=models.body(models.EndUserUpdate)
)
async def update_end_user(request: Request, end_user_id: EndUserId) -> Response:
    return await call(
        request,
        lambda ctx, body: end_users.update_(ctx.db, ctx.tenant_id, end_user_id, body or {}),
        body=True,
    )


@router.post("/{end_user_id}/deactivate", response_model=models.EndUserEnvelope)
async def deactivate_end_user(request: Request, end_user_id: EndUserId) -> Response:
    return await call(
        request,
        lambda ctx, _: end_users.deactivate(ctx.db, ctx.tenant_id, end_user_id),
    )


@router.post("/{end_user_id}/reactivate", response_model=models.EndUserEnvelope)
async def reactivate_end_user(request: Request, end_user_id: EndUserId) -> Response:
    return await call(
        request,
        lambda ctx, _: end_users.reactivate(ctx.db, ctx.tenant_id, end_user_id),
    )
