"""Replicas: several ``bearlumen serve`` processes on one PostgreSQL database, and ``--workers N``.

Three processes start at once on a fresh, empty database (their migrations and first-key bootstraps race),
then the same events go through all of them concurrently, each event several times (in other batches, in
another order, inside one batch, and alone): each is stored exactly once, every duplicate is answered as one
with the stored event's id, and every rollup's totals equal the raw events' totals to the last digit.
"""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import orjson
import pytest
from sqlalchemy import select

from bearlumen.server.db import Database
from bearlumen.server.keys import list_keys
from bearlumen.server.migrate import current_revision, head_revision
from bearlumen.server.money import LIMB
from bearlumen.server.schema import ROLLUP_SUMS, usage_events
from bearlumen.server.usage.rollups import ROLLUPS
from tests.server.helpers import event, ok
from tests.support.service import (
    ServiceHandle,
    drop_postgres_database,
    new_postgres_database,
    postgres_available,
)

EVENTS = 1200
MODELS = ("gpt-4o", "claude-sonnet-4-5", "gemini-2.5-pro")


@pytest.fixture
def empty_pg() -> Iterator[str]:
    if not postgres_available():
        pytest.fail("PostgreSQL is not reachable")
    url = new_postgres_database()
    yield url
    drop_postgres_database(url)


def _start_together(handles: List[ServiceHandle]) -> None:
    """Start every process at the same instant (their startups race on the empty database)."""
    barrier = threading.Barrier(len(handles))

    def start(handle: ServiceHandle) -> None:
        barrier.wait()
        handle.start()

    with ThreadPoolExecutor(len(handles)) as pool:
        list(pool.map(start, handles))


def _replicas(url: str, tmp_path: Path, count: int, args: Tuple[str, ...] = ()) -> List[ServiceHandle]:
    handles = []
    for i in range(count):
        workdir = tmp_path / f"replica{i}"
        workdir.mkdir()
        key_file = str(workdir / "first-key")
        handles.append(
            ServiceHandle(
                url,
                "",  # set from the bootstrap key file once a replica has made the first key
                rate_limit=None,
                env=None,
                workdir=workdir,
                owns_workdir=False,
                args=["--bootstrap-key-file", key_file, *args],
            )
        )
    return handles


def _events() -> List[Dict[str, Any]]:
    rng = random.Random(16)
    events = []
    for i in range(EVENTS):
        metadata: Dict[str, Any] = {"model": MODELS[i % 3]}
        if i % 10 == 0:
            metadata["pricing_status"] = "unpriced"
        elif i % 7 == 0:  # large: a rollup bucket's cost sum passes 2**63 pico and carries
            metadata["provider_cost_usd"] = f"{rng.randint(100_000, 999_999)}.{rng.randrange(10**12):012d}"
        else:
            metadata["provider_cost_usd"] = f"0.{rng.randrange(10**12):012d}"
        events.append(
            event(
                idempotency_key=f"replica-{i}",
                quantity=Decimal(f"{rng.randint(0, 10**9)}.{rng.randrange(10**6):06d}"),  # sent exact
                agent_id=f"agent-{i % 7}",
                workflow_id=f"workflow-{i % 5}",
                metadata=metadata,
            )
        )
    return events


def _plans(events: List[Dict[str, Any]], replicas: int) -> List[List[List[Dict[str, Any]]]]:
    """Per replica, its batches: all events, cut at other places and in another order per replica; some
    batches hold a key twice."""
    plans = []
    for r in range(replicas):
        order = list(events)
        random.Random(r).shuffle(order)
        size = 97 + 61 * r
        batches = [order[i : i + size] for i in range(0, len(order), size)]
        for batch in batches[::3]:
            batch.append(batch[0])  # a key repeated inside one batch counts once
        plans.append(batches)
    return plans


def _send(handles: List[ServiceHandle], key: str, events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Every plan's batches, two threads per replica, all at once; plus single events through each one.
    Returns (key, recorded, id) of every answer."""
    plans = _plans(events, len(handles))
    jobs: List[Tuple[ServiceHandle, str, Any]] = []
    for handle, batches in zip(handles, plans):
        jobs += [(handle, "/v1/usage/events/batch", {"events": batch}) for batch in batches]
    for i, handle in enumerate(handles):
        jobs += [(handle, "/v1/usage/events", e) for e in events[i * 40 : i * 40 + 120]]
    random.Random(7).shuffle(jobs)
    clients = {id(h): [h.client(key) for _ in range(2)] for h in handles}
    barrier = threading.Barrier(2 * len(handles))

    def worker(handle: ServiceHandle, lane: int) -> List[Dict[str, Any]]:
        answers = []
        mine = [(path, body) for h, path, body in jobs if h is handle][lane::2]
        client = clients[id(handle)][lane]
        barrier.wait()
        for path, body in mine:
            answer = ok(client.post(path, content=orjson.dumps(body, default=_exact)))
            if path.endswith("/batch"):
                answers += [
                    {"key": r["idempotencyKey"], "recorded": r["recorded"], "id": r["id"]}
                    for r in answer["results"]
                ]
            else:
                answers.append(
                    {
                        "key": answer["idempotencyKey"],
                        "recorded": answer["recorded"],
                        "id": answer["event"]["id"],
                    }
                )
        return answers

    try:
        with ThreadPoolExecutor(2 * len(handles)) as pool:
            futures = [pool.submit(worker, h, lane) for h in handles for lane in range(2)]
            return [a for f in futures for a in f.result()]
    finally:
        for pair in clients.values():
            for client in pair:
                client.close()


def _exact(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # a JSON number with exactly these digits
    raise TypeError(type(value).__name__)


def _expected_totals(events: List[Dict[str, Any]]) -> Tuple[int, int, int, int]:
    """(events, priced, cost in pico-USD, quantity in micro-units) of what was sent, in exact decimals."""
    priced = [e for e in events if "provider_cost_usd" in e["metadata"]]
    cost = sum(Decimal(e["metadata"]["provider_cost_usd"]) for e in priced) * 10**12
    quantity = sum(Decimal(e["quantity"]) for e in events) * 10**6
    return len(events), len(priced), int(cost), int(quantity)


def _stored_totals(url: str, tenant_id: int) -> List[Tuple[int, int, int, int]]:
    """The raw events' totals, then each rollup's, read from the database."""
    db = Database(url)
    try:

        def read(conn: Any) -> List[Tuple[int, int, int, int]]:
            rows = conn.execute(
                select(usage_events.c.cost_pico, usage_events.c.quantity_micro).where(
                    usage_events.c.tenant_id == tenant_id
                )
            ).all()
            totals = [
                (
                    len(rows),
                    sum(1 for cost, _ in rows if cost is not None),
                    sum(cost or 0 for cost, _ in rows),
                    sum(quantity for _, quantity in rows),
                )
            ]
            for rollup in ROLLUPS:
                t = rollup.table
                sums = [0, 0, 0, 0]
                for row in conn.execute(select(t).where(t.c.tenant_id == tenant_id)).mappings():
                    sums[0] += row["event_count"]
                    sums[1] += row["priced_count"]
                    for i, m in enumerate(ROLLUP_SUMS, start=2):
                        sums[i] += row[m] + row[f"{m}_hi"] * LIMB
                totals.append((sums[0], sums[1], sums[2], sums[3]))
            return totals

        return db.read(read)
    finally:
        db.close()


def test_three_replicas_started_together_store_each_event_once(empty_pg: str, tmp_path: Path) -> None:
    handles = _replicas(empty_pg, tmp_path, 3)
    try:
        _start_together(handles)
        # Migrations raced and one ran; the first-key bootstraps raced and one made a key.
        db = Database(empty_pg)
        try:
            assert current_revision(db) == head_revision()
            keys = db.read(list_keys)
        finally:
            db.close()
        assert [k.tenant for k in keys] == ["default"]
        key_files = [h.workdir / "first-key" for h in handles if (h.workdir / "first-key").exists()]
        assert len(key_files) == 1
        key = key_files[0].read_text().strip()

        events = _events()
        answers = _send(handles, key, events)

        sent = sum(len(batch) for plan in _plans(events, 3) for batch in plan) + 3 * 120
        assert len(answers) == sent
        by_key: Dict[str, List[Dict[str, Any]]] = {}
        for answer in answers:
            by_key.setdefault(answer["key"], []).append(answer)
        assert sorted(by_key) == sorted(e["idempotency_key"] for e in events)
        for key_answers in by_key.values():
            assert (
                sum(a["recorded"] for a in key_answers) == 1
            )  # one answer recorded it, all others: duplicate
            assert len({a["id"] for a in key_answers}) == 1  # and every answer names the same stored event

        tenant_id = _tenant_id(empty_pg)
        expected = _expected_totals(events)
        stored = _stored_totals(empty_pg, tenant_id)
        assert stored[0] == expected  # exactly EVENTS events, to the last pico-dollar and micro-unit
        assert stored[1:] == [expected] * len(ROLLUPS)  # every rollup equals the raw totals
        assert expected[2] > 2**63  # the sums really carried past one 64-bit integer
        with handles[2].client(key) as api:
            summary = ok(api.get("/v1/usage/summary", params={"start_date": "1970-01-01"}))
        assert summary["totalEvents"] == EVENTS
        assert Decimal(summary["totalCost"]) * 10**12 == expected[2]
    finally:
        for handle in handles:
            handle.close()


def _tenant_id(url: str) -> int:
    from bearlumen.server.schema import tenants

    db = Database(url)
    try:
        return int(
            db.read(lambda c: c.execute(select(tenants.c.id).where(tenants.c.name == "default")).scalar_one())
        )
    finally:
        db.close()


def _children(pid: int) -> List[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_workers_serve_one_database(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("empty_pg") if backend == "postgresql" else f"sqlite:///{tmp_path}/w.db"
    (handle,) = _replicas(url, tmp_path, 1, ("--workers", "2"))
    try:
        handle.start()
        handle.api_key = (handle.workdir / "first-key").read_text().strip()
        assert handle.pid is not None
        workers = [
            p for p in _children(handle.pid) if Path(f"/proc/{p}/cmdline").read_bytes().find(b"spawn") > 0
        ]
        assert len(workers) == 2
        events = _events()[:600]
        answers = _send([handle], handle.api_key, events)
        by_key: Dict[str, int] = {}
        for answer in answers:
            by_key[answer["key"]] = by_key.get(answer["key"], 0) + answer["recorded"]
        assert sorted(by_key) == sorted(e["idempotency_key"] for e in events)
        assert set(by_key.values()) == {1}
        stored = _stored_totals(url, _tenant_id(url))
        assert stored == [_expected_totals(events)] * (1 + len(ROLLUPS))
        handle.stop()
        assert not handle.running and "Bear Lumen stopped." in handle.log()
        assert all(not Path(f"/proc/{p}").exists() for p in workers)
    finally:
        handle.close()


DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_deployment_files_name_real_options_and_every_replica() -> None:
    """deploy/ is not run by the tests (no image downloads): check it names options and hosts that exist."""
    import json
    import re

    import click
    import yaml

    from bearlumen.cli import serve

    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    replicas = sorted(name for name, spec in services.items() if "build" in spec)
    assert len(replicas) == 3
    entrypoint = next(
        json.loads(line.split(" ", 1)[1])
        for line in (DEPLOY / "Dockerfile").read_text().splitlines()
        if line.startswith("ENTRYPOINT")
    )
    assert entrypoint[:2] == ["bearlumen", "serve"]
    envvars = {p.envvar for p in serve.params if isinstance(p, click.Option) and p.envvar}
    for name in replicas:
        spec = services[name]
        serve.make_context("serve", [*entrypoint[2:], *spec["command"]])  # raises on an unknown option
        assert set(spec["environment"]) <= envvars
        url = spec["environment"]["BEARLUMEN_DATABASE_URL"]
        assert re.fullmatch(r"postgresql://bearlumen:[^@]+@postgres:5432/bearlumen", url)
        assert spec["depends_on"]["postgres"]["condition"] == "service_healthy"
    caddy = (DEPLOY / "Caddyfile").read_text()
    upstreams = re.search(r"reverse_proxy ([^{]+)\{", caddy)
    assert upstreams is not None
    assert sorted(upstreams.group(1).split()) == [f"{name}:8787" for name in replicas]
    assert "health_uri /readyz" in caddy
