"""Retries, proven on a real service behind a fault-injecting proxy: the first attempts fail (some after
the service processed them) and every event still ends up recorded exactly once."""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterator

import pytest

import bearlumen._http
from bearlumen import BearLumenError, DuplicateCustomerError, InvalidRequestError, NetworkError, NotFoundError
from tests.sdk.conftest import LoopThread, build_client, new_tenant
from tests.support.faultproxy import FaultProxy


@pytest.fixture(autouse=True)
def quick_backoff(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shorter waits between attempts, to keep the suite fast; the policy itself (which failures are
    retried, Retry-After, how often) is unchanged. ``test_backoff_*`` run with the real timing."""
    if not request.node.name.startswith("test_backoff"):
        monkeypatch.setattr(bearlumen._http, "INITIAL_BACKOFF", 0.05)


@pytest.fixture
def proxy(sqlite_service: Any) -> Iterator[FaultProxy]:
    with FaultProxy(sqlite_service.base_url) as proxy:
        yield proxy


@pytest.fixture
def key(sqlite_service: Any) -> str:
    return str(sqlite_service.create_key(new_tenant()))


@pytest.fixture
def direct(sqlite_service: Any, key: str) -> Iterator[Any]:
    """A client straight to the service (no proxy), to look at what it holds."""
    with bearlumen.Client(api_key=key, base_url=sqlite_service.base_url) as client:
        yield client


@pytest.fixture
def via_proxy(
    kind: str, proxy: FaultProxy, key: str, loop_thread: LoopThread
) -> Iterator[Callable[..., Any]]:
    """``via_proxy(**options)``: a client of this test's kind through the proxy (1 s timeout)."""
    made: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("timeout", 1.0)
        made.append(build_client(kind, loop_thread, api_key=key, base_url=proxy.url, **options))
        return made[-1]

    yield make
    for client in made:
        client.close()


def keys_sent(proxy: FaultProxy) -> list[str]:
    return [r.json()["idempotency_key"] for r in proxy.requests_seen]


@pytest.mark.parametrize(
    "failures",
    [
        ["after:503"],
        ["after:drop"],
        ["after:reset"],
        ["delay:2.0"],
        ["503", "drop", "reset"],
        ["after:500", "429:1"],
    ],
    ids=[
        "503-after-write",
        "drop-after-write",
        "reset-after-write",
        "timeout-after-write",
        "before-write",
        "mixed",
    ],
)
def test_a_retried_event_is_recorded_once(
    via_proxy: Callable[..., Any], proxy: FaultProxy, direct: Any, failures: list[str]
) -> None:
    client = via_proxy(max_retries=len(failures))
    proxy.plan([*failures, "pass"])
    result = client.usage.record("token_usage", "llm_tokens", 1500, metadata={"provider_cost_usd": 0.25})
    assert result["recorded"] is True  # stored by this call (maybe by an earlier attempt of it)
    assert len(proxy.requests_seen) == len(failures) + 1
    sent = keys_sent(proxy)
    assert len(set(sent)) == 1 and sent[0].startswith("sdk_")  # one key, chosen before the first attempt
    assert result["idempotencyKey"] == sent[0]
    stored = direct.usage.query()
    assert stored["total"] == 1
    assert stored["events"][0]["quantity"] == 1500
    assert direct.usage.summary()["totalCost"] == "0.25"


def test_a_retried_batch_is_recorded_once(
    via_proxy: Callable[..., Any], proxy: FaultProxy, direct: Any
) -> None:
    client = via_proxy(max_retries=2)
    events = [{"event_type": "token_usage", "metric_name": "llm_tokens", "quantity": q} for q in (1, 2, 3)]
    given = [dict(e) for e in events]
    proxy.plan(["after:503", "after:drop", "pass"])
    result = client.usage.record_batch(events)
    assert events == given  # the caller's dicts are not touched
    assert (result["recorded_count"], result["skipped_count"]) == (3, 0)
    bodies = [r.json()["events"] for r in proxy.requests_seen]
    assert len(bodies) == 3 and bodies[0] == bodies[1] == bodies[2]  # the same keys on every attempt
    assert len({e["idempotency_key"] for e in bodies[0]}) == 3
    assert sorted(e["quantity"] for e in direct.usage.query()["events"]) == [1, 2, 3]


def test_a_callers_key_is_kept_and_a_real_duplicate_is_reported(
    via_proxy: Callable[..., Any], proxy: FaultProxy, direct: Any
) -> None:
    client = via_proxy()
    first = client.usage.record("token_usage", "llm_tokens", 1, idempotency_key="invoice-7")
    proxy.plan(["after:503"])
    again = client.usage.record("token_usage", "llm_tokens", 1, idempotency_key="invoice-7")
    assert first["recorded"] is True and again["recorded"] is False
    assert keys_sent(proxy) == ["invoice-7"] * 3
    assert direct.usage.query()["total"] == 1


def test_retry_after_is_honoured(via_proxy: Callable[..., Any], proxy: FaultProxy) -> None:
    client = via_proxy(max_retries=1)
    proxy.plan(["429:1"])
    started = time.monotonic()
    assert client.end_users.list()["total"] == 0
    assert time.monotonic() - started >= 1.0
    assert [r.action for r in proxy.requests_seen] == ["429:1", "pass"]


def test_backoff_between_attempts_is_capped_full_jitter(
    via_proxy: Callable[..., Any], proxy: FaultProxy
) -> None:
    client = via_proxy(max_retries=3)
    proxy.plan(["503", "503", "503"])
    assert client.end_users.list()["total"] == 0
    times = [r.at for r in proxy.requests_seen]
    assert len(times) == 4
    gaps = [b - a for a, b in zip(times, times[1:])]
    for n, gap in enumerate(gaps):  # uniform(0, 0.5 * 2**n), plus the round trip
        assert gap <= 0.5 * 2**n + 0.3


def test_retries_run_out(via_proxy: Callable[..., Any], proxy: FaultProxy) -> None:
    client = via_proxy(max_retries=2)
    proxy.plan(["503", "503", "503", "pass"])
    with pytest.raises(BearLumenError) as info:
        client.end_users.list()
    assert type(info.value) is BearLumenError  # a 5xx maps to the base class
    assert (info.value.status_code, info.value.code) == (503, "unavailable")
    assert len(proxy.requests_seen) == 3
    ids = [r.headers["x-request-id"] for r in proxy.requests_seen]
    assert len(set(ids)) == 3  # every attempt has its own request id

    proxy.plan(["after:drop"] * 3)
    with pytest.raises(NetworkError) as network:
        client.end_users.list()
    assert "after 3 attempts" in network.value.message
    assert network.value.request_id == proxy.requests_seen[-1].headers["x-request-id"]


def test_timeouts_are_retried_then_reported(via_proxy: Callable[..., Any], proxy: FaultProxy) -> None:
    client = via_proxy(timeout=0.3, max_retries=1)
    proxy.plan(["hang", "hang"])
    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        client.end_users.list()
    assert info.value.code == "timeout" and "timed out" in info.value.message
    assert time.monotonic() - started < 3
    assert len(proxy.requests_seen) == 2


@pytest.mark.parametrize("status", ["400", "401", "404", "409", "422"])
def test_other_4xx_are_never_retried(via_proxy: Callable[..., Any], proxy: FaultProxy, status: str) -> None:
    client = via_proxy(max_retries=3)
    proxy.plan([status, "pass"])
    with pytest.raises(BearLumenError) as info:
        client.end_users.list()
    assert info.value.status_code == int(status)
    assert len(proxy.requests_seen) == 1


def test_real_4xx_answers_are_not_retried(via_proxy: Callable[..., Any], proxy: FaultProxy) -> None:
    client = via_proxy(max_retries=3)
    with pytest.raises(NotFoundError):
        client.end_users.retrieve("eu_nope")
    with pytest.raises(InvalidRequestError):
        client.end_users.list(limit=100000)
    assert len(proxy.requests_seen) == 2


def test_408_and_every_5xx_are_retried(via_proxy: Callable[..., Any], proxy: FaultProxy) -> None:
    client = via_proxy(max_retries=5)
    proxy.plan(["408", "500", "502", "503", "504"])
    assert client.end_users.list()["total"] == 0
    assert len(proxy.requests_seen) == 6


def test_a_long_retry_after_is_not_waited_for(via_proxy: Callable[..., Any], proxy: FaultProxy) -> None:
    from bearlumen import RateLimitError

    client = via_proxy(max_retries=3)
    proxy.plan(["429:3600"])
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        client.end_users.list()
    assert info.value.retry_after == 3600
    assert time.monotonic() - started < 1
    assert len(proxy.requests_seen) == 1


def test_subscription_creation_is_not_repeated_when_it_may_have_landed(
    via_proxy: Callable[..., Any], proxy: FaultProxy, direct: Any
) -> None:
    client = via_proxy(max_retries=3)
    proxy.plan(["after:drop"])
    with pytest.raises(NetworkError) as info:
        client.subscriptions.create("org_1", "plan_pro", "monthly", "2024-01-01")
    assert "may have processed it" in info.value.message
    assert len(proxy.requests_seen) == 1
    assert direct.subscriptions.list()["total"] == 1  # it did land: a retry would have made two

    proxy.plan(["503", "502"])  # error answers: the service wrote nothing, safe to repeat
    client.subscriptions.create("org_2", "plan_pro", "monthly", "2024-01-01")
    assert direct.subscriptions.list(organization_id="org_2")["total"] == 1


def test_end_user_creation_repeat_is_protected_by_the_external_id(
    via_proxy: Callable[..., Any], proxy: FaultProxy, direct: Any
) -> None:
    client = via_proxy(max_retries=2)
    proxy.plan(["503", "pass"])
    assert client.end_users.create(external_id="user_a")["endUser"]["externalId"] == "user_a"
    proxy.plan(["after:drop", "pass"])
    with pytest.raises(DuplicateCustomerError):  # the first attempt landed: never a second copy
        client.end_users.create(external_id="user_b")
    assert direct.end_users.list()["total"] == 2


def test_user_agent_and_headers(via_proxy: Callable[..., Any], proxy: FaultProxy, key: str) -> None:
    from bearlumen import __version__

    via_proxy().end_users.list()
    (seen,) = proxy.requests_seen
    assert seen.headers["user-agent"].startswith(f"bearlumen-python/{__version__}")
    assert seen.headers["authorization"] == f"Bearer {key}"
    assert seen.headers["x-request-id"].startswith("req_")
    assert uuid.UUID(seen.headers["x-request-id"][4:])
