"""The error envelope of docs/api.md and the exceptions that produce it.

``{"error": {"code", "message", "param", "requestId", "errors"?}}``. Messages never echo secrets: an API key
is never part of a message, and a cross-tenant id gets exactly the message an unknown id gets.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

__all__ = [
    "ApiError",
    "FieldError",
    "auth_failed",
    "error_body",
    "invalid",
    "not_found",
]


class ApiError(Exception):
    """An error answer: status, machine-readable code, human message, and the offending parameter."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        param: Optional[str] = None,
        errors: Optional[List[Dict[str, Any]]] = None,
        headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.errors = errors
        self.headers = dict(headers or {})


class FieldError(Exception):
    """One invalid field: raised by validators, turned into an ApiError (or a batch item error) by callers."""

    def __init__(self, code: str, message: str, param: Optional[str], status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.status = status

    def as_api_error(self) -> ApiError:
        return ApiError(self.status, self.code, self.message, param=self.param)

    def as_item(self, index: int) -> Dict[str, Any]:
        return {"index": index, "code": self.code, "message": self.message, "param": self.param}


def invalid(message: str, param: Optional[str] = None, code: str = "invalid_request") -> FieldError:
    return FieldError(code, message, param)


def not_found(what: str, param: Optional[str] = None) -> FieldError:
    """404 for an unknown id, and for another tenant's id: the two must be indistinguishable."""
    return FieldError("not_found", f"No such {what}.", param, status=404)


def auth_failed(message: str = "Missing or invalid API key.") -> ApiError:
    return ApiError(401, "authentication_failed", message, headers={"WWW-Authenticate": "Bearer"})


def error_body(
    code: str,
    message: str,
    request_id: Optional[str],
    *,
    param: Optional[str] = None,
    errors: Optional[List[Dict[str, Any]]] = None,
) -> Dict[str, Any]:
    error: Dict[str, Any] = {"code": code, "message": message, "param": param, "requestId": request_id}
    if errors is not None:
        error["errors"] = errors
    return {"error": error}
