"""The SDK's exception hierarchy (the reference's tree: every class derives directly from BearLumenError).

    BearLumenError
    ├── InvalidEmailError       400 invalid_email
    ├── DuplicateCustomerError  409 duplicate_external_id
    ├── InvalidRequestError     400 invalid_request, invalid_quantity, invalid_batch, batch_too_large, ...
    ├── AuthenticationError     401 authentication_failed (also: no API key configured at all)
    ├── NotFoundError           404 not_found
    ├── RateLimitError          429 rate_limited (``retry_after`` seconds from the Retry-After header)
    └── NetworkError            connection refused, DNS, timeouts, dropped connections (after retries)

A 5xx answer (``internal_error`` / ``unavailable``) that survives the retries raises BearLumenError itself.

This module is imported by ``import bearlumen``: it must stay dependency free (no httpx here).
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Type

__all__ = [
    "AuthenticationError",
    "BearLumenError",
    "DuplicateCustomerError",
    "InvalidEmailError",
    "InvalidRequestError",
    "NetworkError",
    "NotFoundError",
    "RateLimitError",
    "error_from_response",
]


class BearLumenError(Exception):
    """Base class of every error the SDK raises.

    Attributes:
        message: human readable description (never contains the API key).
        status_code: HTTP status of the service's answer, or None (client-side check, network failure).
        code: the machine readable error code of the envelope (``invalid_email``, ``not_found``, ...).
        request_id: the ``X-Request-Id`` of the failed request, to quote when asking for help.
        param: the request parameter the error is about, when the service says so.
        errors: per-item details (``invalid_batch``: one ``{"index", "code", "message", "param"}`` per event).
        body: the decoded error body, as received.
    """

    message: str
    status_code: Optional[int]
    code: Optional[str]
    request_id: Optional[str]
    param: Optional[str]
    errors: Optional[List[Dict[str, Any]]]
    body: Any

    def __init__(
        self,
        message: str,
        *,
        status_code: Optional[int] = None,
        code: Optional[str] = None,
        request_id: Optional[str] = None,
        param: Optional[str] = None,
        errors: Optional[List[Dict[str, Any]]] = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.param = param
        self.errors = errors
        self.body = body

    def __str__(self) -> str:
        details = []
        if self.status_code is not None:
            details.append(f"status {self.status_code}")
        if self.code:
            details.append(f"code {self.code}")
        if self.param:
            details.append(f"param {self.param}")
        if self.request_id:
            details.append(f"request_id {self.request_id}")
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status_code={self.status_code!r}, "
            f"code={self.code!r}, request_id={self.request_id!r})"
        )

    def _state(self) -> Dict[str, Any]:
        return {
            "status_code": self.status_code,
            "code": self.code,
            "request_id": self.request_id,
            "param": self.param,
            "errors": self.errors,
            "body": self.body,
        }

    # Keyword-only constructor arguments do not survive the default exception pickling (which replays
    # ``args``): errors cross process boundaries (multiprocessing, celery), so restore them explicitly.
    def __reduce__(self) -> Any:
        return (_restore, (type(self), self.message, self._state()))


class InvalidEmailError(BearLumenError):
    """The email address is malformed (400 ``invalid_email``)."""


class DuplicateCustomerError(BearLumenError):
    """An end user with this external ID already exists in the tenant (409 ``duplicate_external_id``)."""


class InvalidRequestError(BearLumenError):
    """The request's parameters are invalid (400: ``invalid_request``, ``invalid_quantity``, ...)."""


class AuthenticationError(BearLumenError):
    """The API key is missing, malformed, unknown or revoked (401 ``authentication_failed``)."""


class NotFoundError(BearLumenError):
    """The resource does not exist, or belongs to another tenant (404 ``not_found``)."""


class RateLimitError(BearLumenError):
    """Too many requests (429 ``rate_limited``); ``retry_after``: the wait the service asks for (s)."""

    retry_after: Optional[float]

    def __init__(self, message: str, *, retry_after: Optional[float] = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def _state(self) -> Dict[str, Any]:
        state = super()._state()
        state["retry_after"] = self.retry_after
        return state


class NetworkError(BearLumenError):
    """The service could not be reached or did not answer (refused, DNS, timeout, dropped), after retries."""


def _restore(cls: Type[BearLumenError], message: str, state: Dict[str, Any]) -> BearLumenError:
    return cls(message, **state)


# error code of the envelope -> class (docs/api.md, "Errors"); the status decides for unknown codes.
_BY_CODE: Dict[str, Type[BearLumenError]] = {
    "invalid_email": InvalidEmailError,
    "duplicate_external_id": DuplicateCustomerError,
    "authentication_failed": AuthenticationError,
    "not_found": NotFoundError,
    "rate_limited": RateLimitError,
    "invalid_request": InvalidRequestError,
    "invalid_quantity": InvalidRequestError,
    "invalid_timestamp": InvalidRequestError,
    "invalid_date": InvalidRequestError,
    "invalid_limit": InvalidRequestError,
    "batch_too_large": InvalidRequestError,
    "invalid_batch": InvalidRequestError,
}

_BY_STATUS: Dict[int, Type[BearLumenError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: DuplicateCustomerError,
    429: RateLimitError,
}


def error_class_for(status_code: int, code: Optional[str]) -> Type[BearLumenError]:
    """The exception class for an error answer: by the envelope's code first, then by the status."""
    if code and code in _BY_CODE:
        return _BY_CODE[code]
    if status_code in _BY_STATUS:
        return _BY_STATUS[status_code]
    if 400 <= status_code < 500 and status_code != 408:
        return InvalidRequestError
    return BearLumenError


def error_from_response(
    status_code: int,
    body: Any,
    *,
    headers: Optional[Mapping[str, str]] = None,
    text: str = "",
    retry_after: Optional[float] = None,
) -> BearLumenError:
    """Build the exception for one error answer of the service.

    ``body`` is the decoded JSON (``{"error": {"code", "message", "param", "requestId", "errors"}}`` per
    docs/api.md; anything else is tolerated), ``headers`` the answer's headers (for ``X-Request-Id``),
    ``text`` the raw body when it was not JSON. Shared by the clients and the delivery layer.
    """
    code: Optional[str] = None
    message: Optional[str] = None
    param: Optional[str] = None
    request_id: Optional[str] = None
    errors: Optional[List[Dict[str, Any]]] = None
    envelope = body.get("error") if isinstance(body, dict) else None
    if isinstance(envelope, dict):
        code = _str_or_none(envelope.get("code"))
        message = _str_or_none(envelope.get("message"))
        param = _str_or_none(envelope.get("param"))
        request_id = _str_or_none(envelope.get("requestId"))
        raw_errors = envelope.get("errors")
        if isinstance(raw_errors, list):
            errors = [e for e in raw_errors if isinstance(e, dict)]
    elif isinstance(body, dict) and "detail" in body:  # a bare framework answer, e.g. {"detail": "..."}
        message = str(body["detail"])
    if request_id is None and headers is not None:
        request_id = headers.get("x-request-id") or headers.get("X-Request-Id")
    if not message:
        snippet = " ".join(text.split())[:200]
        message = f"HTTP {status_code}" + (f": {snippet}" if snippet else "")
    cls = error_class_for(status_code, code)
    kwargs: Dict[str, Any] = {
        "status_code": status_code,
        "code": code,
        "request_id": request_id,
        "param": param,
        "errors": errors,
        "body": body,
    }
    if cls is RateLimitError:
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    return cls(message, **kwargs)


def _str_or_none(value: Any) -> Optional[str]:
    return value if isinstance(value, str) else None
