"""/v1/usage"""

from __future__ import annotations

from typing import Annotated, Any, Dict, Optional

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from bearlumen.server.api import models
from bearlumen.server.api._call import Body, Ctx, bearer, call
from bearlumen.server.api.params import Cursor, GroupBy, page_params, usage_params
from bearlumen.server.fields import page
from bearlumen.server.usage import service

router = APIRouter(prefix="/v1/usage", tags=["usage"], dependencies=[Depends(bearer)])
Params = Dict[str, Optional[str]]


@router.post("/events", response_model=models.RecordResult, openapi_extra=models.body(models.EventInput))
async def record_event(request: Request) -> Response:
    metrics = request.app.state.metrics

    def work(ctx: Ctx, raw: Body) -> Any:
        result = service.record_one(ctx.db, ctx.tenant_id, raw)
        if metrics is not None:
            metrics.events(int(result["recorded"]), int(not result["recorded"]))
        return result

    return await call(request, work, raw_body=True)


@router.post("/events/batch", response_model=models.BatchResult, openapi_extra=models.body(models.BatchInput))
async def record_batch(request: Request) -> Response:
    metrics = request.app.state.metrics

    def work(ctx: Ctx, raw: Body) -> Any:
        result = service.record_batch(ctx.db, ctx.tenant_id, raw)
        if metrics is not None:
            metrics.events(result["recorded_count"], result["skipped_count"])
        return result

    return await call(request, work, raw_body=True)


@router.get("/events", response_model=models.EventList)
async def query_events(
    request: Request,
    params: Annotated[Params, Depends(usage_params)],
    paging: Annotated[Dict[str, Optional[int]], Depends(page_params)],
    cursor: Cursor = None,
) -> Response:
    def work(ctx: Ctx, _body: Body) -> Any:
        limit, offset = page(paging["limit"], paging["offset"])
        return service.query(ctx.db, ctx.tenant_id, params, limit, offset, cursor)

    return await call(request, work)


@router.get("/aggregation", response_model=models.Aggregation)
async def aggregation(
    request: Request,
    params: Annotated[Params, Depends(usage_params)],
    group_by: GroupBy = None,
) -> Response:
    merged = {**params, "group_by": group_by}
    return await call(request, lambda ctx, _: service.aggregation(ctx.db, ctx.tenant_id, merged))


@router.get("/summary", response_model=models.Summary)
async def summary(request: Request, params: Annotated[Params, Depends(usage_params)]) -> Response:
    return await call(request, lambda ctx, _: service.summary(ctx.db, ctx.tenant_id, params))
