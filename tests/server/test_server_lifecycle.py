"""The process: restarts keep every event, SIGTERM loses no acknowledged event, SIGKILL neither (commits are
durable before the answer), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from typing import Iterator, List, Set

import httpx
import pytest

from tests.server.helpers import event, ok, record_batch, uid
from tests.support.service import ServiceHandle, start_service


@pytest.fixture(params=["sqlite", "postgresql"])
def own_service(request: pytest.FixtureRequest) -> Iterator[ServiceHandle]:
    """A service of this test only (it gets stopped and restarted)."""
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    handle = start_service(url)
    yield handle
    handle.close()


def test_restart_keeps_all_data(own_service: ServiceHandle) -> None:
    with own_service.client() as api:
        user = ok(api.post("/v1/end_users", json={"external_id": "kept"}), 201)["endUser"]
        record_batch(api, [event(agent_id="a", metadata={"provider_cost_usd": "0.5"}) for _ in range(50)])
        before = ok(api.get("/v1/usage/summary"))
    own_service.restart()
    with own_service.client() as api:
        assert ok(api.get(f"/v1/end_users/{user['id']}"))["endUser"] == user
        assert ok(api.get("/v1/usage/summary")) == before
        assert before["totalCost"] == "25"


def _pump(api: httpx.Client, acknowledged: Set[str], stop: threading.Event) -> None:
    """Send batches until the server goes away; remember every key of a batch that got its 200."""
    while not stop.is_set():
        batch = [event(idempotency_key=uid("ack")) for _ in range(200)]
        try:
            response = api.post("/v1/usage/events/batch", json={"events": batch})
        except httpx.HTTPError:
            return
        if response.status_code != 200:
            return
        acknowledged.update(e["idempotency_key"] for e in batch)


@pytest.mark.parametrize("signal_name", ["stop", "kill"])
def test_no_acknowledged_event_is_lost(own_service: ServiceHandle, signal_name: str) -> None:
    acknowledged: Set[str] = set()
    stop = threading.Event()
    clients: List[httpx.Client] = [own_service.client(timeout=10) for _ in range(3)]
    threads = [threading.Thread(target=_pump, args=(c, acknowledged, stop)) for c in clients]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    getattr(own_service, signal_name)()  # SIGTERM (graceful) or SIGKILL, while batches are in flight
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    for client in clients:
        client.close()
    assert acknowledged, "no batch was acknowledged before the signal"
    own_service.start()
    with own_service.client() as api:
        stored: Set[str] = set()
        offset = 0
        while True:
            page = ok(api.get("/v1/usage/events", params={"limit": 1000, "offset": offset}))
            stored.update(e["idempotencyKey"] for e in page["events"])
            offset += len(page["events"])
            if not page["events"]:
                break
        assert acknowledged <= stored
        # whatever was stored is in the rollups too, nothing more, nothing less
        assert ok(api.get("/v1/usage/summary"))["totalEvents"] == len(stored)
