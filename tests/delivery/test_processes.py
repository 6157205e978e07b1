"""Delivery across real processes: exit, fork, kill -9, several processes on one spool, prefork pools."""

from __future__ import annotations

import json
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List

import pytest

from tests.delivery.harness import (
    BATCH_PATH,
    FAST,
    assert_exactly,
    batch_keys,
    finish_producer,
    ids,
    new_prefix,
    run_producer,
    spawn_producer,
    spool_pending,
    wait_until,
)
from tests.support.faultproxy import FaultProxy


def leased_rows(path: str) -> int:
    conn = sqlite3.connect(path)
    try:
        found = conn.execute("SELECT COUNT(*) FROM events WHERE lease_until > ?", (time.time(),))
        return int(found.fetchone()[0])
    finally:
        conn.close()


@pytest.fixture
def proxy(tenant: Any) -> Iterator[FaultProxy]:
    with FaultProxy(tenant.service.base_url) as fault_proxy:
        yield fault_proxy


def config(tenant: Any, base_url: str, spool: Any, **extra: Any) -> Dict[str, Any]:
    return {"api_key": tenant.key, "base_url": base_url, "spool": spool, "prefix": new_prefix(), **extra}


@pytest.mark.parametrize("spool", ["file", "memory"])
def test_interpreter_exit_flushes_queued_events(tenant: Any, tmp_path: Path, spool: str) -> None:
    path = str(tmp_path / "spool.db")
    # 10 s between batches and between spool commits: at exit the events are certainly still queued (in
    # memory, not even in the spool); the exit must deliver them.
    options = {**FAST, "send_interval": 10.0, "commit_interval": 10.0, "shutdown_timeout": 30.0}
    cfg = config(
        tenant, tenant.service.base_url, path if spool == "file" else False, calls=700, options=options
    )
    [line] = run_producer({**cfg, "records": 5})
    assert line["stats"]["delivered"] == 700 and line["stats"]["pending"] == 0
    if spool == "file":
        assert spool_pending(path) == 0  # delivered by the exiting process itself, not left over
    assert_exactly(tenant.client, ids(cfg["prefix"], 700), [f"{cfg['prefix']}-rec-{j}" for j in range(5)])


def test_fork_with_events_in_flight(tenant: Any, proxy: FaultProxy, tmp_path: Path) -> None:
    proxy.default = lambda seen: "503" if random.random() < 0.3 else "pass"
    cfg = config(tenant, proxy.url, str(tmp_path / "spool.db"), mode="fork", calls=300, child_calls=200)
    cfg["options"] = {**FAST, "commit_interval": 10.0}  # in flight = still in the parent's memory
    lines = run_producer(cfg)
    assert len(lines) == 2  # parent and child each shut their own exporter down
    by_pid = sorted(lines, key=lambda line: line["stats"]["emitted"])
    assert [line["stats"]["emitted"] for line in by_pid] == [200, 600]  # the child starts from zero
    assert sum(line["stats"]["delivered"] + line["stats"]["duplicates"] for line in lines) == 800
    assert_exactly(tenant.client, ids(cfg["prefix"], 600) + ids(f"{cfg['prefix']}-child", 200))


def test_kill_9_mid_run_then_next_process_delivers_the_rest(
    tenant: Any, proxy: FaultProxy, tmp_path: Path
) -> None:
    path = str(tmp_path / "spool.db")
    # Half of the batches fail, some after the service recorded them: at the kill there are rows in the
    # spool, rows leased by the dead process, and rows recorded whose answer was lost.
    proxy.default = lambda seen: random.choice(["pass", "503", "after:503"])
    options = {**FAST, "strict": True, "send_interval": 0.05}
    cfg = config(tenant, proxy.url, path, mode="forever", options=options)
    victim = spawn_producer(cfg)
    assert victim.stdout is not None
    printed = -1
    while printed < 600:
        line = victim.stdout.readline()
        assert line, victim.stderr.read() if victim.stderr else "producer died"
        printed = int(line)
    # Freeze the victim's deliveries mid-request: its sender holds a lease (60 s) on a batch when it dies.
    seen_before = len(proxy.requests_seen)
    proxy.default = "hang"
    assert wait_until(lambda: any(r.action == "hang" for r in proxy.requests_seen[seen_before:]))
    victim.send_signal(signal.SIGKILL)
    rest, _ = victim.communicate(timeout=30)
    for line in rest.splitlines():  # what it printed before dying
        if line.strip().isdigit():
            printed = int(line)
    assert victim.returncode == -signal.SIGKILL
    assert spool_pending(path) > 0 and leased_rows(path) > 0  # a dead owner's lease, far from expiry
    assert {"503", "after:503"} & {r.action for r in proxy.requests_seen}
    # the next process on the same spool, with a healthy service
    proxy.default = "pass"
    drain = config(tenant, proxy.url, path, mode="run", calls=0, options={**FAST, "shutdown_timeout": 60.0})
    finish_producer(spawn_producer(drain))
    assert spool_pending(path) == 0
    # every call whose submit returned (strict: it was in the spool) is there exactly once; at most one
    # more (submitted, killed before it printed)
    prefix = cfg["prefix"]
    events = tenant.client.usage.query(limit=1)["total"]
    assert events in (printed + 1, printed + 2)
    assert_exactly(tenant.client, ids(prefix, events))


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_processes_sharing_one_spool(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> None:
    """Three processes, one spool, LLM calls and direct usage.record calls, faults; on both backends."""
    tenant = request.getfixturevalue("tenant" if backend == "sqlite" else "pg_tenant")
    with FaultProxy(tenant.service.base_url) as proxy:
        shared_spool(tenant, proxy, str(tmp_path / "shared.db"))


def shared_spool(tenant: Any, proxy: FaultProxy, path: str) -> None:
    proxy.default = lambda seen: (
        "503" if random.random() < 0.2 else ("after:503" if random.random() < 0.1 else "pass")
    )
    configs = [config(tenant, proxy.url, path, calls=400, records=10, options=FAST) for _ in range(3)]
    procs = [spawn_producer(cfg) for cfg in configs]
    lines = [line for proc in procs for line in finish_producer(proc)]
    assert sum(line["stats"]["emitted"] for line in lines) == 1200
    assert sum(1 for r in proxy.requests_seen if r.action == "503") > 0  # the faults did happen
    expected = [i for cfg in configs for i in ids(cfg["prefix"], 400)]
    records = [f"{cfg['prefix']}-rec-{j}" for cfg in configs for j in range(10)]
    assert_exactly(tenant.client, expected, records)
    # Leases: no two processes ever sent the same event at the same time. An event is in exactly one
    # batch that the service answered normally; any other batch holding it failed first.
    delivered_in: Counter[str] = Counter()
    for seen in proxy.requests_seen:
        if seen.path.startswith(BATCH_PATH) and seen.action == "pass" and seen.upstream_status == 200:
            delivered_in.update(batch_keys(seen))
    assert len(delivered_in) == 1200 and set(delivered_in.values()) == {1}
    assert spool_pending(path) == 0


def test_prefork_workers_gunicorn_and_celery_style(tenant: Any, proxy: FaultProxy, tmp_path: Path) -> None:
    """instrument() in the master, events in flight, then worker processes forked (multiprocessing, fork
    start method, as gunicorn --preload and celery's prefork pool do); workers leave through os._exit."""
    proxy.default = lambda seen: "503" if random.random() < 0.2 else "pass"
    cfg = config(
        tenant, proxy.url, str(tmp_path / "spool.db"), mode="prefork", calls=150, workers=3, worker_calls=250
    )
    # Workers' events stay in their memory (10 s commit window) until the pool's exit hook flushes them.
    cfg["options"] = {**FAST, "commit_interval": 10.0}
    run_producer(cfg)
    expected: List[str] = ids(cfg["prefix"], 150)
    for k in range(3):
        expected += ids(f"{cfg['prefix']}-w{k}", 250)
    assert_exactly(tenant.client, expected)


def test_billiard_pool_celery_prefork(tenant: Any, proxy: FaultProxy, tmp_path: Path) -> None:
    """Celery's prefork pool is billiard: the same fork + os._exit life as multiprocessing."""
    import billiard  # noqa: F401  (a dev dependency: the test must run, never skip)

    proxy.default = lambda seen: "503" if random.random() < 0.2 else "pass"
    cfg = config(
        tenant, proxy.url, str(tmp_path / "spool.db"), mode="billiard", calls=100, workers=3, tasks=6
    )
    cfg.update(worker_calls=120, options={**FAST, "commit_interval": 10.0})
    lines = run_producer(cfg)
    assert any(len(line.get("worker_pids", [])) >= 2 for line in lines)
    expected: List[str] = ids(cfg["prefix"], 100)
    for k in range(6):
        expected += ids(f"{cfg['prefix']}-task{k}", 120)
    assert_exactly(tenant.client, expected)


def test_gunicorn_preload_with_several_workers(tenant: Any, proxy: FaultProxy, tmp_path: Path) -> None:
    """gunicorn itself: --preload (instrument() runs in the master), 3 sync workers, graceful stop."""
    import gunicorn  # noqa: F401  (a dev dependency: the test must run, never skip)
    import httpx

    from tests.delivery.harness import ROOT, producer_env

    cfg = config(tenant, proxy.url, str(tmp_path / "spool.db"), calls=50)
    cfg["options"] = {**FAST, "commit_interval": 10.0}
    proxy.default = lambda seen: "503" if random.random() < 0.2 else "pass"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**producer_env(), "BL_TEST_CONFIG": json.dumps(cfg)}
    command = [
        sys.executable, "-m", "gunicorn", "--preload", "-w", "3", "-b", f"127.0.0.1:{port}",
        "--graceful-timeout", "60", "tests.delivery.gunicorn_app:app",
    ]  # fmt: skip
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/emit"

        def up() -> bool:
            try:
                return httpx.get(url, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        assert wait_until(up, timeout=60), "gunicorn did not start"
        pids = set()
        request_ids = [f"{cfg['prefix']}-req-{n}" for n in range(300)]
        with httpx.Client(timeout=10) as http:
            for response_id in request_ids:
                answer = http.get(url, params={"id": response_id})
                assert answer.status_code == 200
                pids.add(answer.text)
        assert len(pids) >= 2  # the requests really were spread over several workers
    finally:
        server.send_signal(signal.SIGTERM)  # graceful: workers finish, exit (atexit), then the master
        output, _ = server.communicate(timeout=120)
    assert server.returncode == 0, output.decode(errors="replace")[-3000:]
    assert_exactly(tenant.client, ids(cfg["prefix"], 50) + request_ids)


def test_exit_with_the_service_hanging_is_bounded_and_keeps_the_events(
    tenant: Any, proxy: FaultProxy, tmp_path: Path
) -> None:
    """The exit flush gives up at shutdown_timeout; what it could not deliver waits in the spool."""
    path = str(tmp_path / "spool.db")
    proxy.default = "hang"  # requests are never answered
    options = {**FAST, "shutdown_timeout": 1.0, "request_timeout": 2.0}
    cfg = config(tenant, proxy.url, path, calls=250, options=options)
    [line] = run_producer(cfg, timeout=60)  # a hang guard, not a timing assertion
    assert line["stats"]["delivered"] == 0 and line["stats"]["pending"] == 250
    assert spool_pending(path) == 250
    proxy.default = "pass"
    drain = config(tenant, proxy.url, path, calls=0, options=FAST)
    run_producer(drain)
    assert spool_pending(path) == 0
    assert_exactly(tenant.client, ids(cfg["prefix"], 250))


@pytest.fixture(scope="module")
def limited_service() -> Iterator[Any]:
    from tests.support.service import start_service

    service = start_service(rate_limit=4)  # 4 requests/s per key, then 429 with Retry-After
    yield service
    service.close()


def test_the_services_own_rate_limit_storm(limited_service: Any) -> None:
    """Real 429s from the service's rate limiter (not the proxy): three busy processes, one key."""
    import bearlumen

    key = limited_service.create_key(f"limited_{new_prefix()}")
    tenant = SimpleNamespace(key=key)
    options = {**FAST, "send_interval": 0.02, "max_batch_size": 50}
    # each process on its own memory store: the limiter (one key) is what they share
    configs = [config(tenant, limited_service.base_url, False, calls=300, options=options) for _ in range(3)]
    configs[0]["records"] = 3
    lines = [line for proc in [spawn_producer(cfg) for cfg in configs] for line in finish_producer(proc)]
    assert any("RateLimitError" in str(line["stats"]["last_error"]) for line in lines)
    assert sum(line["stats"]["retries"] for line in lines) > 0
    expected = [i for cfg in configs for i in ids(cfg["prefix"], 300)]
    records = [f"{configs[0]['prefix']}-rec-{j}" for j in range(3)]

    def settled() -> bool:
        try:
            client.usage.summary()
            return True
        except bearlumen.RateLimitError:
            return False

    with bearlumen.Client(api_key=key, base_url=limited_service.base_url, max_retries=10) as client:
        assert wait_until(settled)
        assert_exactly(client, expected, records)
