"""The SDK's own logic that needs no service: import cost, configuration, serialization, error mapping,
retry timing. (Everything that talks to the service is tested against the real one elsewhere.)"""

from __future__ import annotations

import datetime as dt
import json
import pickle
import subprocess
import sys
from decimal import Decimal

import httpx
import pytest

import bearlumen
from bearlumen import _http
from bearlumen._config import DEFAULT_BASE_URL, normalize_base_url, resolve_config
from bearlumen._exceptions import error_from_response
from bearlumen.resources._base import prepare_batch, prepare_event

KEY = "blm_" + "k" * 43


def test_import_bearlumen_stays_light() -> None:
    code = (
        "import sys, bearlumen;"
        "heavy = ['httpx', 'anyio', 'fastapi', 'sqlalchemy', 'wrapt', 'bearlumen._client'];"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_public_names() -> None:
    for name in (
        "Client",
        "AsyncClient",
        "EndUser",
        "Subscription",
        "UsageRecordInput",
        "CostBreakdownResponse",
    ):
        assert getattr(bearlumen, name) is not None
    assert bearlumen.Client.__module__ == "bearlumen._client"


# ------------------------------------------------------------------------------------------ config


def test_configuration_from_arguments_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BEARLUMEN_API_KEY", "BEARLUMEN_BASE_URL", "BEARLUMEN_TIMEOUT", "BEARLUMEN_MAX_RETRIES"):
        monkeypatch.delenv(name, raising=False)
    config = resolve_config(KEY, None, bearlumen._config.NOT_GIVEN, None)
    assert (config.base_url, config.timeout, config.max_retries, config.embedded) == (
        DEFAULT_BASE_URL,
        30.0,
        2,
        False,
    )

    monkeypatch.setenv("BEARLUMEN_API_KEY", "blm_from_env_xxxxxxxxxxxx")
    monkeypatch.setenv("BEARLUMEN_BASE_URL", "https://metering.example.com/v1/")
    monkeypatch.setenv("BEARLUMEN_TIMEOUT", "12.5")
    monkeypatch.setenv("BEARLUMEN_MAX_RETRIES", "4")
    with bearlumen.Client() as client:
        assert client.base_url == "https://metering.example.com"
        assert (client.timeout, client.max_retries) == (12.5, 4)
        assert "blm_from_env" not in repr(client).replace("blm_from", "")
    with bearlumen.Client(KEY, base_url="http://other:1", timeout=None, max_retries=0) as client:
        assert (client.base_url, client.timeout, client.max_retries) == ("http://other:1", None, 0)
        assert KEY not in repr(client)


@pytest.mark.parametrize("url", ["ftp://x", "localhost:8787", "", "http://"])
def test_bad_base_url(url: str) -> None:
    with pytest.raises(ValueError):
        bearlumen.Client(KEY, base_url=url or " ")


@pytest.mark.parametrize(("timeout", "retries"), [(-1, 0), (0, 0), (1, -1), (1, True)])
def test_bad_timeout_or_retries(timeout: float, retries: int) -> None:
    with pytest.raises(ValueError):
        bearlumen.Client(KEY, timeout=timeout, max_retries=retries)


def test_embedded_spellings() -> None:
    for url in (
        "sqlite:///path/to/usage.db",
        "postgresql://u:p@h/db",
        "postgresql+psycopg://h/db",
        "postgres://h/d",
    ):
        assert normalize_base_url(url) == (url, True)
    assert normalize_base_url("http://127.0.0.1:8787/") == ("http://127.0.0.1:8787", False)


def test_with_options_shares_the_pool() -> None:
    with bearlumen.Client(KEY) as client:
        quick = client.with_options(max_retries=0, timeout=2.0)
        assert (quick.max_retries, quick.timeout, client.max_retries) == (0, 2.0, 2)
        assert quick._http._http is client._http._http
        quick.close()
        assert not client.is_closed
    assert quick.is_closed


def test_timeouts() -> None:
    assert _http.to_httpx_timeout(30.0) == httpx.Timeout(30.0, connect=5.0)
    assert _http.to_httpx_timeout(2.0) == httpx.Timeout(2.0, connect=2.0)
    assert _http.to_httpx_timeout(None) == httpx.Timeout(None)


# ----------------------------------------------------------------------------------- serialization


def test_json_encoding_keeps_money_exact() -> None:
    body = {
        "float": 4.50,
        "decimal": Decimal("4.50"),
        "tiny": Decimal("1E-7"),
        "when": dt.datetime(2024, 1, 1, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "naive": dt.datetime(2024, 1, 1, 0, 0),
        "day": dt.date(2024, 1, 31),
    }
    assert json.loads(_http.encode_json(body)) == {
        "float": 4.5,
        "decimal": "4.50",
        "tiny": "0.0000001",
        "when": "2024-01-01T00:00:00Z",
        "naive": "2024-01-01T00:00:00",
        "day": "2024-01-31",
    }
    assert b'"float":4.5' in _http.encode_json(body)  # repr of the float, not 4.5000000001
    for bad in (float("nan"), float("-inf"), Decimal("NaN"), object()):
        with pytest.raises(bearlumen.InvalidRequestError):
            _http.encode_json({"x": bad})


def test_events_get_a_key_before_the_first_attempt_and_the_callers_dicts_stay_untouched() -> None:
    events = [
        {"event_type": "t", "metric_name": "m", "quantity": Decimal("2"), "timestamp": dt.date(2024, 1, 1)},
        {"event_type": "t", "metric_name": "m", "quantity": 1.5, "idempotency_key": "mine", "agent_id": None},
    ]
    snapshot = [dict(e) for e in events]
    wire = prepare_batch(events)
    assert events == snapshot
    assert wire[0]["idempotency_key"].startswith("sdk_") and len(wire[0]["idempotency_key"]) == 36
    assert wire[1]["idempotency_key"] == "mine"
    assert (wire[0]["quantity"], wire[0]["timestamp"]) == (2, "2024-01-01")
    assert "agent_id" not in wire[1]
    assert prepare_event(events[0])["idempotency_key"] != wire[0]["idempotency_key"]  # fresh per call


# ------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "invalid_request", bearlumen.InvalidRequestError),
        (400, "invalid_quantity", bearlumen.InvalidRequestError),
        (400, "batch_too_large", bearlumen.InvalidRequestError),
        (400, "invalid_email", bearlumen.InvalidEmailError),
        (401, "authentication_failed", bearlumen.AuthenticationError),
        (404, "not_found", bearlumen.NotFoundError),
        (409, "duplicate_external_id", bearlumen.DuplicateCustomerError),
        (429, "rate_limited", bearlumen.RateLimitError),
        (500, "internal_error", bearlumen.BearLumenError),
        (503, "unavailable", bearlumen.BearLumenError),
        (422, None, bearlumen.InvalidRequestError),
        (403, None, bearlumen.AuthenticationError),
    ],
)
def test_error_table(status: int, code: str, cls: type) -> None:
    body = (
        {"error": {"code": code, "message": "m", "param": None, "requestId": "req_1"}}
        if code
        else {"detail": "x"}
    )
    error = error_from_response(status, body, headers={"x-request-id": "req_h"})
    assert type(error) is cls
    assert error.request_id == ("req_1" if code else "req_h")


def test_errors_survive_pickling() -> None:
    error = bearlumen.RateLimitError(
        "slow down", retry_after=3, status_code=429, code="rate_limited", request_id="r"
    )
    clone = pickle.loads(pickle.dumps(error))
    assert (type(clone), clone.message, clone.retry_after, clone.status_code, clone.request_id) == (
        bearlumen.RateLimitError,
        "slow down",
        3,
        429,
        "r",
    )
    assert str(clone) == "slow down (status 429, code rate_limited, request_id r)"


def test_non_json_error_bodies() -> None:
    error = error_from_response(502, None, text="<html>Bad gateway</html>")
    assert type(error) is bearlumen.BearLumenError and "Bad gateway" in error.message


# ------------------------------------------------------------------------------------------ timing


def test_retry_after_parsing() -> None:
    assert _http.parse_retry_after(httpx.Headers({"Retry-After": "2"})) == 2
    assert _http.parse_retry_after(httpx.Headers({"Retry-After": "1.5"})) == 1.5
    assert _http.parse_retry_after(httpx.Headers({"retry-after-ms": "250", "Retry-After": "9"})) == 0.25
    assert _http.parse_retry_after(httpx.Headers({"Retry-After": "soon"})) is None
    assert _http.parse_retry_after(httpx.Headers({})) is None
    future = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=30)
    date = future.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert 25 <= (_http.parse_retry_after(httpx.Headers({"Retry-After": date})) or 0) <= 30


def test_backoff_is_full_jitter_capped() -> None:
    for n in range(10):
        delays = [_http.backoff_delay(n) for _ in range(200)]
        assert all(0 <= d <= min(8.0, 0.5 * 2**n) for d in delays)
