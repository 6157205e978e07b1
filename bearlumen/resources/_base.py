"""Shared plumbing of the resources: base classes, path building, client-side checks.

The client-side checks only catch what the service would certainly reject, and raise the class its answer
would map to (the service stays the authority): a malformed email, a non-finite or negative quantity, a
batch over 1000 events.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Union
from urllib.parse import quote

from bearlumen._config import NotGiven
from bearlumen._exceptions import InvalidEmailError, InvalidRequestError

if TYPE_CHECKING:
    from bearlumen._http import AsyncHTTPClient, SyncHTTPClient

MAX_BATCH_SIZE = 1000

DateLike = Union[str, _dt.datetime, _dt.date]
Quantity = Union[int, float, Decimal]

# exactly one "@", something on both sides, no whitespace: anything else is surely not an address.
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+")


class SyncAPIResource:
    def __init__(self, http: SyncHTTPClient) -> None:
        self._http = http


class AsyncAPIResource:
    def __init__(self, http: AsyncHTTPClient) -> None:
        self._http = http


def path(template: str, *ids: str) -> str:
    """``path('/v1/end_users/{}', id)`` with each id checked and percent-encoded (no path injection)."""
    quoted = []
    for value in ids:
        if not isinstance(value, str) or not value.strip():
            raise InvalidRequestError(
                f"An id must be a non-empty string, got {value!r}", code="invalid_request", param="id"
            )
        quoted.append(quote(value, safe=""))
    return template.format(*quoted)


def given(**fields: Any) -> Dict[str, Any]:
    """The fields the caller actually passed (NOT_GIVEN dropped; None kept: it clears the field)."""
    return {k: v for k, v in fields.items() if not isinstance(v, NotGiven)}


def not_none(**fields: Any) -> Dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def date_param(value: Optional[DateLike]) -> Optional[str]:
    if value is None:
        return None
    # imported here: _http imports httpx, which resource modules must not pull in at import time
    from bearlumen._http import format_timestamp

    return format_timestamp(value)


def check_email(email: Any) -> None:
    if email is None or isinstance(email, NotGiven):
        return
    if not isinstance(email, str) or not _EMAIL_SHAPE.fullmatch(email.strip()):
        raise InvalidEmailError(f"Invalid email address: {email!r}", code="invalid_email", param="email")


def _quantity_problem(quantity: Any) -> Optional[str]:
    if isinstance(quantity, bool) or not isinstance(quantity, (int, float, Decimal)):
        return f"quantity must be a number, got {type(quantity).__name__}"
    if isinstance(quantity, Decimal):
        if not quantity.is_finite():
            return f"quantity must be a finite number, got {quantity}"
    elif isinstance(quantity, float) and not math.isfinite(quantity):
        return f"quantity must be a finite number, got {quantity}"
    if quantity < 0:
        return f"quantity must be >= 0, got {quantity}"
    return None


def _wire_quantity(quantity: Union[int, float, Decimal]) -> Union[int, float]:
    if isinstance(quantity, Decimal):
        return int(quantity) if quantity == quantity.to_integral_value() else float(quantity)
    return quantity


def new_idempotency_key() -> str:
    return f"sdk_{uuid.uuid4().hex}"


def prepare_event(event: Mapping[str, Any]) -> Dict[str, Any]:
    """A wire copy of one event (the caller's dict is never touched): None fields dropped, an idempotency
    key added when none was given (before the first attempt: every retry sends the same key), the
    timestamp serialized, a Decimal quantity made a JSON number."""
    wire = {k: v for k, v in event.items() if v is not None}
    if "idempotency_key" not in wire:
        wire["idempotency_key"] = new_idempotency_key()
    if "quantity" in wire and _quantity_problem(wire["quantity"]) is None:
        wire["quantity"] = _wire_quantity(wire["quantity"])
    timestamp = wire.get("timestamp")
    if isinstance(timestamp, (_dt.datetime, _dt.date)):
        wire["timestamp"] = date_param(timestamp)
    return wire


def check_event(event: Mapping[str, Any]) -> None:
    problem = _quantity_problem(event.get("quantity"))
    if problem is not None:
        raise InvalidRequestError(problem, code="invalid_quantity", param="quantity")


def as_event_list(events: Any) -> List[Any]:
    if isinstance(events, (Mapping, str, bytes)) or not hasattr(events, "__iter__"):
        raise InvalidRequestError(
            "events must be a list of event dicts", code="invalid_request", param="events"
        )
    return list(events)


def prepare_batch(events: List[Any]) -> List[Dict[str, Any]]:
    """Wire copies of a batch's events, checked like the service would (1..1000 events; the whole batch
    is rejected with ``invalid_batch`` and one ``errors`` item per bad event)."""
    if not events:
        raise InvalidRequestError("A batch needs at least one event", code="invalid_request", param="events")
    if len(events) > MAX_BATCH_SIZE:
        raise InvalidRequestError(
            f"A batch holds at most {MAX_BATCH_SIZE} events, got {len(events)}: split it",
            code="batch_too_large",
            param="events",
        )
    errors: List[Dict[str, Any]] = []
    for index, event in enumerate(events):
        if not isinstance(event, Mapping):
            errors.append(
                {
                    "index": index,
                    "code": "invalid_request",
                    "message": "an event must be a dict",
                    "param": None,
                }
            )
            continue
        problem = _quantity_problem(event.get("quantity"))
        if problem is not None:
            errors.append(
                {"index": index, "code": "invalid_quantity", "message": problem, "param": "quantity"}
            )
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise InvalidRequestError(
            f"Invalid event at index {first['index']}: {first['message']}{more}; nothing was recorded",
            code="invalid_batch",
            param="events",
            errors=errors,
        )
    return [prepare_event(event) for event in events]
