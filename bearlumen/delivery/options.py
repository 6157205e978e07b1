"""Tuning of the exporter: ``bearlumen.instrument(..., **delivery_options)`` (all optional).

| option              | default   | meaning                                                          |
|---------------------|-----------|------------------------------------------------------------------|
| `max_batch_size`    | 1000      | events per request (the API's maximum)                           |
| `send_interval`     | 1.0 s     | about one batch per interval (a full batch or a flush goes now)  |
| `commit_interval`   | 0.05 s    | group-commit window of the spool writer (see "Bounds" below)     |
| `strict`            | False     | `submit()` returns once its event is in the spool                |
| `strict_timeout`    | 1.0 s     | the longest a strict `submit()` waits                            |
| `max_queue_size`    | 10,000    | calls between the caller and the writer (beyond: dropped)        |
| `max_memory_events` | 100,000   | undelivered events kept with `spool=False` (beyond: dropped)     |
| `max_spool_events`  | 1,000,000 | undelivered events kept in the spool (beyond: newest dropped)    |
| `max_spool_bytes`   | 512 MiB   | the same in bytes of JSON                                        |
| `spool_synchronous` | "FULL"    | SQLite `synchronous` ("NORMAL": faster, not power-loss safe)     |
| `spool_dir`         | None      | folder of the default spool (else `$BEARLUMEN_SPOOL_DIR`, else   |
|                     |           | `~/.bearlumen/spool`)                                            |
| `request_timeout`   | 10 s      | one delivery request (a timed-out batch is resent, same keys)    |
| `initial_backoff`   | 0.5 s     | first retry delay; doubles per failure, with jitter              |
| `max_backoff`       | 30 s      | longest retry delay (without Retry-After)                        |
| `max_retry_after`   | 300 s     | longest Retry-After honoured                                     |
| `lease_seconds`     | 60 s      | how long claimed spool rows stay reserved to one sender          |
| `poll_interval`     | 2.0 s     | how often an idle sender looks for rows of other/dead processes  |
| `flush_timeout`     | 60 s      | the bound of `flush(timeout=None)`                               |
| `shutdown_timeout`  | 5.0 s     | the bound of the flush at interpreter exit / `shutdown()`        |
| `sigterm_timeout`   | 5.0 s     | the bound of spooling the in-memory buffer at SIGTERM            |
| `warn_interval`     | 60 s      | at most one warning of a kind per interval (counters count all)  |

Bounds: an event reaches the spool within `commit_interval` plus the time to price the calls queued before
it (well under 200 ms at default settings) after `submit()` returned; with `strict=True` before it returns.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Dict, Optional


@dataclass(frozen=True)
class DeliveryOptions:
    max_batch_size: int = 1000
    send_interval: float = 1.0
    commit_interval: float = 0.05
    strict: bool = False
    strict_timeout: float = 1.0
    max_queue_size: int = 10_000
    max_memory_events: int = 100_000
    max_spool_events: int = 1_000_000
    max_spool_bytes: int = 512 * 1024 * 1024
    spool_synchronous: str = "FULL"
    spool_dir: Optional[str] = None
    request_timeout: float = 10.0
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    max_retry_after: float = 300.0
    lease_seconds: float = 60.0
    poll_interval: float = 2.0
    flush_timeout: float = 60.0
    shutdown_timeout: float = 5.0
    sigterm_timeout: float = 5.0
    warn_interval: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch_size <= 1000:
            raise ValueError("max_batch_size must be between 1 and 1000")
        for name in ("max_queue_size", "max_memory_events", "max_spool_events", "max_spool_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        for name in ("request_timeout", "lease_seconds", "initial_backoff", "poll_interval"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.lease_seconds <= self.request_timeout:
            raise ValueError("lease_seconds must exceed request_timeout (a lease must outlive a request)")
        if self.max_backoff < self.initial_backoff:
            raise ValueError("max_backoff must be >= initial_backoff")

    @classmethod
    def from_kwargs(cls, options: Dict[str, Any]) -> DeliveryOptions:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"unknown delivery option(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**options)
