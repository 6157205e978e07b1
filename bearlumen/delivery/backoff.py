"""When to try again: exponential backoff with jitter, and the service's ``Retry-After``.

Delay before retry ``n`` (n = 0, 1, ...) after consecutive failures: ``d = min(maximum, initial * 2**n)``,
then "equal jitter": uniform in ``[d/2, d]``, so that many processes recovering from one outage do not
retry in lockstep, and never ~0 (which would hammer a struggling service). A ``Retry-After`` answer is
honoured as given (capped at ``max_retry_after``), plus up to 10 % jitter.
"""

from __future__ import annotations

import random
from typing import Optional


class Backoff:
    def __init__(self, initial: float = 0.5, maximum: float = 30.0, max_retry_after: float = 300.0) -> None:
        if initial <= 0 or maximum < initial:
            raise ValueError("backoff needs 0 < initial_backoff <= max_backoff")
        self.initial = initial
        self.maximum = maximum
        self.max_retry_after = max_retry_after
        self.failures = 0

    def next_delay(self, retry_after: Optional[float] = None) -> float:
        """The wait before the next attempt (and count one more failure)."""
        exponent = min(self.failures, 32)
        self.failures += 1
        if retry_after is not None and retry_after >= 0:
            wait = min(float(retry_after), self.max_retry_after)
            return wait + random.uniform(0.0, 0.1 * wait)
        ceiling = min(self.maximum, self.initial * (2.0**exponent))
        return random.uniform(ceiling / 2.0, ceiling)

    def reset(self) -> None:
        self.failures = 0
