"""Idempotency under concurrency, on both backends: the same key from many threads is recorded once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, List

from tests.server.helpers import event, ok, uid
from tests.support.service import ServiceHandle


def _barrier_run(count: int, fn: Any) -> List[Any]:
    """Run ``fn(i)`` in ``count`` threads released at the same instant."""
    barrier = threading.Barrier(count)

    def run(i: int) -> Any:
        barrier.wait()
        return fn(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_twenty_threads_same_key_record_exactly_one(service: ServiceHandle) -> None:
    key = service.create_key(uid("race"))
    clients = [service.client(key) for _ in range(20)]
    try:
        body = event(idempotency_key="the-same-key", agent_id="racer", metadata={"provider_cost_usd": "1.25"})
        answers: List[Dict[str, Any]] = _barrier_run(
            20, lambda i: ok(clients[i].post("/v1/usage/events", json={**body, "quantity": i + 1}))
        )
        assert sum(a["recorded"] for a in answers) == 1
        assert len({a["event"]["id"] for a in answers}) == 1
        winner = next(a for a in answers if a["recorded"])
        assert all(a["event"] == winner["event"] for a in answers)
        with service.client(key) as api:
            assert ok(api.get("/v1/usage/events"))["total"] == 1
            summary = ok(api.get("/v1/usage/summary"))
            assert (summary["totalEvents"], summary["totalCost"]) == (1, "1.25")
            assert summary["totalQuantity"] == winner["event"]["quantity"]
    finally:
        for client in clients:
            client.close()


def test_concurrent_batches_with_overlapping_keys(service: ServiceHandle) -> None:
    key = service.create_key(uid("overlap"))
    clients = [service.client(key) for _ in range(8)]
    shared = [f"shared-{i}" for i in range(300)]
    try:

        def send(i: int) -> Dict[str, Any]:
            own = [
                event(idempotency_key=f"own-{i}-{j}", metadata={"provider_cost_usd": "0.001"})
                for j in range(50)
            ]
            mine = [event(idempotency_key=k, metadata={"provider_cost_usd": "0.001"}) for k in shared]
            ordered = mine[i * 37 % 300 :] + own + mine[: i * 37 % 300]  # every thread in a different order
            return ok(clients[i].post("/v1/usage/events/batch", json={"events": ordered}))

        answers = _barrier_run(8, send)
        assert sum(a["recorded_count"] for a in answers) == 300 + 8 * 50
        assert sum(a["skipped_count"] for a in answers) == 7 * 300
        with service.client(key) as api:
            summary = ok(api.get("/v1/usage/summary"))
            assert summary["totalEvents"] == 700 and summary["totalCost"] == "0.7"
    finally:
        for client in clients:
            client.close()


def test_concurrent_end_user_creation_same_external_id(service: ServiceHandle) -> None:
    key = service.create_key(uid("eu-race"))
    clients = [service.client(key) for _ in range(10)]
    try:
        statuses = _barrier_run(
            10, lambda i: clients[i].post("/v1/end_users", json={"external_id": "same"}).status_code
        )
        assert sorted(statuses) == [201] + [409] * 9
    finally:
        for client in clients:
            client.close()
