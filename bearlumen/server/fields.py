"""Field validators shared by every request body; each raises FieldError naming the field in ``param``."""

from __future__ import annotations

import re
from typing import Any, Collection, Mapping, Optional, Tuple

import orjson

from bearlumen.server.errors import FieldError, invalid
from bearlumen.server.jsonio import dumps
from bearlumen.server.timefmt import MAX_US, MIN_US, parse_ts

__all__ = [
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_OFFSET",
    "check_fields",
    "email",
    "enum",
    "metadata_json",
    "optional_text",
    "page",
    "range_us",
    "text",
    "timestamp_param",
]

MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 254  # nesting levels (orjson serializes up to this depth)
MAX_OFFSET = 2**63 - 1  # what both databases take as OFFSET
_RANGE = "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"
# Deliberately simple: one @, no whitespace, a dot in the domain. Deliverability is not our business.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def check_fields(body: Mapping[str, Any], allowed: Collection[str], prefix: str = "") -> None:
    """Reject unknown keys: a misspelt ``agentid`` silently dropped would misattribute money."""
    for key in body:
        if key not in allowed:
            raise invalid(f"Unknown field {key!r}.", prefix + key)


def text(value: Any, param: str, max_len: int = 255) -> str:
    """A required string of 1..max_len characters, storable in any database (no NUL, valid UTF-8)."""
    if not isinstance(value, str):
        raise invalid(f"{param} must be a string.", param)
    if not 1 <= len(value) <= max_len:
        raise invalid(f"{param} must be 1 to {max_len} characters long.", param)
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise invalid(f"{param} is not valid Unicode text.", param) from None
    if "\x00" in value:
        raise invalid(f"{param} must not contain NUL characters.", param)
    return value


def optional_text(value: Any, param: str, max_len: int = 255) -> Optional[str]:
    return None if value is None else text(value, param, max_len)


def email(value: Any, param: str = "email") -> Optional[str]:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 320 or not _EMAIL.fullmatch(value):
        raise FieldError("invalid_email", f"{param} is not a valid email address.", param)
    return text(value, param, 320)


def enum(value: Any, param: str, choices: Tuple[str, ...]) -> str:
    if value not in choices:
        raise invalid(f"{param} must be one of: {', '.join(choices)}.", param)
    return str(value)


def metadata_json(value: Any, param: str = "metadata") -> str:
    """A JSON object of at most 16 KiB, serialized for storage (numbers keep the digits the client sent)."""
    if value is None:
        return "{}"
    if not isinstance(value, dict):
        raise invalid(f"{param} must be a JSON object.", param)
    try:
        encoded = dumps(value)
    except (TypeError, orjson.JSONEncodeError) as exc:
        if "recursion" in str(exc).lower():
            raise invalid(
                f"{param} is nested too deeply: at most {MAX_METADATA_DEPTH} levels of objects and arrays.",
                param,
            ) from None
        raise invalid(f"{param} contains text that is not valid Unicode.", param) from None
    if len(encoded) > MAX_METADATA_BYTES:
        raise invalid(f"{param} must be at most {MAX_METADATA_BYTES} bytes as JSON.", param)
    # A NUL inside metadata is stored as the JSON escape \u0000 (text), never as a NUL byte: accepted.
    return encoded.decode("utf-8")


def timestamp_param(value: Any, param: str, code: str = "invalid_date") -> int:
    """An ISO 8601 date or date-time string -> microseconds since the epoch (UTC)."""
    micros = parse_ts(value) if isinstance(value, str) else None
    if micros is None:
        raise FieldError(
            code, f"{param} must be an ISO 8601 date or date-time (e.g. 2024-01-31T00:00:00Z).", param
        )
    if not MIN_US <= micros <= MAX_US:
        raise FieldError(code, f"{param} must be between {_RANGE} once its UTC offset is applied.", param)
    return micros


def range_us(
    start: Optional[str], end: Optional[str], *, required: bool = False
) -> Tuple[Optional[int], Optional[int]]:
    """Parse ``start_date`` / ``end_date`` (start-inclusive, end-exclusive)."""
    if required:
        for name, value in (("start_date", start), ("end_date", end)):
            if value is None:
                raise invalid(f"{name} is required.", name)
    start_us = None if start is None else timestamp_param(start, "start_date")
    end_us = None if end is None else timestamp_param(end, "end_date")
    if start_us is not None and end_us is not None and start_us > end_us:
        raise FieldError("invalid_date", "start_date must not be after end_date.", "start_date")
    return start_us, end_us


def page(limit: Optional[int], offset: Optional[int]) -> Tuple[int, int]:
    """``limit`` 1..1000 (default 100), ``offset`` 0..2**63-1 (default 0)."""
    limit = 100 if limit is None else limit
    offset = 0 if offset is None else offset
    if not 1 <= limit <= 1000:
        raise FieldError("invalid_limit", "limit must be between 1 and 1000.", "limit")
    if not 0 <= offset <= MAX_OFFSET:
        raise FieldError("invalid_limit", f"offset must be between 0 and {MAX_OFFSET}.", "offset")
    return limit, offset
