"""Issue 10: a spool that stops being usable, and a spool that grew during an outage.

- The spool file deleted while the process runs: SQLite would go on writing into the unlinked file and
  everything would vanish with the process. The exporter notices, creates a new spool file and moves
  the queue into it, and warns.
- The disk full (RLIMIT_FSIZE in a producer): the queue goes into bounded memory, with a warning and
  ``stats()["store"]``, and delivery goes on instead of stalling.
- After a long outage the spool file is large; once the backlog is delivered the space is given back.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterator

import pytest

import bearlumen
from bearlumen.metering.record import emit
from tests.delivery.harness import FAST, assert_exactly, ids, new_prefix, wait_until
from tests.delivery.producer import llm_call
from tests.support.faultproxy import FaultProxy


@pytest.fixture
def outage(tenant: Any) -> Iterator[FaultProxy]:
    with FaultProxy(tenant.service.base_url, default="503") as proxy:
        yield proxy
    bearlumen.uninstrument(5)


def spool_bytes(path: str) -> int:
    return sum(os.path.getsize(path + suffix) for suffix in ("", "-wal") if os.path.exists(path + suffix))


def test_deleted_spool_file_is_recreated_and_loses_nothing(
    tenant: Any, outage: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prefix, path = new_prefix(), str(tmp_path / "spool.db")
    bearlumen.instrument(api_key=tenant.key, base_url=outage.url, integrations=[], spool=path, **FAST)
    for i in range(20):
        emit(llm_call(prefix, i))
    assert wait_until(lambda: bearlumen.stats()["spooled"] == 20)
    for suffix in ("", "-wal", "-shm"):  # e.g. a cleanup job, or a tmpfs wiped
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    with caplog.at_level(logging.WARNING, logger="bearlumen"):
        for i in range(20, 40):
            emit(llm_call(prefix, i))
        assert wait_until(lambda: bearlumen.stats()["spooled"] == 40)
    stats = bearlumen.stats()
    bearlumen.uninstrument(1)  # the process ends while the service is still down: all 40 stay on disk
    outage.default = "pass"  # the next process on that spool, with the service back
    bearlumen.instrument(api_key=tenant.key, base_url=outage.url, integrations=[], spool=path, **FAST)
    assert bearlumen.flush(60) is True
    assert_exactly(tenant.client, ids(prefix, 40))
    assert (stats.get("store"), stats.get("spool_fallbacks"), stats["pending"]) == ("spool", 1, 40)
    assert any("a new spool file was created" in r.getMessage() for r in caplog.records)


def test_spool_gives_its_space_back_once_drained(tenant: Any, outage: FaultProxy, tmp_path: Path) -> None:
    prefix, path = new_prefix(), str(tmp_path / "spool.db")
    bearlumen.instrument(api_key=tenant.key, base_url=outage.url, integrations=[], spool=path, **FAST)
    for i in range(4000):
        emit(llm_call(prefix, i))
    assert wait_until(lambda: bearlumen.stats()["spooled"] == 4000)
    grown = spool_bytes(path)
    assert grown > 1_000_000
    outage.default = "pass"  # the outage ends
    assert bearlumen.flush(120) is True
    assert wait_until(lambda: spool_bytes(path) < grown // 4, timeout=30)
    assert_exactly(tenant.client, ids(prefix, 4000))


def test_disk_full_switches_to_memory_instead_of_stalling(tenant: Any, tmp_path: Path) -> None:
    from tests.delivery.harness import spawn_producer, stats_lines

    path = str(tmp_path / "spool.db")
    with FaultProxy(tenant.service.base_url, default="503") as proxy:
        cfg = {
            "mode": "diskfull",
            "prefix": new_prefix(),
            "api_key": tenant.key,
            "base_url": proxy.url,
            "spool": path,
            "calls": 100,
            "options": FAST,
        }
        producer = spawn_producer(cfg)
        assert producer.stdout is not None
        line = producer.stdout.readline()
        assert line.strip() == "ready", producer.stderr.read() if producer.stderr else line
        proxy.default = "pass"
        out, err = producer.communicate(input="go\n", timeout=120)
    assert producer.returncode == 0, err[-3000:]
    assert "cannot keep events" in err  # the warning
    lines = stats_lines(out)
    assert {"flush": True, "store": "memory (spool unusable)"} in lines
    assert_exactly(tenant.client, ids(cfg["prefix"], 200))
