"""``create_app`` in-process: ready without lifespan events (httpx.ASGITransport), as the SDK embeds it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from bearlumen.server.app import create_app
from bearlumen.server.keys import create_api_key


def test_app_works_through_asgi_transport_without_lifespan(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'embedded.db'}"
    key = create_api_key(url, "embedded")
    app = create_app(url)

    async def scenario() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://embedded", headers={"Authorization": f"Bearer {key}"}
        ) as client:
            recorded = await client.post(
                "/v1/usage/events",
                json={"event_type": "t", "metric_name": "m", "quantity": 3, "idempotency_key": "k"},
            )
            assert recorded.status_code == 200 and recorded.json()["recorded"] is True
            summary = await client.get("/v1/usage/summary")
            assert summary.json()["totalEvents"] == 1
            assert (
                await client.get("/v1/end_users", headers={"Authorization": "Bearer nope"})
            ).status_code == 401

    try:
        asyncio.run(scenario())
    finally:
        app.state.close()
        app.state.close()  # idempotent


def test_in_memory_sqlite(tmp_path: Path) -> None:
    app = create_app("sqlite://")
    try:
        from bearlumen.server.keys import issue_key

        key = app.state.db.write(lambda conn: issue_key(conn, "memory"))

        async def scenario() -> None:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://m",
                headers={"Authorization": f"Bearer {key}"},
            ) as client:
                ok = await client.post(
                    "/v1/usage/events/batch",
                    json={"events": [{"event_type": "t", "metric_name": "m", "quantity": 1}]},
                )
                assert ok.json()["recorded_count"] == 1

        asyncio.run(scenario())
    finally:
        app.state.close()
