"""Per-key rate limit: a token bucket of ``rate`` tokens per second, burst ``rate`` (off by default)."""

from __future__ import annotations

import math
import threading
import time
from typing import Dict, Tuple

__all__ = ["RateLimiter"]


class RateLimiter:
    def __init__(self, rate: float) -> None:
        if not rate > 0:
            raise ValueError("The rate limit must be a positive number of requests per second.")
        self.rate = float(rate)
        self.burst = max(1.0, float(rate))
        self._buckets: Dict[str, Tuple[float, float]] = {}  # key id -> (tokens, last refill)
        self._lock = threading.Lock()

    def acquire(self, key_id: str) -> int:
        """Take one token for ``key_id``: 0 when allowed, else the whole seconds to wait (>= 1)."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key_id] = (tokens - 1.0, now)
                return 0
            self._buckets[key_id] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / self.rate))
