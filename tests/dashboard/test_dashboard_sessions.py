"""The dashboard's session rules over plain HTTP against the real service: CSRF on every POST, the cookie's
flags (Secure behind HTTPS), what the database keeps, sign-out and key revocation ending a session, and the
API's own authentication left exactly as it was (a dashboard cookie opens no /v1 route)."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import create_engine, text

from bearlumen.server.dburl import normalize_database_url
from bearlumen.server.keys import revoke_key
from tests.dashboard.conftest import Deployment, cost_of, csrf_of, http_client, http_sign_in


def _set_cookie(response: httpx.Response, name: str) -> str:
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


def test_sign_in_needs_the_forms_csrf_token(dash: Deployment) -> None:
    with http_client(dash) as client:
        no_form = client.post("/dashboard/login", data={"api_key": dash.acme.key})
        assert no_form.status_code == 403 and "bearlumen_session" not in client.cookies
        client.get("/dashboard/login")  # the form's cookie, but another token in the body
        forged = client.post("/dashboard/login", data={"api_key": dash.acme.key, "csrf": "x" * 43})
        assert forged.status_code == 403 and "bearlumen_session" not in client.cookies
        signed_in = http_sign_in(client, dash.acme.key)
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard"
        cookie = _set_cookie(signed_in, "bearlumen_session")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/dashboard" in cookie
        assert "Secure" not in cookie  # plain http: a Secure cookie would never come back


def test_the_cookie_is_secure_behind_https(dash: Deployment) -> None:
    # uvicorn trusts X-Forwarded-Proto from loopback, as from a TLS-terminating proxy on the same host.
    with http_client(dash, {"X-Forwarded-Proto": "https"}) as client:
        form = client.get("/dashboard/login")
        assert "; Secure" in _set_cookie(form, "bearlumen_login_csrf")
        token = csrf_of(form.text)
        # httpx keeps a Secure cookie for https URLs only: send the form's cookie by hand.
        signed_in = client.post(
            "/dashboard/login",
            data={"csrf": token, "api_key": dash.acme.key},
            headers={"Cookie": f"bearlumen_login_csrf={token}"},
        )
        assert signed_in.status_code == 303
        cookie = _set_cookie(signed_in, "bearlumen_session")
        assert "; Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie


def test_the_database_keeps_only_a_digest_and_never_the_key(dash: Deployment) -> None:
    with http_client(dash) as client:
        assert http_sign_in(client, dash.acme.key).status_code == 303
        token = client.cookies["bearlumen_session"]
    assert dash.acme.key not in token and len(token) == 43
    engine = create_engine(normalize_database_url(dash.service.database_url))
    try:
        with engine.connect() as conn:
            rows = [tuple(r) for r in conn.execute(text("SELECT * FROM dashboard_sessions"))]
    finally:
        engine.dispose()
    assert rows and all(token not in map(str, row) and dash.acme.key not in map(str, row) for row in rows)


def test_sign_out_needs_the_token_and_ends_the_session(dash: Deployment) -> None:
    with http_client(dash) as client:
        http_sign_in(client, dash.acme.key)
        page = client.get("/dashboard", params={"start": "2026-11-01", "end": "2026-11-30"})
        assert (
            page.status_code == 200 and f'data-testid="total-cost">{cost_of(dash.acme.calls)}<' in page.text
        )
        assert client.post("/dashboard/logout", data={}).status_code == 403  # no token: still signed in
        assert client.post("/dashboard/logout", data={"csrf": "x" * 43}).status_code == 403
        assert client.get("/dashboard").status_code == 200
        token = client.cookies["bearlumen_session"]
        out = client.post("/dashboard/logout", data={"csrf": csrf_of(page.text)})
        assert (out.status_code, out.headers["location"]) == (303, "/dashboard/login")
    with http_client(dash) as replay:  # the old cookie, kept by someone: dead on the server
        replay.cookies.set("bearlumen_session", token)
        answer = replay.get("/dashboard")
        assert (answer.status_code, answer.headers["location"]) == (303, "/dashboard/login")


def test_revoking_the_key_ends_its_sessions(dash: Deployment) -> None:
    key = dash.service.create_key("acme-dashboard")
    with http_client(dash) as client:
        http_sign_in(client, key)
        assert client.get("/dashboard").status_code == 200
        from bearlumen.server.db import Database

        db = Database(dash.service.database_url)
        try:
            assert db.write(lambda conn: revoke_key(conn, key[:12])) is not None
        finally:
            db.close()
        assert client.get("/dashboard").status_code == 303


def test_the_api_keeps_its_own_authentication(dash: Deployment) -> None:
    with http_client(dash) as client:
        http_sign_in(client, dash.acme.key)
        assert client.get("/dashboard").status_code == 200
        refused = client.get("/v1/usage/summary")  # the session cookie is not an API credential
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "authentication_failed"
        bearer = {"Authorization": f"Bearer {dash.acme.key}"}
        summary = client.get("/v1/usage/summary", params={"start_date": "2026-11-01"}, headers=bearer).json()
        assert f"${summary['totalCost']}" == cost_of(dash.acme.calls)
        paths = client.get("/openapi.json").json()["paths"]
        assert not [p for p in paths if p.startswith("/dashboard")]


def test_pages_load_nothing_from_elsewhere(dash: Deployment) -> None:
    with http_client(dash) as client:
        http_sign_in(client, dash.acme.key)
        page = client.get("/dashboard", params={"start": "2026-11-01", "end": "2026-11-30"})
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
        assert re.findall(r'(?:src|href)="(?!/|#)[^"]*"', page.text) == []  # every URL is this server's
        assert "<script" not in page.text
        assert client.get("/dashboard/static/dashboard.css").headers["content-type"].startswith("text/css")
