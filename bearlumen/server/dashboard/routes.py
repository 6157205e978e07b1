"""The dashboard's routes under ``/dashboard`` (left out of the OpenAPI document: they are pages, not API).

Authentication is the session cookie (sessions.py), never the ``Authorization`` header, and the API gate
(gate.py) is untouched: it only guards ``/v1``. A page without a live session redirects to the sign-in
form. Each page's reads run in one worker thread, like the API's, and are scoped to the session's tenant.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse, RedirectResponse, Response

from bearlumen.server.dashboard import data
from bearlumen.server.dashboard.charts import COLORS, stacked_bars
from bearlumen.server.dashboard.data import Span
from bearlumen.server.dashboard.pages import Range, html, parse_range
from bearlumen.server.dashboard.sessions import (
    SESSION_LIFETIME_US,
    Session,
    end_session,
    find_session,
    new_token,
    sign_in,
    tokens_match,
)
from bearlumen.server.db import Database
from bearlumen.server.jsonio import read_body

__all__ = ["SESSION_COOKIE", "router"]

router = APIRouter(prefix="/dashboard", include_in_schema=False)

SESSION_COOKIE = "bearlumen_session"
LOGIN_CSRF_COOKIE = "bearlumen_login_csrf"
PAGE_SIZE = 50
_STATIC = Path(__file__).with_name("static")
_FILTERS = tuple(dimension for dimension, *_ in data.BREAKDOWNS)
_BY_PATH = {segment: (dimension, title) for dimension, title, segment in data.BREAKDOWNS}


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int, path: str) -> None:
    """HttpOnly, SameSite=Strict, and Secure whenever the page was served over HTTPS (directly or behind a
    proxy that uvicorn trusts with X-Forwarded-Proto)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _forget(request: Request, response: Response, name: str, path: str) -> None:
    _set_cookie(request, response, name, "", 0, path)


async def _form(request: Request) -> Dict[str, str]:
    """An urlencoded form (the gate already bounds its size and arrival time)."""
    body = (await read_body(request)).decode("utf-8", "replace")
    parsed = parse_qs(body, keep_blank_values=True, max_num_fields=20)
    return {k: v[0] for k, v in parsed.items()}


async def _session(request: Request) -> Optional[Session]:
    return await run_in_threadpool(find_session, _db(request), request.cookies.get(SESSION_COOKIE))


def _to_login() -> Response:
    return RedirectResponse("/dashboard/login", status_code=303)


# -- signing in and out ---------------------------------------------------------------------------------
def _login_page(request: Request, error: Optional[str] = None, status: int = 200) -> Response:
    token = new_token()  # double-submit: the form repeats the cookie's value
    response = html("login.html", {"csrf": token, "error": error}, status)
    _set_cookie(request, response, LOGIN_CSRF_COOKIE, token, 3600, "/dashboard/login")
    return response


@router.get("/login")
async def login_form(request: Request) -> Response:
    if await _session(request) is not None:
        return RedirectResponse("/dashboard", status_code=303)
    return _login_page(request)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await _form(request)
    if not tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE), form.get("csrf")):
        return _login_page(request, "The form expired; sign in again.", 403)
    token = await run_in_threadpool(sign_in, _db(request), form.get("api_key", ""))
    if token is None:
        return _login_page(request, "Invalid or revoked API key.", 401)
    response = RedirectResponse("/dashboard", status_code=303)
    _set_cookie(request, response, SESSION_COOKIE, token, SESSION_LIFETIME_US // 1_000_000, "/dashboard")
    _forget(request, response, LOGIN_CSRF_COOKIE, "/dashboard/login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = await _session(request)
    form = await _form(request)
    if session is None:
        return _to_login()
    if not tokens_match(session.csrf_token, form.get("csrf")):
        return html("error.html", {"message": "Missing or wrong form token: sign out from the page."}, 403)
    await run_in_threadpool(end_session, _db(request), request.cookies.get(SESSION_COOKIE, ""))
    response = _to_login()
    _forget(request, response, SESSION_COOKIE, "/dashboard")
    return response


# -- pages ----------------------------------------------------------------------------------------------
Render = Callable[[Session, Range, Dict[str, str]], Response]


async def _page(request: Request, render: Render) -> Response:
    """A signed-in page: the sign-in form without a session, else ``render`` (it reads the database) in a
    worker thread with the session, the picked range and the query parameters."""
    session = await _session(request)
    if session is None:
        return _to_login()
    params = dict(request.query_params)
    return await run_in_threadpool(render, session, parse_range(params), params)


def _common(session: Session, picked: Range, path: str) -> Dict[str, Any]:
    return {
        "session": session,
        "range": picked,
        "path": path,
        "colors": COLORS,
        "breakdown_pages": [(segment, title) for _, title, segment in data.BREAKDOWNS],
    }


def _cheap_breakdowns(conn: Any, tenant: int, span: Span, only: Mapping[str, str]) -> List[data.Breakdown]:
    return [
        data.breakdown(conn, tenant, d, t, span, only) for d, t, _ in data.BREAKDOWNS if d in data.ON_OVERVIEW
    ]


@router.get("")
async def overview(request: Request) -> Response:
    def render(session: Session, picked: Range, params: Dict[str, str]) -> Response:
        stack = params["stack"] if params.get("stack") in data.STACKS else "model"

        def read(conn: Any) -> Dict[str, Any]:
            tenant, span = session.tenant_id, picked.span
            series = data.over_time(conn, tenant, span, picked.bucket, stack, {})
            return {
                "figures": data.figures(conn, tenant, span, {}),
                "series": series,
                "chart": stacked_bars(series),
                "breakdowns": _cheap_breakdowns(conn, tenant, span, {}),
            }

        context = {**_common(session, picked, "/dashboard"), **_db(request).read(read), "stack": stack}
        return html("overview.html", context)

    return await _page(request, render)


@router.get("/by/{segment}")
async def by_dimension(request: Request, segment: str) -> Response:
    """Every value of one dimension in the range, with its figures (the overview shows the cheap ones)."""

    def render(session: Session, picked: Range, _params: Dict[str, str]) -> Response:
        if segment not in _BY_PATH:
            return html("error.html", {"session": session, "message": "No such breakdown."}, 404)
        dimension, title = _BY_PATH[segment]
        table = _db(request).read(
            lambda conn: data.breakdown(conn, session.tenant_id, dimension, title, picked.span, {})
        )
        context = {"breakdown": table, "figures": table.total, "segment": segment}
        return html("breakdown.html", {**_common(session, picked, f"/dashboard/by/{segment}"), **context})

    return await _page(request, render)


@router.get("/events")
async def events(request: Request) -> Response:
    """The calls behind a figure: any of the breakdown dimensions as filters, 50 a page."""

    def render(session: Session, picked: Range, params: Dict[str, str]) -> Response:
        filters = {k: params[k] for k in _FILTERS if params.get(k)}
        number = params.get("page", "")
        page = max(int(number), 1) if number.isdigit() and len(number) < 7 else 1

        def read(conn: Any) -> Dict[str, Any]:
            offset = (page - 1) * PAGE_SIZE
            rows = data.events_page(conn, session.tenant_id, picked.span, filters, PAGE_SIZE + 1, offset)
            return {
                "figures": data.figures(conn, session.tenant_id, picked.span, filters),
                "events": rows[:PAGE_SIZE],
                "more": len(rows) > PAGE_SIZE,
            }

        context = {**_common(session, picked, "/dashboard/events"), **_db(request).read(read)}
        return html("events.html", {**context, "filters": filters, "page": page})

    return await _page(request, render)


@router.get("/end-users/{end_user_id}")
async def end_user(request: Request, end_user_id: str) -> Response:
    """What one customer cost, by agent, workflow and model, over time (by internal or external id)."""

    def render(session: Session, picked: Range, _params: Dict[str, str]) -> Response:
        def read(conn: Any) -> Optional[Dict[str, Any]]:
            info = data.end_user_info(conn, session.tenant_id, end_user_id)
            if info is None:
                return None
            tenant, span, only = session.tenant_id, picked.span, {"end_user_id": info["id"]}
            series = data.over_time(conn, tenant, span, picked.bucket, "model", only)
            return {
                "user": info,
                "figures": data.figures(conn, tenant, span, only),
                "series": series,
                "chart": stacked_bars(series),
                "breakdowns": _cheap_breakdowns(conn, tenant, span, only),
            }

        context = _db(request).read(read)
        if context is None:
            return html("error.html", {"session": session, "message": "No such end user."}, 404)
        path = f"/dashboard/end-users/{context['user']['id']}"
        return html("end_user.html", {**_common(session, picked, path), **context, "stack": "model"})

    return await _page(request, render)


@router.get("/static/dashboard.css")
async def stylesheet() -> Response:
    return FileResponse(
        _STATIC / "dashboard.css", media_type="text/css", headers={"Cache-Control": "max-age=3600"}
    )
