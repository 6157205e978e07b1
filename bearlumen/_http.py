"""The sync and async HTTP layers under Client / AsyncClient: httpx, retries, error mapping.

Retry policy (``max_retries`` retries after the first attempt, 2 by default):

| failure                                          | retried?                                          |
|--------------------------------------------------|---------------------------------------------------|
| connection refused, DNS, connect or pool timeout | always (the request never left)                   |
| 408, 429, 5xx answer                             | always (a failed request wrote nothing: api.md)   |
| read timeout, connection dropped after sending   | unless repeating could create a second copy (1)   |
| any other 4xx                                    | never                                             |

(1) Repeated: reads, updates, idempotent actions (cancel, deactivate, ...), usage events (their
idempotency key makes a repeat a no-op), end-user creation (the unique external id does; a repeat of a
creation that landed answers DuplicateCustomerError). Not repeated: ``subscriptions.create``.

Waits: the answer's ``Retry-After`` (``retry-after-ms`` too) when present and at most 60 s (above that
the error is raised at once); otherwise exponential backoff with full jitter:
``uniform(0, min(8, 0.5 * 2**n))`` seconds before retry n+1. Every attempt sends its own
``X-Request-Id``; the id of the last one is on the exception. The API key is sent only in the
``Authorization`` header: never logged, never in a message.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import json
import logging
import math
import platform
import random
import time
import uuid
from decimal import Decimal
from typing import Any, Dict, Mapping, Optional, Union

import anyio
import httpx

from bearlumen._config import DEFAULT_CONNECT_TIMEOUT, ClientConfig, Timeout, mask_key
from bearlumen._exceptions import BearLumenError, InvalidRequestError, NetworkError, error_from_response
from bearlumen._version import __version__

__all__ = [
    "AsyncHTTPClient",
    "RawJSON",
    "SyncHTTPClient",
    "encode_json",
    "to_httpx_timeout",
]

log = logging.getLogger("bearlumen")

USER_AGENT = f"bearlumen-python/{__version__} (Python {platform.python_version()}; httpx {httpx.__version__})"
EMBEDDED_ORIGIN = "http://bearlumen.embedded"

INITIAL_BACKOFF = 0.5  # seconds, doubled per retry
MAX_BACKOFF = 8.0
MAX_RETRY_AFTER = 60.0  # a longer Retry-After is not waited for: the error is raised at once

# keep-alive connections expire before uvicorn's 5 s keep-alive timeout closes them on the other side.
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=4.0)

JSONBody = Union[Mapping[str, Any], None]
Params = Optional[Mapping[str, Any]]


# ------------------------------------------------------------------------------------------- helpers


def to_httpx_timeout(timeout: Timeout) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is None:
        return httpx.Timeout(None)
    return httpx.Timeout(float(timeout), connect=min(float(timeout), DEFAULT_CONNECT_TIMEOUT))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"non-finite Decimal {value}")
        # plain notation, exact: Decimal('4.50') -> "4.50", Decimal('1E-7') -> "0.0000001"
        return format(value, "f")
    if isinstance(value, _dt.datetime):
        return format_timestamp(value)
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


class RawJSON(bytes):
    """A request body already encoded as JSON by the SDK itself, sent as it is (the exporter joins the
    event texts it spooled instead of decoding and re-encoding every event of a batch)."""


def encode_json(body: Any) -> bytes:
    """JSON as the service expects it: floats by ``repr`` (4.50 -> 4.5), Decimal as an exact decimal string,
    datetimes in ISO 8601; NaN / infinity rejected (InvalidRequestError) rather than sent as invalid JSON."""
    try:
        return json.dumps(
            body, default=_json_default, allow_nan=False, ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"The request body cannot be sent as JSON: {exc}", code="invalid_request"
        ) from None


def format_timestamp(value: Union[_dt.datetime, _dt.date, str]) -> str:
    """ISO 8601 for the service: aware datetimes in UTC with ``Z``; naive ones as given (the service
    reads no zone as UTC); dates as ``YYYY-MM-DD`` (midnight UTC); strings untouched."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
            return value.isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, _dt.date):
        return value.isoformat()
    return value


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (_dt.datetime, _dt.date)):
        return format_timestamp(value)
    return value


def _clean_params(params: Params) -> Optional[Dict[str, Any]]:
    if not params:
        return None
    return {k: _query_value(v) for k, v in params.items() if v is not None}


def parse_retry_after(headers: httpx.Headers) -> Optional[float]:
    """Seconds to wait, from ``retry-after-ms`` or ``Retry-After`` (seconds or HTTP date); None if absent."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            ms = float(raw_ms)
            if math.isfinite(ms) and ms >= 0:
                return ms / 1000.0
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.timezone.utc)
        return max(0.0, (when - _dt.datetime.now(_dt.timezone.utc)).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return int(seconds) if seconds.is_integer() else seconds


def backoff_delay(retry_number: int) -> float:
    """Full jitter (AWS architecture blog): uniform(0, min(cap, base * 2**n))."""
    return random.uniform(0.0, min(MAX_BACKOFF, INITIAL_BACKOFF * (2.0**retry_number)))


def _new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def _is_retryable_status(status: int) -> bool:
    return status in (408, 429) or status >= 500


def _describe(exc: BaseException) -> str:
    if isinstance(exc, httpx.TimeoutException):
        kind = {
            httpx.ConnectTimeout: "timed out connecting",
            httpx.ReadTimeout: "timed out waiting for the answer",
            httpx.WriteTimeout: "timed out sending the request",
            httpx.PoolTimeout: "timed out waiting for a free connection",
        }.get(type(exc), "timed out")
        return kind
    text = str(exc).strip().rstrip(".")
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _never_sent(exc: httpx.TransportError) -> bool:
    """True when the request certainly did not reach the service (safe to repeat anything)."""
    return isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))


def _retryable_transport_error(exc: httpx.TransportError) -> bool:
    return isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError))


# --------------------------------------------------------------------------------------- base client


class _BaseHTTPClient:
    def __init__(self, config: ClientConfig) -> None:
        self._config = config
        self._origin = EMBEDDED_ORIGIN if config.embedded else config.base_url
        self._timeout = to_httpx_timeout(config.timeout)
        self._max_retries = config.max_retries

    @property
    def config(self) -> ClientConfig:
        return self._config

    @property
    def max_retries(self) -> int:
        return self._max_retries

    def _headers(self, request_id: str, has_body: bool) -> Dict[str, str]:
        headers = {
            "Authorization": f"Bearer {self._config.api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "X-Request-Id": request_id,
        }
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    def _redact(self, text: str) -> str:
        key = self._config.api_key
        return text.replace(key, mask_key(key)) if key and key in text else text

    def _prepare(self, body: Any) -> Optional[bytes]:
        if isinstance(body, RawJSON):
            return bytes(body)
        return None if body is None else encode_json(body)

    def _decode_success(self, response: httpx.Response) -> Any:
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise BearLumenError(
                "The service answered with a body that is not JSON",
                status_code=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ) from None

    def _error_for(self, response: httpx.Response) -> BearLumenError:
        try:
            body: Any = response.json() if response.content else None
        except ValueError:
            body = None
        error = error_from_response(
            response.status_code,
            body,
            headers=response.headers,
            text="" if body is not None else response.text,
            retry_after=parse_retry_after(response.headers),
        )
        error.message = self._redact(error.message)
        error.args = (error.message,)
        return error

    def _status_retry_delay(self, response: httpx.Response, retries_done: int) -> Optional[float]:
        """Seconds to wait before retrying this answer, or None to raise it."""
        if retries_done >= self._max_retries or not _is_retryable_status(response.status_code):
            return None
        retry_after = parse_retry_after(response.headers)
        if retry_after is not None:
            return float(retry_after) if retry_after <= MAX_RETRY_AFTER else None
        return backoff_delay(retries_done)

    def _transport_retry_delay(
        self, exc: httpx.TransportError, retries_done: int, retry_ambiguous: bool
    ) -> Optional[float]:
        if retries_done >= self._max_retries or not _retryable_transport_error(exc):
            return None
        if not retry_ambiguous and not _never_sent(exc):
            return None
        return backoff_delay(retries_done)

    def _network_error(
        self, exc: httpx.TransportError, method: str, path: str, attempts: int, request_id: str
    ) -> NetworkError:
        where = (
            "the embedded service" if self._config.embedded else f"the Bear Lumen service at {self._origin}"
        )
        message = f"{method} {path}: could not complete the request to {where}: {_describe(exc)}"
        message += f" (after {attempts} attempt{'s' if attempts != 1 else ''})"
        if not _never_sent(exc):
            message += "; the service may have processed it"
        return NetworkError(
            self._redact(message),
            code="timeout" if isinstance(exc, httpx.TimeoutException) else "connection_error",
            request_id=None if _never_sent(exc) else request_id,
        )

    def _log_retry(self, method: str, path: str, what: str, retries_done: int, delay: float) -> None:
        log.info(
            "%s %s: %s; retry %d/%d in %.2fs", method, path, what, retries_done + 1, self._max_retries, delay
        )

    def _log_response(self, method: str, path: str, response: httpx.Response, request_id: str) -> None:
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %d (%s)", method, path, response.status_code, request_id)


# ----------------------------------------------------------------------------------------------- sync


class SyncHTTPClient(_BaseHTTPClient):
    """Blocking transport of ``Client``. Thread-safe (one pooled ``httpx.Client``)."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        http_client: Optional[httpx.Client] = None,
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        super().__init__(config)
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(
            base_url=self._origin,
            timeout=self._timeout,
            limits=DEFAULT_LIMITS,
            transport=transport,
            follow_redirects=False,
        )

    def copy(self, config: ClientConfig) -> SyncHTTPClient:
        """A client with other timeout / retries that shares this one's connection pool (not its closing)."""
        return SyncHTTPClient(config, http_client=self._http)

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Params = None,
        retry_ambiguous: bool = True,
    ) -> Any:
        content = self._prepare(body)
        query = _clean_params(params)
        retries_done = 0
        while True:
            request_id = _new_request_id()
            try:
                response = self._http.request(
                    method,
                    self._origin + path,
                    content=content,
                    params=query,
                    headers=self._headers(request_id, content is not None),
                    timeout=self._timeout,
                )
            except httpx.TransportError as exc:
                delay = self._transport_retry_delay(exc, retries_done, retry_ambiguous)
                if delay is None:
                    raise self._network_error(exc, method, path, retries_done + 1, request_id) from exc
                self._log_retry(method, path, _describe(exc), retries_done, delay)
                time.sleep(delay)
                retries_done += 1
                continue
            self._log_response(method, path, response, request_id)
            if response.is_success:
                return self._decode_success(response)
            delay = self._status_retry_delay(response, retries_done)
            if delay is None:
                raise self._error_for(response)
            self._log_retry(method, path, f"HTTP {response.status_code}", retries_done, delay)
            time.sleep(delay)
            retries_done += 1


# ---------------------------------------------------------------------------------------------- async


class AsyncHTTPClient(_BaseHTTPClient):
    """Awaitable transport of ``AsyncClient`` (asyncio or trio, through anyio)."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        http_client: Optional[httpx.AsyncClient] = None,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        super().__init__(config)
        self._owns_http = http_client is None
        self._http = http_client or httpx.AsyncClient(
            base_url=self._origin,
            timeout=self._timeout,
            limits=DEFAULT_LIMITS,
            transport=transport,
            follow_redirects=False,
        )

    def copy(self, config: ClientConfig) -> AsyncHTTPClient:
        return AsyncHTTPClient(config, http_client=self._http)

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Params = None,
        retry_ambiguous: bool = True,
    ) -> Any:
        content = self._prepare(body)
        query = _clean_params(params)
        retries_done = 0
        while True:
            request_id = _new_request_id()
            try:
                response = await self._http.request(
                    method,
                    self._origin + path,
                    content=content,
                    params=query,
                    headers=self._headers(request_id, content is not None),
                    timeout=self._timeout,
                )
            except httpx.TransportError as exc:
                delay = self._transport_retry_delay(exc, retries_done, retry_ambiguous)
                if delay is None:
                    raise self._network_error(exc, method, path, retries_done + 1, request_id) from exc
                self._log_retry(method, path, _describe(exc), retries_done, delay)
                await anyio.sleep(delay)
                retries_done += 1
                continue
            self._log_response(method, path, response, request_id)
            if response.is_success:
                return self._decode_success(response)
            delay = self._status_retry_delay(response, retries_done)
            if delay is None:
                raise self._error_for(response)
            self._log_retry(method, path, f"HTTP {response.status_code}", retries_done, delay)
            await anyio.sleep(delay)
            retries_done += 1
