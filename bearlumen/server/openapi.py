"""The published OpenAPI document, made true to what the service answers.

FastAPI documents a 422 for every validated operation, which this service never sends (every validation
failure is a 400 in the error envelope of docs/api.md), and knows nothing of the answers the gate and the
validators give. ``document`` replaces the 422 with every error status each operation can answer, each with
the error envelope's schema, the codes it can carry, and its headers.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Iterable, List, Optional, Pattern, Set, Tuple

__all__ = ["ERRORS", "PathIndex", "document", "error_statuses"]

# status -> (what it means, the codes it carries)
ERRORS: Dict[int, Tuple[str, List[str]]] = {
    400: (
        "The request is invalid; `message` says what to change and `param` names the field.",
        [
            "invalid_request",
            "invalid_quantity",
            "invalid_timestamp",
            "invalid_date",
            "invalid_limit",
            "invalid_email",
            "batch_too_large",
            "invalid_batch",
        ],
    ),
    401: ("Missing, malformed, unknown or revoked API key.", ["authentication_failed"]),
    404: ("No such id (or another tenant's id: indistinguishable).", ["not_found"]),
    408: ("The request body did not arrive in time.", ["request_timeout"]),
    409: ("An end user with this external_id already exists.", ["duplicate_external_id"]),
    413: ("The request body exceeds 32 MiB.", ["request_too_large"]),
    429: ("The key's rate limit is exceeded; retry after `Retry-After` seconds.", ["rate_limited"]),
    503: ("The database is unavailable; retry after `Retry-After` seconds.", ["unavailable"]),
}
_HEADERS: Dict[int, Dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "description": "`Bearer`"}},
    429: {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "Seconds."}},
    503: {"Retry-After": {"schema": {"type": "integer", "minimum": 1}, "description": "Seconds."}},
}
# Operations that resolve an end user named in the body (unknown: 404) besides those with an id in the path.
_NOT_FOUND = {("/v1/usage/events", "post"), ("/v1/subscriptions", "post")}
_CONFLICT = {("/v1/end_users", "post"), ("/v1/end_users/{end_user_id}", "patch")}


def error_statuses(path: str, method: str, has_body: bool) -> Set[int]:
    """Every error status the operation can answer (docs/api.md)."""
    if not path.startswith("/v1/"):
        return set()
    statuses = {400, 401, 413, 429, 503}  # 413: a declared Content-Length over the limit, on any route
    if has_body:
        statuses.add(408)
    if "{" in path or (path, method) in _NOT_FOUND:
        statuses.add(404)
    if (path, method) in _CONFLICT:
        statuses.add(409)
    return statuses


def _response(status: int) -> Dict[str, Any]:
    meaning, codes = ERRORS[status]
    response: Dict[str, Any] = {
        "description": f"{meaning} Codes: {', '.join(f'`{c}`' for c in codes)}.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}},
    }
    if status in _HEADERS:
        response["headers"] = _HEADERS[status]
    return response


def _without_null(schema: Dict[str, Any]) -> Dict[str, Any]:
    """A parameter is absent or a value, never JSON null: ``anyOf [X, null]`` (FastAPI's Optional) -> X."""
    alternatives = [a for a in schema.get("anyOf", []) if a != {"type": "null"}]
    if len(alternatives) != 1 or len(alternatives) == len(schema.get("anyOf", [])):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**alternatives[0], **rest}


def document(schema: Dict[str, Any], components: Dict[str, Any]) -> Dict[str, Any]:
    """``schema`` (FastAPI's) with our component schemas and the true error answers of every operation."""
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(components)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _without_null(parameter["schema"])
            responses = operation.setdefault("responses", {})
            responses.pop("422", None)
            own = set(responses)  # an answer the route declares itself (OTLP's google.rpc.Status) stays
            for status in sorted(error_statuses(path, method, "requestBody" in operation)):
                if str(status) not in own:
                    responses[str(status)] = _response(status)
    return schema


class PathIndex:
    """The path templates of the API: which template a concrete path is, and the methods it answers (for
    ``Allow`` headers, and to name a route the router never reached in logs and metrics)."""

    def __init__(self, routes: Iterable[Tuple[str, Iterable[str]]]) -> None:
        """``routes``: (path template, methods) pairs; a template may repeat (one route per method)."""
        methods: Dict[str, Set[str]] = {}
        for template, verbs in routes:
            methods.setdefault(template, set()).update(v.upper() for v in verbs)
        self._entries: List[Tuple[Pattern[str], str, List[str]]] = []
        for template, verbs in methods.items():
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            self._entries.append((re.compile(pattern), template, sorted(verbs)))

    def match(self, path: str) -> Optional[Tuple[str, List[str]]]:
        """(template, methods) of ``path``, or None."""
        for pattern, template, methods in self._entries:
            if pattern.fullmatch(path):
                return template, methods
        return None
