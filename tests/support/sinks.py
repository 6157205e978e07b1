"""A sink that keeps emitted calls in a list, for asserting exactly what an integration observed.

This is not a stand-in for delivery: tests of the integrations use it to read the exact `LLMCall`s,
and separate end-to-end tests send the same traffic through `bearlumen.instrument()` to the real
service.
"""

from __future__ import annotations

import threading
from typing import List

from bearlumen.metering.record import LLMCall


class ListSink:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: List[LLMCall] = []

    def submit(self, call: LLMCall) -> None:
        with self._lock:
            self.calls.append(call)

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()
