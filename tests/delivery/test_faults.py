"""Delivery through real faults: the real service behind the fault proxy, or the service itself stopped,
killed and restarted. Every test ends with the "exactly these events, each once, rollups = raw" check."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest

import bearlumen
from bearlumen.delivery.exporter import Exporter
from bearlumen.metering.pricing import PriceBook
from tests.delivery.harness import (
    BATCH_PATH,
    FAST,
    assert_exactly,
    ids,
    make_exporter,
    new_prefix,
    submit_calls,
    wait_until,
)
from tests.delivery.producer import llm_call
from tests.support.faultproxy import FaultProxy


@pytest.fixture
def proxy(tenant: Any) -> Iterator[FaultProxy]:
    with FaultProxy(tenant.service.base_url) as fault_proxy:
        yield fault_proxy


def test_service_down_at_start_then_started(own_service: Any, own_tenant: Any, tmp_path: Path) -> None:
    prefix = new_prefix()
    with FaultProxy(own_service.base_url) as proxy:
        own_service.stop()
        exporter = make_exporter(own_tenant.key, proxy.url, str(tmp_path / "spool.db"))
        submit_calls(exporter, prefix, 300)
        assert not exporter.flush(1.0)  # nobody to deliver to
        assert wait_until(lambda: exporter.stats()["retries"] >= 1)
        assert exporter.stats()["pending"] == 300 and exporter.stats()["delivered"] == 0
        own_service.restart()
        proxy.upstream = own_service.base_url
        assert exporter.flush(60)
        stats = exporter.stats()
        exporter.shutdown(5)
    assert stats["delivered"] == 300 and stats["pending"] == 0 and stats["last_error"]
    assert_exactly(own_tenant.client, ids(prefix, 300))


def test_service_killed_mid_run_and_restarted(own_service: Any, own_tenant: Any, tmp_path: Path) -> None:
    prefix = new_prefix()
    with FaultProxy(own_service.base_url) as proxy:
        exporter = make_exporter(own_tenant.key, proxy.url, str(tmp_path / "spool.db"))
        submit_calls(exporter, prefix, 400)
        assert wait_until(lambda: exporter.stats()["delivered"] > 0)
        own_service.kill()  # SIGKILL: whatever was in flight is lost or recorded, we cannot know which
        submit_calls(exporter, prefix, 400, start=400)
        assert wait_until(lambda: exporter.stats()["retries"] >= 2)
        own_service.restart()
        proxy.upstream = own_service.base_url
        submit_calls(exporter, prefix, 400, start=800)
        assert exporter.flush(60)
        exporter.shutdown(5)
    assert_exactly(own_tenant.client, ids(prefix, 1200))


def test_429_storm_with_retry_after(tenant: Any, proxy: FaultProxy, tmp_path: Path) -> None:
    prefix = new_prefix()
    proxy.plan(["429:1", "429", "429:1", "429", "429", "pass", "429:1"], path_prefix=BATCH_PATH)
    exporter = make_exporter(tenant.key, proxy.url, str(tmp_path / "spool.db"), max_batch_size=200)
    submit_calls(exporter, prefix, 1000)
    assert exporter.flush(60)
    stats = exporter.stats()
    exporter.shutdown(5)
    assert stats["retries"] >= 6 and stats["delivered"] == 1000 and "RateLimitError" in stats["last_error"]
    assert_exactly(tenant.client, ids(prefix, 1000))


def test_5xx_and_lost_answers(tenant: Any, proxy: FaultProxy, tmp_path: Path) -> None:
    prefix = new_prefix()
    # "after:..." = the service recorded the batch but the answer never arrived: the resend must not double.
    proxy.plan(["503", "after:503", "500", "after:drop", "after:reset", "502"], path_prefix=BATCH_PATH)
    exporter = make_exporter(tenant.key, proxy.url, str(tmp_path / "spool.db"))
    submit_calls(exporter, prefix, 500)
    assert exporter.flush(60)
    stats = exporter.stats()
    exporter.shutdown(5)
    assert stats["retries"] >= 6 and stats["duplicates"] >= 1
    assert stats["delivered"] + stats["duplicates"] == 500
    assert_exactly(tenant.client, ids(prefix, 500))


def test_slow_answers_past_the_timeout_are_not_doubled(
    tenant: Any, proxy: FaultProxy, tmp_path: Path
) -> None:
    prefix = new_prefix()
    proxy.plan(["delay:2.5", "delay:2.5", "pass"], path_prefix=BATCH_PATH)
    exporter = make_exporter(tenant.key, proxy.url, str(tmp_path / "spool.db"), request_timeout=0.5)
    submit_calls(exporter, prefix, 300)
    assert exporter.flush(60)
    stats = exporter.stats()
    exporter.shutdown(5)
    assert stats["retries"] >= 2 and "timed out" in str(stats["last_error"])
    assert stats["duplicates"] >= 1  # the service had recorded the batch whose answer came too late
    assert_exactly(tenant.client, ids(prefix, 300))


def test_one_invalid_event_is_dropped_and_reported(
    tenant: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = new_prefix()
    exporter = make_exporter(tenant.key, tenant.service.base_url, str(tmp_path / "spool.db"))
    with caplog.at_level(logging.WARNING, logger="bearlumen"):
        submit_calls(exporter, prefix, 40)
        bad = llm_call(prefix, 40)
        bad.timestamp = -3600.0  # before 1970: can never be valid (invalid_timestamp)
        exporter.submit(bad)
        submit_calls(exporter, prefix, 40, start=41)
        result = exporter.flush(60)
        assert not result and result.complete and result.quarantined == 1
    stats = exporter.stats()
    exporter.shutdown(5)
    assert stats["dropped_invalid"] == 1 and stats["delivered"] == 80 and stats["quarantine"] == 1
    assert stats["last_invalid"]["code"] == "invalid_timestamp"
    assert stats["last_invalid"]["idempotency_key"].startswith("llm_")
    assert any("1 usage event(s) quarantined" in r.getMessage() for r in caplog.records)
    assert_exactly(tenant.client, ids(prefix, 40) + ids(prefix, 40, start=41))


def test_revoked_or_wrong_key_keeps_events_for_later(tenant: Any, tmp_path: Path) -> None:
    prefix = new_prefix()
    path = str(tmp_path / "spool.db")
    wrong = make_exporter("blm_" + "x" * 43, tenant.service.base_url, path)
    submit_calls(wrong, prefix, 50)
    assert not wrong.flush(1.0)
    assert wait_until(lambda: "AuthenticationError" in str(wrong.stats()["last_error"]))
    assert wrong.stats()["pending"] == 50 and wrong.stats()["dropped_invalid"] == 0
    wrong.shutdown(1)
    fixed = make_exporter(tenant.key, tenant.service.base_url, path)  # same spool, the right key
    assert fixed.flush(60)
    fixed.shutdown(5)
    assert_exactly(tenant.client, ids(prefix, 50))


def test_memory_stays_bounded_during_a_long_outage(tenant: Any, proxy: FaultProxy, tmp_path: Path) -> None:
    prefix = new_prefix()
    proxy.default = "503"
    exporter = make_exporter(tenant.key, proxy.url, str(tmp_path / "spool.db"), max_queue_size=500)
    peak = 0
    total = 12_000
    for start in range(0, total, 250):
        submit_calls(exporter, prefix, 250, start=start)
        peak = max(peak, len(exporter._buffer))
        assert wait_until(lambda: len(exporter._buffer) == 0)  # the writer keeps up: events go to disk
    assert wait_until(lambda: exporter.stats()["spooled"] == total)
    stats = exporter.stats()
    assert peak <= 500 and stats["dropped_queue_full"] == 0 and stats["pending"] == total
    assert stats["delivered"] == 0 and stats["retries"] >= 1
    proxy.default = "pass"  # the outage ends
    assert exporter.flush(90)
    exporter.shutdown(5)
    assert_exactly(tenant.client, ids(prefix, total))


def test_memory_only_store_is_bounded_and_drops_newest(tenant: Any, proxy: FaultProxy) -> None:
    prefix = new_prefix()
    proxy.default = "503"
    exporter = make_exporter(tenant.key, proxy.url, False, max_memory_events=2000)
    for start in range(0, 5000, 500):
        submit_calls(exporter, prefix, 500, start=start)
        assert wait_until(lambda: len(exporter._buffer) == 0)
    assert wait_until(lambda: exporter.stats()["dropped_queue_full"] == 3000)
    assert exporter.stats()["pending"] == 2000
    proxy.default = "pass"
    result = exporter.flush(60)  # everything kept is delivered, and the flush says what was dropped
    assert not result and result.complete and (result.dropped, result.pending) == (3000, 0)
    assert exporter.flush(60) is True
    exporter.shutdown(5)
    assert_exactly(tenant.client, ids(prefix, 2000))  # the oldest 2000 were kept


def test_full_spool_drops_newest_counts_and_warns(
    tenant: Any, proxy: FaultProxy, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    prefix = new_prefix()
    proxy.default = "503"
    exporter = make_exporter(tenant.key, proxy.url, str(tmp_path / "spool.db"), max_spool_events=100)
    with caplog.at_level(logging.WARNING, logger="bearlumen"):
        submit_calls(exporter, prefix, 150)
        assert wait_until(lambda: exporter.stats()["dropped_spool_full"] == 50)
    assert any("spool is full" in r.getMessage() for r in caplog.records)
    proxy.default = "pass"
    result = exporter.flush(60)
    assert not result and result.complete and result.dropped == 50
    stats = exporter.stats()
    exporter.shutdown(5)
    assert stats["spooled"] == 100 and stats["delivered"] == 100
    assert_exactly(tenant.client, ids(prefix, 100))


def test_sync_mode_delivers_before_returning_and_spools_on_failure(
    tenant: Any, proxy: FaultProxy, tmp_path: Path
) -> None:
    prefix = new_prefix()
    exporter = make_exporter(tenant.key, proxy.url, str(tmp_path / "spool.db"), sync=True)
    exporter.submit(llm_call(prefix, 0))
    assert exporter.stats()["delivered"] == 1  # before submit returned
    assert tenant.client.usage.summary()["totalEvents"] == 1
    proxy.default = "503"
    exporter.submit(llm_call(prefix, 1))  # fails: no exception, the event waits in the spool
    assert exporter.stats()["pending"] == 1
    proxy.default = "pass"
    assert exporter.flush(60)
    exporter.shutdown(5)
    assert_exactly(tenant.client, ids(prefix, 2))


def test_flush_never_hangs_and_submit_never_raises(tmp_path: Path, closed_port: int) -> None:
    exporter = make_exporter("blm_" + "y" * 43, f"http://127.0.0.1:{closed_port}", str(tmp_path / "s.db"))
    exporter.submit(None)  # type: ignore[arg-type]  # garbage in: counted, never raised
    submit_calls(exporter, new_prefix(), 5)
    assert not exporter.flush(0.5)
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(exporter.flush(0.3)))
    worker.start()
    worker.join(30)
    assert len(results) == 1 and not results[0] and not results[0].complete and results[0].pending == 5
    exporter.shutdown(0.5)
    assert exporter.stats()["build_errors"] == 1


def test_instrument_flush_and_stats(tenant: Any, tmp_path: Path) -> None:
    from bearlumen.metering.record import emit

    prefix = new_prefix()
    client = bearlumen.Client(api_key=tenant.key, base_url=tenant.service.base_url)
    bearlumen.instrument(client, integrations=[], spool=str(tmp_path / "spool.db"), send_interval=0.2)
    try:
        for i in range(25):
            emit(llm_call(prefix, i))
        assert bearlumen.flush(30)
        stats = bearlumen.stats()
    finally:
        bearlumen.uninstrument()
    assert stats["delivered"] == 25 and stats["emitted"] == 25 and stats["pending"] == 0
    assert bearlumen.stats() == {}
    assert_exactly(tenant.client, ids(prefix, 25))


def test_events_reach_the_spool_within_the_bound(tenant: Any, proxy: FaultProxy, tmp_path: Path) -> None:
    """Group commit: spooled shortly after submit (default 50 ms window); strict mode before it returns."""
    proxy.default = "503"
    path = str(tmp_path / "spool.db")
    strict = make_exporter(tenant.key, proxy.url, path, strict=True)
    prefix = new_prefix()
    for i in range(20):
        strict.submit(llm_call(prefix, i))
        assert strict.stats()["spooled"] == i + 1  # already in the file when submit returned
    proxy.default = "pass"
    assert strict.flush(60)
    strict.shutdown(5)
    assert_exactly(tenant.client, ids(prefix, 20))


def test_embedded_mode_and_a_client_closed_by_the_app(tmp_path: Path) -> None:
    """base_url=<database URL>: the service in-process. The app closing its client does not stop delivery."""
    from bearlumen.server.keys import create_api_key

    database = f"sqlite:///{tmp_path / 'usage.db'}"
    key = create_api_key(database, "embedded")
    prefix = new_prefix()
    app_client = bearlumen.Client(api_key=key, base_url=database)
    exporter = Exporter(app_client, PriceBook.from_config(None), spool=str(tmp_path / "spool.db"), **FAST)
    submit_calls(exporter, prefix, 30)
    assert exporter.flush(30)
    app_client.close()  # e.g. the app's own atexit handler ran first
    assert app_client.is_closed
    submit_calls(exporter, prefix, 30, start=30)
    assert exporter.flush(30)
    exporter.shutdown(5)
    with bearlumen.Client(api_key=key, base_url=database) as client:
        assert_exactly(client, ids(prefix, 60))


def test_default_spool_location_and_fallback_to_memory(
    tenant: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BEARLUMEN_SPOOL_DIR", str(tmp_path / "spools"))
    exporter = make_exporter(tenant.key, tenant.service.base_url, True)
    path = exporter.stats()["spool_path"]
    assert path.startswith(str(tmp_path / "spools")) and tenant.key[4:] not in path
    exporter.shutdown(1)
    (tmp_path / "not-a-dir").write_text("")
    with caplog.at_level(logging.WARNING, logger="bearlumen"):
        unusable = make_exporter(tenant.key, tenant.service.base_url, str(tmp_path / "not-a-dir" / "s.db"))
    assert unusable.stats()["spool_path"] is None  # kept in memory, and said so
    assert any("cannot open the delivery spool" in r.getMessage() for r in caplog.records)
    prefix = new_prefix()
    submit_calls(unusable, prefix, 10)
    assert unusable.flush(30)
    unusable.shutdown(1)
    assert_exactly(tenant.client, ids(prefix, 10))
