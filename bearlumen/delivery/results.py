"""What ``flush()`` answers: ``True`` when everything went, else a falsy :class:`FlushResult` that says why.

``flush()`` used to return a plain bool. It still returns ``True`` (the bool itself) when everything
emitted before it was acknowledged by the service *and* no event was dropped or quarantined since the
previous flush; code that does ``if bearlumen.flush():`` or ``assert bearlumen.flush() is True`` keeps
working. Anything else returns a :class:`FlushResult`, which is falsy and tells what happened::

    result = bearlumen.flush(timeout=10)
    if not result:
        print(result.pending, result.quarantined, result.dropped, result.reasons)

``bearlumen.stats()["last_flush"]`` holds the same facts (``result.as_dict()``) after every flush, also
after a successful one.
"""

from __future__ import annotations

from typing import Any, Dict, List


class FlushResult:
    """A flush that did not fully succeed (falsy). Counts are since the previous flush (or the start)."""

    __slots__ = ("complete", "deferred", "dropped", "ok", "pending", "quarantined")

    def __init__(
        self, *, complete: bool, quarantined: int, dropped: int, deferred: int, pending: int
    ) -> None:
        self.complete = complete  # everything emitted before the flush was acknowledged in time
        self.quarantined = quarantined  # events moved to the quarantine (`bearlumen spool list`)
        self.dropped = dropped  # events lost: buffer / spool full, or no event could be built
        self.deferred = deferred  # events set aside to be retried (the service cannot take them yet)
        self.pending = pending  # events not acknowledged yet (the in-memory buffer plus the store)
        self.ok = complete and not quarantined and not dropped

    def __bool__(self) -> bool:
        return self.ok

    @property
    def reasons(self) -> List[str]:
        found = []
        if not self.complete:
            found.append(f"timed out with {self.pending} event(s) not yet delivered")
        if self.quarantined:
            found.append(f"{self.quarantined} event(s) quarantined (bearlumen spool list)")
        if self.dropped:
            found.append(f"{self.dropped} event(s) dropped (see stats())")
        return found

    def as_dict(self) -> Dict[str, Any]:
        return {
            "ok": self.ok,
            "complete": self.complete,
            "quarantined": self.quarantined,
            "dropped": self.dropped,
            "deferred": self.deferred,
            "pending": self.pending,
        }

    def __repr__(self) -> str:
        return f"FlushResult({', '.join(f'{k}={v!r}' for k, v in self.as_dict().items())})"
