"""A producing process for the delivery tests: `python tests/delivery/producer.py '<json config>'`.

It does what an instrumented app does: `bearlumen.instrument(client, integrations=[], spool=...)`, then
emits LLMCalls through `bearlumen.metering.record.emit` (the path the openai/anthropic patches use) and
records a few events directly with `client.usage.record`. Call `i` has provider response id
`<prefix>-<i>` (so its idempotency key is fixed); record `j` has key `<prefix>-rec-<j>`.

Modes:
- "run":      emit `calls`, record `records`, then leave (no flush: interpreter exit must deliver).
- "forever":  emit calls one by one (strict mode is expected), printing each index once `submit` returned,
              until killed.
- "fork":     emit `calls`, os.fork() with them in flight; the child emits `child_calls` under another
              prefix and leaves; the parent waits for it, emits `calls` more, and leaves.
- "prefork":  like gunicorn --preload / celery prefork: instrument in the master, emit `calls`, start
              `workers` worker processes (multiprocessing, fork start method) that each emit
              `worker_calls` (prefix `<prefix>-w<k>`) and leave through os._exit (as pool workers do).
- "pool":     the idiomatic `with multiprocessing.Pool(workers) as pool: pool.map(...)` (fork): `tasks`
              tasks each emit one call (ids `<prefix>-<k>`); the block's exit terminates the workers
              with SIGTERM.
- "sigterm":  emit `calls`, print "ready" and sleep until killed (the test sends SIGTERM). With
              `app_handler`, the app installed its own SIGTERM handler first (prints "app handler",
              then os._exit(7)).
- "diskfull": emit `calls`, wait until they are spooled, then make the spool unwritable the way a full
              disk does (RLIMIT_FSIZE at the spool's current size: writes past it fail with EFBIG), emit
              `calls` more, print "ready", wait for a line on stdin, then flush (the service is back).
- "billiard": celery's own pool library: instrument in the master, emit `calls`, then a
              `billiard.Pool(workers)` runs `tasks` tasks that each emit `worker_calls` (prefix
              `<prefix>-task<k>`); the pool is closed and joined (its workers leave through os._exit).
On exit the process prints one JSON line `{"stats": ...}` (after bearlumen's own exit flush).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from decimal import Decimal
from typing import Any, Dict

import bearlumen
from bearlumen.metering.record import LLMCall, TokenUsage, emit
from bearlumen.scopes import agent, workflow


def llm_call(prefix: str, i: int) -> LLMCall:
    return LLMCall(
        integration="openai",
        provider="openai",
        operation="chat.completions",
        model_requested="gpt-4o",
        model="gpt-4o-2024-08-06",
        usage=TokenUsage(input_tokens=100 + i % 7, cache_read_tokens=i % 3, output_tokens=20 + i % 5),
        response_id=f"{prefix}-{i}",
        latency_ms=1.5,
    )


def emit_calls(prefix: str, count: int, start: int = 0, announce: bool = False) -> None:
    with workflow("delivery-tests"), agent("producer"):
        for i in range(start, start + count):
            emit(llm_call(prefix, i))
            if announce:
                print(i, flush=True)


def record_events(client: bearlumen.Client, prefix: str, count: int) -> None:
    for j in range(count):
        client.usage.record(
            event_type="api_call",
            metric_name="requests",
            quantity=1,
            idempotency_key=f"{prefix}-rec-{j}",
            agent_id="producer",
            metadata={"provider_cost_usd": str(Decimal("0.0001") * (j % 4 + 1))},
        )


def print_stats() -> None:
    print(json.dumps({"pid": os.getpid(), "stats": bearlumen.stats()}, default=str), flush=True)


def prefork_worker(config: Dict[str, Any], index: int) -> None:
    emit_calls(f"{config['prefix']}-w{index}", int(config.get("worker_calls", 0)))


def pool_task(args: Any) -> int:
    prefix, index = args
    emit_calls(prefix, 1, start=index)
    return os.getpid()


def app_sigterm_handler(signum: int, frame: Any) -> None:
    print("app handler", flush=True)
    os._exit(7)  # a hard exit, as some apps do: no atexit, nothing of bearlumen's runs after this


def trap_sigterm_inside_event_set() -> None:
    """A hand-made fault (no recording can time a signal): the next ``set()`` of the exporter's
    ``_urgent`` Event sends SIGTERM to this process while it holds that Event's lock, as when
    ``docker stop`` or ``Pool.terminate()`` lands inside ``flush()`` or an instrumented call."""
    import signal
    import time
    import types

    from bearlumen.delivery import forking

    event = forking.live()[0]._urgent

    def set_with_sigterm(self: Any) -> None:
        del self.set
        with self._cond:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)  # the handler runs here, on this thread, with the lock held
            self._flag = True
            self._cond.notify_all()

    event.set = types.MethodType(set_with_sigterm, event)


def billiard_task(args: Any) -> int:
    prefix, index, count = args
    emit_calls(f"{prefix}-task{index}", count)
    return os.getpid()


def main(config: Dict[str, Any]) -> None:
    mode = config.get("mode", "run")
    prefix = config["prefix"]
    client = bearlumen.Client(
        api_key=config["api_key"], base_url=config["base_url"], max_retries=int(config.get("max_retries", 8))
    )
    # Registered before instrument(): atexit runs it after bearlumen's own exit flush.
    atexit.register(print_stats)
    if config.get("app_handler"):
        import signal

        signal.signal(signal.SIGTERM, app_sigterm_handler)
    bearlumen.instrument(
        client, integrations=[], spool=config.get("spool", True), **config.get("options", {})
    )

    if mode == "run":
        emit_calls(prefix, int(config.get("calls", 0)))
        record_events(client, prefix, int(config.get("records", 0)))
    elif mode == "forever":
        i = 0
        while True:
            emit_calls(prefix, 1, start=i, announce=True)
            i += 1
    elif mode == "fork":
        emit_calls(prefix, int(config["calls"]))
        pid = os.fork()
        if pid == 0:
            emit_calls(f"{prefix}-child", int(config["child_calls"]))
            return  # normal exit of the child: its own atexit flush
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(3)
        emit_calls(prefix, int(config["calls"]), start=int(config["calls"]))
    elif mode == "prefork":
        import multiprocessing

        emit_calls(prefix, int(config["calls"]))  # in flight in the master when the workers fork
        context = multiprocessing.get_context("fork")
        workers = [
            context.Process(target=prefork_worker, args=(config, k)) for k in range(int(config["workers"]))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if any(worker.exitcode != 0 for worker in workers):
            sys.exit(3)
    elif mode == "pool":
        import multiprocessing

        tasks = [(prefix, k) for k in range(int(config["tasks"]))]
        with multiprocessing.get_context("fork").Pool(int(config["workers"])) as pool:
            pids = pool.map(pool_task, tasks)
        print(json.dumps({"worker_pids": sorted(set(pids))}), flush=True)
    elif mode == "sigterm":
        import time

        emit_calls(prefix, int(config["calls"]))
        print("ready", flush=True)
        while True:
            time.sleep(1)
    elif mode == "diskfull":
        import resource
        import signal
        import time

        emit_calls(prefix, int(config["calls"]))
        while bearlumen.stats()["spooled"] < int(config["calls"]):
            time.sleep(0.05)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG), no signal
        spool = str(config["spool"])
        size = sum(os.path.getsize(spool + s) for s in ("", "-wal") if os.path.exists(spool + s))
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.RLIM_INFINITY))
        emit_calls(prefix, int(config["calls"]), start=int(config["calls"]))
        while (
            bearlumen.stats()["emitted"] < 2 * int(config["calls"])
            or bearlumen.stats()["spool_fallbacks"] < 1
        ):
            time.sleep(0.05)
        print("ready", flush=True)
        sys.stdin.readline()
        result = bearlumen.flush(60)
        print(json.dumps({"flush": bool(result), "store": bearlumen.stats()["store"]}), flush=True)
    elif mode == "sigterm_in_lock":
        emit_calls(prefix, int(config["calls"]))
        trap_sigterm_inside_event_set()
        bearlumen.flush()  # inside it, the SIGTERM arrives while an Event's lock is held
        print("survived", flush=True)  # never: the process dies by SIGTERM inside flush()
    elif mode == "billiard":
        import billiard  # type: ignore[import-not-found, import-untyped, unused-ignore]

        emit_calls(prefix, int(config["calls"]))
        pool = billiard.Pool(int(config["workers"]))
        tasks = [(prefix, k, int(config["worker_calls"])) for k in range(int(config["tasks"]))]
        pids = pool.map(billiard_task, tasks)
        pool.close()
        pool.join()
        print(json.dumps({"worker_pids": sorted(set(pids))}), flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
