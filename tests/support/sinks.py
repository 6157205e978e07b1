"""A sink that keeps emitted calls in a list, for asserting exactly what an integration observed.

This is not a stand-in for delivery: tests of the integrations use it to read the exact `LLMCall`s,
and separate end-to-end tests send the same traffic through `bearlumen.instrument()` to the real
service.
"""

from __future__ import annotations

import threading
from typing import Any, List

from bearlumen import _handoff
from bearlumen.metering.record import LLMCall


class _Calls(List[LLMCall]):
    """The list of calls; reading it first waits for the finisher thread (see ListSink)."""

    def __len__(self) -> int:
        _handoff.wait(10.0)
        return super().__len__()

    def __iter__(self) -> Any:
        _handoff.wait(10.0)
        return super().__iter__()

    def __getitem__(self, index: Any) -> Any:
        _handoff.wait(10.0)
        return super().__getitem__(index)

    def __eq__(self, other: object) -> bool:
        _handoff.wait(10.0)
        return list(super().__iter__()) == other

    __hash__ = None  # type: ignore[assignment]


class ListSink:
    """Reading ``calls`` first waits for work handed over by finalizers (an abandoned stream's end runs
    on the finisher thread, as ``bearlumen.flush()`` waits for it too)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: _Calls = _Calls()

    @property
    def calls(self) -> List[LLMCall]:
        return self._calls

    def submit(self, call: LLMCall) -> None:
        with self._lock:
            self._calls.append(call)

    def clear(self) -> None:
        _handoff.wait(10.0)
        with self._lock:
            self._calls.clear()
