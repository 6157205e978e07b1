"""The exporter's decisions on answers that the real service gives rarely or never on cue (a 400 without
per-event details, a 400 from something that is not the service, an oversized batch, a broken price
book). The client here answers from a script; every other delivery test runs against the real service."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set

import pytest

from bearlumen._exceptions import BearLumenError, InvalidRequestError
from bearlumen.delivery.exporter import Exporter
from bearlumen.metering.pricing import PriceBook
from tests.delivery.producer import llm_call

Rule = Callable[[List[Dict[str, Any]]], Optional[BaseException]]


class ScriptedUsage:
    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.recorded: Set[str] = set()
        self.requests: List[List[str]] = []

    def record_batch(self, events: List[Dict[str, Any]]) -> Dict[str, Any]:
        self.requests.append([e["idempotency_key"] for e in events])
        error = self.rule(events)
        if error is not None:
            raise error
        results = []
        for index, event in enumerate(events):
            new = event["idempotency_key"] not in self.recorded
            self.recorded.add(event["idempotency_key"])
            results.append({"index": index, "recorded": new})
        return {"recorded_count": sum(r["recorded"] for r in results), "results": results}


class ScriptedClient:
    def __init__(self, rule: Rule) -> None:
        self.usage = ScriptedUsage(rule)


def run(tmp_path: Path, rule: Rule, count: int, prices: Any = None, **options: Any) -> tuple[Exporter, Any]:
    client = ScriptedClient(rule)
    options = {"send_interval": 0.01, "initial_backoff": 0.01, "max_backoff": 0.05, **options}
    exporter = Exporter(
        client,  # type: ignore[arg-type]
        prices or PriceBook.from_config(None),
        spool=str(tmp_path / "s.db"),
        **options,
    )
    for i in range(count):
        exporter.submit(llm_call("logic", i))
    return exporter, client.usage


def poisoned(events: List[Dict[str, Any]], marker: str = "logic-7") -> List[int]:
    return [i for i, e in enumerate(events) if e["metadata"]["response_id"] == marker]


def test_invalid_batch_drops_only_the_named_events(tmp_path: Path) -> None:
    def rule(events: List[Dict[str, Any]]) -> Optional[BaseException]:
        bad = poisoned(events)
        if not bad:
            return None
        errors = [{"index": i, "code": "invalid_quantity", "message": "no"} for i in bad]
        return InvalidRequestError("invalid", status_code=400, code="invalid_batch", errors=errors)

    exporter, usage = run(tmp_path, rule, 20)
    result = exporter.flush(10)
    assert not result and result.complete and (result.quarantined, result.dropped) == (1, 0)
    assert exporter.flush(10) is True  # nothing new since
    stats = exporter.stats()
    quarantined = exporter._store.quarantined()
    exporter.shutdown(1)
    assert stats["dropped_invalid"] == 1 and stats["delivered"] == 19 and stats["retries"] == 0
    assert stats["quarantined"] == stats["quarantine"] == 1
    assert [(q[1], q[2]) for q in quarantined] == [("invalid_quantity", "no")]
    assert len(usage.recorded) == 19


def test_a_400_without_details_is_bisected_to_the_culprit(tmp_path: Path) -> None:
    def rule(events: List[Dict[str, Any]]) -> Optional[BaseException]:
        if poisoned(events):
            return InvalidRequestError("bad body", status_code=400, code="invalid_request")
        return None

    exporter, usage = run(tmp_path, rule, 40)
    result = exporter.flush(10)
    assert not result and result.quarantined == 1
    stats = exporter.stats()
    exporter.shutdown(1)
    assert stats["dropped_invalid"] == 1 and stats["delivered"] == 39
    assert len(usage.requests) <= 2 + 2 * 6  # log2(40) halvings, not one request per event


def test_a_400_that_is_not_the_services_keeps_the_events(tmp_path: Path) -> None:
    failures = {"left": 3}

    def rule(events: List[Dict[str, Any]]) -> Optional[BaseException]:
        if failures["left"]:
            failures["left"] -= 1
            return InvalidRequestError("HTTP 400: Bad Request", status_code=400, code=None)
        return None

    exporter, _ = run(tmp_path, rule, 10)
    assert exporter.flush(10)
    stats = exporter.stats()
    exporter.shutdown(1)
    assert stats["dropped_invalid"] == 0 and stats["delivered"] == 10 and stats["retries"] == 3


def test_batch_too_large_is_split(tmp_path: Path) -> None:
    def rule(events: List[Dict[str, Any]]) -> Optional[BaseException]:
        if len(events) > 8:
            return InvalidRequestError("too large", status_code=400, code="batch_too_large")
        return None

    exporter, usage = run(tmp_path, rule, 30, max_batch_size=30)
    assert exporter.flush(10)
    stats = exporter.stats()
    exporter.shutdown(1)
    assert stats["delivered"] == 30 and stats["dropped_invalid"] == 0
    assert max(len(r) for r in usage.requests if len(r) <= 8) <= 8


def test_a_broken_price_book_still_delivers_the_event_unpriced(tmp_path: Path) -> None:
    class Broken(PriceBook):
        def price(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("boom")

    captured: List[Dict[str, Any]] = []

    def rule(events: List[Dict[str, Any]]) -> Optional[BaseException]:
        captured.extend(events)
        return None

    exporter, _ = run(tmp_path, rule, 3, prices=Broken())
    assert exporter.flush(10)
    exporter.shutdown(1)
    assert len(captured) == 3
    assert all(e["metadata"]["pricing_status"] == "unpriced" for e in captured)
    assert all("provider_cost_usd" not in e["metadata"] for e in captured)


@pytest.mark.parametrize("status", [401, 403, 404, 500, 503])
def test_other_errors_keep_events_and_retry(tmp_path: Path, status: int) -> None:
    failures = {"left": 2}

    def rule(events: List[Dict[str, Any]]) -> Optional[BaseException]:
        if failures["left"]:
            failures["left"] -= 1
            return BearLumenError("nope", status_code=status, code="authentication_failed")
        return None

    exporter, _ = run(tmp_path, rule, 5)
    assert exporter.flush(10)
    stats = exporter.stats()
    exporter.shutdown(1)
    assert stats["delivered"] == 5 and stats["dropped_invalid"] == 0 and stats["retries"] == 2
