"""Prometheus metrics of one app (its own registry, so several apps in one process never mix counts).

Served at ``/metrics`` only when the service runs with ``--metrics``: the numbers cover every tenant, so
they are for the operator's scraper, not for API keys (which only ever see their own tenant's data).
Labels never hold ids, keys or anything a client chose except the route template and the error code.
"""

from __future__ import annotations

from typing import Optional

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "bearlumen_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "bearlumen_http_request_duration_seconds",
            "Time from the request's arrival to the end of its answer, by method and route template.",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.rejections = Counter(
            "bearlumen_http_rejections",
            "Error answers, by status and error code (docs/api.md).",
            ["status", "code"],
            registry=self.registry,
        )
        self.events_recorded = Counter(
            "bearlumen_events_recorded", "Usage events stored (new idempotency keys).", registry=self.registry
        )
        self.events_duplicate = Counter(
            "bearlumen_events_duplicate",
            "Usage events skipped because their idempotency key was already stored.",
            registry=self.registry,
        )

    def observe(self, method: str, route: str, status: int, seconds: float, code: Optional[str]) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        if status >= 400:
            self.rejections.labels(str(status), code or "none").inc()

    def events(self, recorded: int, duplicate: int) -> None:
        if recorded:
            self.events_recorded.inc(recorded)
        if duplicate:
            self.events_duplicate.inc(duplicate)

    def render(self) -> bytes:
        return generate_latest(self.registry)
