"""Each exception class, raised by a real answer of the service (or a real closed port), for the sync and
async clients, over HTTP (SQLite, PostgreSQL) and embedded; plus the client-side checks."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable, Iterator

import pytest

import bearlumen
from bearlumen import (
    AuthenticationError,
    BearLumenError,
    DuplicateCustomerError,
    InvalidEmailError,
    InvalidRequestError,
    NetworkError,
    NotFoundError,
    RateLimitError,
)


def test_invalid_email_from_the_service(client: Any) -> None:
    # passes the client's "obviously malformed" check (one @, no space), the service rejects it
    with pytest.raises(InvalidEmailError) as info:
        client.end_users.create(external_id="user_1", email="someone@localhost..")
    error = info.value
    assert (error.status_code, error.code, error.param) == (400, "invalid_email", "email")
    assert error.request_id and error.request_id.startswith("req_")
    assert client.end_users.list()["total"] == 0  # nothing written


def test_duplicate_customer(client: Any) -> None:
    client.end_users.create(external_id="user_1")
    with pytest.raises(DuplicateCustomerError) as info:
        client.end_users.create(external_id="user_1", name="again")
    assert (info.value.status_code, info.value.code) == (409, "duplicate_external_id")
    assert info.value.request_id and info.value.request_id.startswith("req_")
    assert "user_1" in info.value.message or info.value.message


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c: c.end_users.list(limit=5000), "invalid_limit"),
        (lambda c: c.usage.query(start_date="not a date"), "invalid_date"),
        (
            lambda c: c.usage.record("token_usage", "llm_tokens", 1, timestamp="1969-12-31T00:00:00Z"),
            "invalid_timestamp",
        ),
        (lambda c: c.subscriptions.create("org_1", "plan_1", "weekly", "2024-01-01"), None),
        (lambda c: c.usage.record("", "llm_tokens", 1), None),
        (lambda c: c.usage.aggregation(group_by="planet"), None),
        (lambda c: c.cost_attribution.by_agent("2024-02-01", "2024-01-01x"), "invalid_date"),
    ],
    ids=["limit", "date", "timestamp-before-1970", "billing-cycle", "empty-event-type", "group-by", "range"],
)
def test_invalid_request_from_the_service(client: Any, call: Callable[[Any], Any], code: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:
        call(client)
    assert info.value.status_code == 400
    assert info.value.code == code if code else info.value.code
    assert info.value.request_id and info.value.request_id.startswith("req_")


def test_invalid_batch_names_each_bad_event_and_writes_nothing(client: Any) -> None:
    good = {"event_type": "token_usage", "metric_name": "llm_tokens", "quantity": 1}
    bad = {"event_type": "token_usage", "quantity": 2}  # no metric_name: only the service can tell
    with pytest.raises(InvalidRequestError) as info:
        client.usage.record_batch([good, bad, good])
    assert (info.value.status_code, info.value.code) == (400, "invalid_batch")
    assert info.value.errors is not None
    assert [e["index"] for e in info.value.errors] == [1]
    assert client.usage.query()["total"] == 0


def test_not_found(client: Any, make_client: Callable[..., Any], deployment: Any) -> None:
    with pytest.raises(NotFoundError) as info:
        client.end_users.retrieve("eu_doesnotexist")
    assert (info.value.status_code, info.value.code) == (404, "not_found")
    calls: list[Callable[[], Any]] = [
        lambda: client.end_users.update("eu_doesnotexist", name="x"),
        lambda: client.end_users.deactivate("eu_doesnotexist"),
        lambda: client.subscriptions.retrieve("sub_doesnotexist"),
        lambda: client.subscriptions.cancel("sub_doesnotexist"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError):
            call()
    # usage for an end user the service does not know registers it (README "Only what can never be valid")
    recorded = client.usage.record("token_usage", "llm_tokens", 1, end_user_id="eu_doesnotexist")
    assert recorded["recorded"] is True
    # another tenant's id is indistinguishable from an unknown one
    other = make_client(api_key=deployment.new_key())
    theirs = other.end_users.create(external_id="user_1")["endUser"]["id"]
    with pytest.raises(NotFoundError):
        client.end_users.retrieve(theirs)


def test_authentication_error_for_a_wrong_key(make_client: Callable[..., Any]) -> None:
    client = make_client(api_key="blm_" + "A" * 43)
    with pytest.raises(AuthenticationError) as info:
        client.end_users.list()
    assert (info.value.status_code, info.value.code) == (401, "authentication_failed")
    assert "A" * 43 not in str(info.value)


def test_authentication_error_for_a_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BEARLUMEN_API_KEY", raising=False)
    for build in (bearlumen.Client, bearlumen.AsyncClient):
        with pytest.raises(AuthenticationError) as info:
            build()
        assert "BEARLUMEN_API_KEY" in info.value.message and "api_key=" in info.value.message
        assert info.value.code == "missing_api_key" and info.value.status_code is None
        with pytest.raises(AuthenticationError):
            build(api_key="")
        with pytest.raises(AuthenticationError):
            build(base_url="sqlite:///never-created.db")  # checked before the database is touched


def test_api_key_from_the_environment(
    make_client: Callable[..., Any], api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BEARLUMEN_API_KEY", api_key)
    client = make_client(api_key=None)
    assert client.end_users.list()["total"] == 0


def test_network_error_on_a_closed_port(make_offline_client: Callable[..., Any]) -> None:
    client = make_offline_client(max_retries=2)
    started = time.monotonic()
    with pytest.raises(NetworkError) as info:
        client.usage.record("token_usage", "llm_tokens", 1)
    assert "after 3 attempts" in info.value.message
    assert info.value.status_code is None
    assert info.value.code == "connection_error"
    assert time.monotonic() - started < 5  # backoff: at most 0.5 + 1.0 s of waiting
    assert isinstance(info.value.__cause__, Exception)


def test_no_key_in_logs_or_errors(
    make_client: Callable[..., Any], api_key: str, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = make_client()
    errors: list[BearLumenError] = []
    calls: list[Callable[[], Any]] = [
        lambda: client.end_users.retrieve("eu_nope"),
        lambda: client.end_users.create(external_id="x", email="a b"),
        lambda: make_client(base_url=f"http://127.0.0.1:{closed_port}", max_retries=1).end_users.list(),
    ]
    for call in calls:
        with pytest.raises(BearLumenError) as info:
            call()
        errors.append(info.value)
    assert api_key not in caplog.text
    for error in errors:
        assert api_key not in str(error) and api_key not in repr(error) and api_key not in error.message
    assert api_key not in repr(client)


# ----------------------------------------------------------------------------- rate limit (HTTP only)


@pytest.fixture(scope="module")
def rate_limited_service() -> Iterator[Any]:
    from tests.support.service import start_service

    with start_service(rate_limit=2) as service:
        yield service


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_rate_limit_error_with_retry_after(rate_limited_service: Any, kind: str, loop_thread: Any) -> None:
    from tests.sdk.conftest import Blocking, new_tenant

    key = rate_limited_service.create_key(new_tenant())
    if kind == "sync":
        client: Any = bearlumen.Client(api_key=key, base_url=rate_limited_service.base_url, max_retries=0)
    else:
        client = Blocking(
            bearlumen.AsyncClient(api_key=key, base_url=rate_limited_service.base_url, max_retries=0),
            loop_thread,
        )
    try:
        with pytest.raises(RateLimitError) as info:
            for _ in range(20):  # burst 2 per second: the third request in a row is refused
                client.end_users.list()
        error = info.value
        assert (error.status_code, error.code) == (429, "rate_limited")
        assert isinstance(error.retry_after, (int, float)) and error.retry_after >= 1
        assert error.request_id and error.request_id.startswith("req_")

        # with retries (the default), the client waits Retry-After and gets through
        patient = client.with_options(max_retries=2)
        started = time.monotonic()
        assert patient.end_users.list()["total"] == 0
        assert time.monotonic() - started >= 0.9 * error.retry_after
    finally:
        client.close()


# --------------------------------------------------------------- client-side checks (nothing is sent)


@pytest.fixture
def unreachable(make_offline_client: Callable[..., Any]) -> Any:
    """A client whose every request would fail with NetworkError: a check that raises anything else
    proves it answered without a round trip."""
    return make_offline_client(max_retries=0)


@pytest.mark.parametrize("email", ["not-an-email", "two@@example.com", "with space@x.com", "@example.com"])
def test_client_side_email_check(unreachable: Any, email: str) -> None:
    with pytest.raises(InvalidEmailError) as info:
        unreachable.end_users.create(external_id="user_1", email=email)
    assert (info.value.code, info.value.param, info.value.status_code) == ("invalid_email", "email", None)
    with pytest.raises(InvalidEmailError):
        unreachable.end_users.update("eu_1", email=email)


@pytest.mark.parametrize("quantity", [float("nan"), float("inf"), -1, "12", None, True])
def test_client_side_quantity_check(unreachable: Any, quantity: Any) -> None:
    with pytest.raises(InvalidRequestError) as info:
        unreachable.usage.record("token_usage", "llm_tokens", quantity)
    assert info.value.code == "invalid_quantity"
    with pytest.raises(InvalidRequestError) as info:
        unreachable.usage.record_batch(
            [
                {"event_type": "t", "metric_name": "m", "quantity": 1},
                {"event_type": "t", "metric_name": "m", "quantity": quantity},
            ]
        )
    assert info.value.code == "invalid_batch"
    assert info.value.errors is not None
    found = [(e["index"], e["code"], e["param"]) for e in info.value.errors]
    assert found == [(1, "invalid_quantity", "quantity")]


def test_client_side_batch_size_check(unreachable: Any) -> None:
    event = {"event_type": "token_usage", "metric_name": "llm_tokens", "quantity": 1}
    with pytest.raises(InvalidRequestError) as info:
        unreachable.usage.record_batch([event] * 1001)
    assert info.value.code == "batch_too_large"
    with pytest.raises(InvalidRequestError):
        unreachable.usage.record_batch([])
    with pytest.raises(NetworkError):  # 1000 is allowed: it goes out (and finds nobody)
        unreachable.usage.record_batch([event] * 1000)


def test_client_side_json_check(unreachable: Any) -> None:
    with pytest.raises(InvalidRequestError):
        unreachable.usage.record("t", "m", 1, metadata={"provider_cost_usd": float("nan")})
    with pytest.raises(InvalidRequestError):
        unreachable.usage.record("t", "m", 1, metadata={"handle": object()})
    with pytest.raises(InvalidRequestError):
        unreachable.end_users.retrieve("")
