"""Issue 10, one test per situation: every billable call recorded exactly once by the real service (counted
by idempotency key / response id), or, where an event truly cannot be accepted, quarantined and reported.

Everything goes through the public API: ``bearlumen.instrument()``, scopes, ``emit`` (the path every
integration's patch uses), ``bearlumen.flush()`` and ``bearlumen.stats()``; the service is the real one
over HTTP. The one fault the service cannot give on cue (a 5xx for one particular event) comes from the
FaultProxy, which answers 500 to every batch that holds that event and passes everything else through.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner

import bearlumen
from bearlumen.cli import main as cli
from bearlumen.delivery.spool import Spool
from bearlumen.metering.record import emit
from tests.delivery.harness import FAST, all_events, assert_exactly, ids, new_prefix
from tests.delivery.producer import llm_call
from tests.support.faultproxy import FaultProxy, SeenRequest


@pytest.fixture
def instrument(tmp_path: Path) -> Iterator[Any]:
    def start(api_key: str, base_url: str, **options: Any) -> str:
        spool = str(tmp_path / "spool.db")
        bearlumen.instrument(
            api_key=api_key, base_url=base_url, integrations=[], spool=spool, **{**FAST, **options}
        )
        return spool

    try:
        yield start
    finally:
        bearlumen.uninstrument(5)


def test_usage_for_an_end_user_not_registered_yet_is_recorded(tenant: Any, instrument: Any) -> None:
    prefix = new_prefix()
    instrument(tenant.key, tenant.service.base_url)
    with bearlumen.end_user("signup_42"):
        for i in range(5):
            emit(llm_call(prefix, i))
    with bearlumen.subscription("sub_not_created_yet"):
        emit(llm_call(prefix, 5))
    assert bearlumen.flush(60) is True
    events = assert_exactly(tenant.client, ids(prefix, 6))
    stats = bearlumen.stats()
    assert (stats["delivered"], stats["quarantined"], stats["dropped_invalid"]) == (6, 0, 0)
    (user,) = tenant.client.end_users.list()["endUsers"]
    assert user["externalId"] == "signup_42" and user["metadata"] == {"registered_by": "usage"}
    by_id = {e["metadata"]["response_id"]: e for e in events}
    assert {by_id[f"{prefix}-{i}"]["endUserId"] for i in range(5)} == {user["id"]}
    assert by_id[f"{prefix}-5"]["subscriptionId"] == "sub_not_created_yet"


def test_host_clock_six_minutes_fast(tenant: Any, instrument: Any) -> None:
    prefix = new_prefix()
    instrument(tenant.key, tenant.service.base_url)
    for i in range(10):
        call = llm_call(prefix, i)
        call.timestamp = time.time() + 6 * 60
        emit(call)
    assert bearlumen.flush(60) is True
    events = assert_exactly(tenant.client, ids(prefix, 10))
    assert bearlumen.stats()["quarantined"] == 0
    for event in events:  # re-stamped by the service, the client's own time kept
        sent = datetime.fromisoformat(event["metadata"]["client_timestamp"])
        stamped = datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))
        assert timedelta(minutes=5) < sent - stamped < timedelta(minutes=7)


def test_one_event_answered_5xx_is_isolated_quarantined_and_resent(tenant: Any, instrument: Any) -> None:
    prefix = new_prefix()
    poison = f'"{prefix}-7"'.encode()
    broken = {"on": True}

    def answer(seen: SeenRequest) -> str:  # the service fails on this one event (e.g. a rollup overflow)
        return "500" if broken["on"] and poison in seen.body else "pass"

    with FaultProxy(tenant.service.base_url, default=answer) as proxy:
        spool = instrument(tenant.key, proxy.url)
        for i in range(30):
            emit(llm_call(prefix, i))
        result = bearlumen.flush(60)
        assert_exactly(tenant.client, [i for i in ids(prefix, 30) if i != f"{prefix}-7"])
        assert not result and result.complete and (result.quarantined, result.dropped) == (1, 0)
        stats = bearlumen.stats()
        assert (stats["delivered"], stats["quarantined"], stats["quarantine"], stats["pending"]) == (
            29,
            1,
            1,
            0,
        )
        assert stats["last_invalid"]["code"] == "server_error"

        listing = CliRunner().invoke(cli, ["spool", "list", "--spool", spool])
        assert listing.exit_code == 0, listing.output
        assert "0 event(s) queued, 1 quarantined" in listing.output
        assert "server_error" in listing.output and stats["last_invalid"]["idempotency_key"] in listing.output

        broken["on"] = False  # the service is fixed: resend it
        bearlumen.uninstrument(5)
        retried = CliRunner().invoke(
            cli,
            ["spool", "retry", "--all", "--spool", spool, "--api-key", tenant.key, "--base-url", proxy.url],
        )
        assert retried.exit_code == 0, retried.output
        assert "delivered 1," in retried.output
    assert_exactly(tenant.client, ids(prefix, 30))
    listing = CliRunner().invoke(cli, ["spool", "list", "--spool", spool])
    assert "0 event(s) queued, 0 quarantined" in listing.output


@pytest.mark.parametrize("status", ["502", "503", "504"])
def test_one_event_meeting_a_busy_service_is_never_quarantined(
    tenant: Any, instrument: Any, status: str
) -> None:
    """503 `unavailable` (a locked database under load), 502/504 from a gateway: about the service, never
    about the event. Even when one event meets them again and again while the others get through, it
    waits and is delivered once the service answers, with nothing quarantined."""
    prefix = new_prefix()
    poison = f'"{prefix}-3"'.encode()
    busy = {"left": 40}

    def answer(seen: SeenRequest) -> str:
        if poison in seen.body and busy["left"] > 0:
            busy["left"] -= 1
            return status
        return "pass"

    with FaultProxy(tenant.service.base_url, default=answer) as proxy:
        instrument(tenant.key, proxy.url)
        for i in range(12):
            emit(llm_call(prefix, i))
        result = bearlumen.flush(90)
        assert busy["left"] == 0  # it did meet every one of them
        assert result is True, result
        stats = bearlumen.stats()
        assert (stats["quarantined"], stats["quarantine"], stats["pending"]) == (0, 0, 0)
    assert_exactly(tenant.client, ids(prefix, 12))


def test_quarantined_event_can_be_dropped_on_purpose(tenant: Any, instrument: Any) -> None:
    prefix = new_prefix()
    spool = instrument(tenant.key, tenant.service.base_url)
    bad = llm_call(prefix, 0)
    bad.timestamp = -3600.0  # before 1970: can never be valid
    emit(bad)
    emit(llm_call(prefix, 1))
    result = bearlumen.flush(60)
    assert not result and result.quarantined == 1
    key = bearlumen.stats()["last_invalid"]["idempotency_key"]
    bearlumen.uninstrument(5)
    refused = CliRunner().invoke(cli, ["spool", "drop", key, "--spool", spool])
    assert refused.exit_code != 0 and "--yes" in refused.output  # never by accident
    dropped = CliRunner().invoke(cli, ["spool", "drop", key, "--spool", spool, "--yes"])
    assert dropped.exit_code == 0 and "1 quarantined event(s) dropped" in dropped.output
    assert "0 quarantined" in CliRunner().invoke(cli, ["spool", "list", "--spool", spool]).output
    assert [e["metadata"]["response_id"] for e in all_events(tenant.client)] == [f"{prefix}-1"]


def test_another_tenants_end_user_id_is_quarantined_not_registered(tenant: Any, instrument: Any) -> None:
    prefix = new_prefix()
    instrument(tenant.key, tenant.service.base_url)
    with bearlumen.end_user("eu_" + "0" * 24):  # shaped like an id the service issued: never registered
        emit(llm_call(prefix, 0))
    emit(llm_call(prefix, 1))
    result = bearlumen.flush(60)
    assert_exactly(tenant.client, [f"{prefix}-1"])
    assert not result and result.complete and result.quarantined == 1 and result.deferred == 0
    assert bearlumen.stats()["last_invalid"]["code"] == "not_found"
    assert tenant.client.end_users.list()["endUsers"] == []


def test_corrupt_spooled_rows_are_quarantined_never_sent(
    tenant: Any, instrument: Any, tmp_path: Path
) -> None:
    """The sender puts the spooled JSON texts into the batch as they are (joined, not re-encoded): a row
    that is not one JSON object (the file was edited) must be set aside, never sent, never lost. One
    holding two objects would otherwise be two events on the wire; NaN is not JSON the service reads."""
    prefix = new_prefix()
    corrupt = {
        f"{prefix}-truncated": '{"event_type": "token_usage", "quantity": 1',
        f"{prefix}-two": '{"idempotency_key": "a"},{"idempotency_key": "b"}',
        f"{prefix}-nan": '{"quantity": NaN}',
        f"{prefix}-array": "[]",
    }
    spool_path = str(tmp_path / "spool.db")
    edited = Spool(spool_path)
    edited.append(list(corrupt.items()))
    edited.close()
    assert instrument(tenant.key, tenant.service.base_url) == spool_path
    for i in range(5):
        emit(llm_call(prefix, i))
    result = bearlumen.flush(60)
    assert not result and (result.quarantined, result.pending) == (4, 0)
    assert_exactly(tenant.client, ids(prefix, 5))  # the five good events, once each, nothing else
    stats = bearlumen.stats()
    assert (stats["delivered"], stats["quarantined"], stats["dropped_invalid"]) == (5, 4, 4)
    bearlumen.uninstrument(5)
    kept = Spool(spool_path)
    try:
        assert {(key, code, body) for key, code, _, _, body in kept.quarantined()} == {
            (key, "corrupt", body) for key, body in corrupt.items()
        }
    finally:
        kept.close()
