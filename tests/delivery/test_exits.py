"""Issue 10, exits that are not graceful: SIGTERM (``Pool.terminate()``, ``docker stop``) spools what is in
memory, then the process goes as it would have; the next process on the spool delivers it.

The producers keep their events in memory on purpose (``commit_interval`` of 60 s: the writer would
otherwise have spooled them within 50 ms), which is exactly what a SIGTERM used to lose.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Dict

from tests.delivery.harness import (
    FAST,
    assert_exactly,
    finish_producer,
    ids,
    new_prefix,
    run_producer,
    spawn_producer,
    spool_pending,
)

IN_MEMORY = {**FAST, "commit_interval": 60.0, "sigterm_timeout": 30.0}


def config(tenant: Any, spool: str, **extra: Any) -> Dict[str, Any]:
    return {
        "prefix": new_prefix(),
        "api_key": tenant.key,
        "base_url": tenant.service.base_url,
        "spool": spool,
        **extra,
    }


def test_with_pool_map_then_terminate_delivers_every_worker_call(tenant: Any, tmp_path: Path) -> None:
    cfg = config(tenant, str(tmp_path / "spool.db"), mode="pool", tasks=6, workers=2, options=IN_MEMORY)
    lines = run_producer(cfg)
    assert any("worker_pids" in line for line in lines)
    assert spool_pending(cfg["spool"]) == 0, lines
    try:
        assert_exactly(tenant.client, ids(cfg["prefix"], 6))
    except AssertionError as failure:  # each process's stats say where the missing calls went
        raise AssertionError(f"{failure}\nproducer stats: {lines}") from None


def test_sigterm_with_the_default_action_spools_then_dies_by_sigterm(tenant: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "spool.db")
    cfg = config(tenant, path, mode="sigterm", calls=25, options=IN_MEMORY)
    victim = spawn_producer(cfg)
    assert victim.stdout is not None and victim.stdout.readline().strip() == "ready"
    victim.send_signal(signal.SIGTERM)
    _, err = victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGTERM, err[-2000:]  # the default action, as without bearlumen
    assert spool_pending(path) == 25  # secured in the spool before it went
    drain = config(tenant, path, mode="run", calls=0, options=FAST)
    finish_producer(spawn_producer(drain))
    assert spool_pending(path) == 0
    assert_exactly(tenant.client, ids(cfg["prefix"], 25))


def test_sigterm_landing_inside_bearlumen_while_it_holds_a_lock_still_spools_everything(
    tenant: Any, tmp_path: Path
) -> None:
    # Securing on the signal's own thread would wait for a lock that thread holds: before the fix this
    # waited sigterm_timeout and lost every buffered call (seen at `with Pool()` exits, 3 runs in 40).
    path = str(tmp_path / "spool.db")
    options = {**IN_MEMORY, "sigterm_timeout": 3.0}
    cfg = config(tenant, path, mode="sigterm_in_lock", calls=5, options=options)
    victim = spawn_producer(cfg)
    out, err = victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGTERM, err[-2000:]  # died by the signal, as it would have
    assert "survived" not in out
    assert spool_pending(path) == 5  # every buffered call secured in the spool
    finish_producer(spawn_producer(config(tenant, path, mode="run", calls=0, options=FAST)))
    assert_exactly(tenant.client, ids(cfg["prefix"], 5))


def test_sigterm_chains_to_the_apps_own_handler(tenant: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "spool.db")
    cfg = config(tenant, path, mode="sigterm", calls=10, app_handler=True, options=IN_MEMORY)
    victim = spawn_producer(cfg)
    assert victim.stdout is not None and victim.stdout.readline().strip() == "ready"
    victim.send_signal(signal.SIGTERM)
    out, err = victim.communicate(timeout=60)
    assert victim.returncode == 7 and "app handler" in out, err[-2000:]  # the app's behaviour, unchanged
    assert spool_pending(path) == 10  # secured before the app's handler ran its os._exit()
    finish_producer(spawn_producer(config(tenant, path, mode="run", calls=0, options=FAST)))
    assert_exactly(tenant.client, ids(cfg["prefix"], 10))


def test_only_the_delivery_path_counts_as_inside_bearlumen() -> None:
    # A SIGTERM is deferred only where securing could wait for a lock the main thread holds; an app whose
    # whole main() runs under a scope decorator must still be secured and stopped at once.
    import sys

    import bearlumen
    from bearlumen.delivery import signals
    from bearlumen.delivery.exporter import Exporter

    @bearlumen.workflow("main")
    def app_main() -> Any:
        return sys._getframe()

    assert signals._inside_bearlumen(app_main()) is False
    frame = sys._getframe()
    assert signals._inside_bearlumen(frame) is False
    exporter_code = Exporter.flush.__code__
    assert any(exporter_code.co_filename.startswith(root) for root in signals._ROOTS)
