"""/v1/cost_attribution"""

from __future__ import annotations

from typing import Annotated, Dict, Optional

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from bearlumen.server.api import models
from bearlumen.server.api._call import bearer, call
from bearlumen.server.api.params import range_params
from bearlumen.server.usage import service

router = APIRouter(prefix="/v1/cost_attribution", tags=["cost attribution"], dependencies=[Depends(bearer)])
Params = Dict[str, Optional[str]]


@router.get("/by_agent", response_model=models.CostBreakdown)
async def by_agent(request: Request, params: Annotated[Params, Depends(range_params)]) -> Response:
    return await call(request, lambda ctx, _: service.attribution(ctx.db, ctx.tenant_id, "agent", params))


@router.get("/by_workflow", response_model=models.CostBreakdown)
async def by_workflow(request: Request, params: Annotated[Params, Depends(range_params)]) -> Response:
    return await call(request, lambda ctx, _: service.attribution(ctx.db, ctx.tenant_id, "workflow", params))


@router.get("/agents", response_model=models.Values)
async def list_agents(request: Request, params: Annotated[Params, Depends(range_params)]) -> Response:
    return await call(
        request, lambda ctx, _: service.attribution_values(ctx.db, ctx.tenant_id, "agent", params)
    )


@router.get("/workflows", response_model=models.Values)
async def list_workflows(request: Request, params: Annotated[Params, Depends(range_params)]) -> Response:
    return await call(
        request, lambda ctx, _: service.attribution_values(ctx.db, ctx.tenant_id, "workflow", params)
    )
