"""Rendering: the Jinja2 environment (autoescaped), the range picker's parsing and the response headers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Dict, Mapping, Optional
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse

from bearlumen.server.timefmt import DAY_US, format_date, now_us, parse_ts

__all__ = ["DEFAULT_DAYS", "Range", "html", "parse_range"]

DEFAULT_DAYS = 7
MAX_HOURS = 24 * 62  # an hourly chart of at most two months; longer ranges draw by day

_env = Environment(
    loader=PackageLoader("bearlumen.server.dashboard", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

# No script, style or frame from anywhere but this server; no inline script at all.
_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def html(template: str, context: Mapping[str, Any], status: int = 200) -> HTMLResponse:
    body = _env.get_template(template).render(**context)
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


@dataclass(frozen=True)
class Range:
    """The picked days: ``start`` and ``end`` inclusive (as shown), ``span`` the half-open microseconds."""

    start: str
    end: str
    span: tuple[int, int]
    bucket: str
    error: Optional[str] = None

    def query(self, **extra: Optional[str]) -> str:
        """The query string that keeps this range (and bucket) plus ``extra`` (None values left out)."""
        params: Dict[str, str] = {"start": self.start, "end": self.end, "bucket": self.bucket}
        params.update({k: v for k, v in extra.items() if v is not None})
        return urlencode(params)


def _day(text: Optional[str]) -> Optional[int]:
    if not text or len(text) != 10:
        return None
    try:
        date.fromisoformat(text)
    except ValueError:
        return None
    return parse_ts(text)


def parse_range(params: Mapping[str, str]) -> Range:
    """From ``start`` / ``end`` (``YYYY-MM-DD``, both days included) and ``bucket`` (hour, day or auto).

    Missing or unreadable days fall back to the last DEFAULT_DAYS days, saying so."""
    today = now_us() // DAY_US * DAY_US
    start_us, end_us = _day(params.get("start")), _day(params.get("end"))
    error = None
    if (params.get("start") and start_us is None) or (params.get("end") and end_us is None):
        error = "Dates are YYYY-MM-DD; showing the last 7 days instead."
        start_us = end_us = None
    if start_us is not None and end_us is not None and start_us > end_us:
        error = "The start is after the end; showing the last 7 days instead."
        start_us = end_us = None
    if end_us is None:
        end_us = today
    if start_us is None:
        start_us = end_us - (DEFAULT_DAYS - 1) * DAY_US
    span = (start_us, end_us + DAY_US)
    hours = (span[1] - span[0]) // (DAY_US // 24)
    bucket = params.get("bucket") or "auto"
    if bucket not in ("hour", "day") or (bucket == "hour" and hours > MAX_HOURS):
        bucket = "hour" if hours <= 72 else "day"
    return Range(format_date(start_us), format_date(end_us), span, bucket, error)
