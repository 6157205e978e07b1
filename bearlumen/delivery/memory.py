"""The in-memory store (``spool=False``): the same queue as the spool, for this process only.

Bounded by ``max_events``: beyond it new events are refused (drop-newest), and the exporter counts them as
``dropped_queue_full``. Nothing survives the process: what is undelivered at exit is lost (which is why
the spool is on by default). A forked child starts with an empty store: the parent's events are the
parent's to deliver.

Also the fallback of a spool that became unusable (disk full, file deleted): the exporter moves the
spool's queue here, keeping the row ids, and warns. The quarantine is a list kept in memory too.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from bearlumen.delivery.store import AppendResult, Row

DEFAULT_MAX_EVENTS = 100_000


class MemoryStore:
    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self._max_events = max_events
        self.lock = threading.Lock()
        self._rows: OrderedDict[int, Row] = OrderedDict()
        self._keys: Set[str] = set()
        self._leased: Dict[int, Row] = {}
        self._deferred: Dict[int, float] = {}  # leased row id -> monotonic time it may be sent again
        self._quarantine: List[Tuple[str, str, str, float, str]] = []
        self._next_id = 1

    def adopt(self, rows: Iterable[Row]) -> None:
        """Take over rows of another store (same ids: flush watermarks stay meaningful)."""
        with self.lock:
            for row in rows:
                if row.key in self._keys:
                    continue
                self._keys.add(row.key)
                self._rows[row.id] = Row(row.id, row.key, row.body)
                self._next_id = max(self._next_id, row.id + 1)
            self._rows = OrderedDict(sorted(self._rows.items()))

    def usable(self) -> bool:
        return True

    @property
    def path(self) -> Optional[str]:
        return None

    def append(self, items: Sequence[Tuple[str, str]], *, claim: bool = False) -> AppendResult:
        stored: List[Row] = []
        dropped = 0
        with self.lock:
            for key, body in items:
                if key in self._keys:
                    continue
                if len(self._keys) >= self._max_events:
                    dropped += 1
                    continue
                row = Row(self._next_id, key, body)
                self._next_id += 1
                self._keys.add(key)
                if claim:
                    self._leased[row.id] = row
                else:
                    self._rows[row.id] = row
                stored.append(row)
        return AppendResult(stored, dropped)

    def claim(self, limit: int) -> List[Row]:
        taken: List[Row] = []
        with self.lock:
            if self._deferred:
                now = time.monotonic()
                for row_id, until in list(self._deferred.items()):
                    row = self._leased.get(row_id)
                    if until <= now and row is not None and len(taken) < limit:
                        del self._deferred[row_id]
                        taken.append(row)
            while self._rows and len(taken) < limit:
                _, row = self._rows.popitem(last=False)
                self._leased[row.id] = row
                taken.append(row)
        return taken

    def renew(self, rows: Sequence[Row], extra: float = 0.0) -> List[Row]:
        with self.lock:
            return [row for row in rows if row.id in self._leased]

    def defer(self, rows: Sequence[Row], seconds: float) -> None:
        with self.lock:
            until = time.monotonic() + max(0.0, seconds)
            for row in rows:
                if row.id in self._leased:
                    self._deferred[row.id] = until

    def release(self, rows: Sequence[Row]) -> None:
        with self.lock:
            for row in rows:
                self._deferred.pop(row.id, None)
                if self._leased.pop(row.id, None) is not None:
                    self._rows[row.id] = row
            # keep the queue in id order (oldest first)
            self._rows = OrderedDict(sorted(self._rows.items()))

    def release_all(self) -> None:
        with self.lock:
            leased = list(self._leased.values())
        self.release(leased)

    def _remove(self, rows: Sequence[Row]) -> List[Row]:
        removed = []
        with self.lock:
            for row in rows:
                self._deferred.pop(row.id, None)
                found = self._leased.pop(row.id, None) or self._rows.pop(row.id, None)
                if found is not None:
                    self._keys.discard(found.key)
                    removed.append(found)
        return removed

    def ack(self, rows: Sequence[Row]) -> None:
        self._remove(rows)

    def reject(self, rows: Sequence[Row], code: str, message: str) -> None:
        now = time.time()
        for row in self._remove(rows):
            with self.lock:
                self._quarantine.append((row.key, code, message[:500], now, row.body))

    def quarantined(self, limit: int = 1000) -> List[Tuple[str, str, str, float, str]]:
        with self.lock:
            return list(self._quarantine[:limit])

    def quarantine_count(self) -> int:
        return len(self._quarantine)

    def requeue(self, keys: Optional[Sequence[str]] = None) -> int:
        wanted = None if keys is None else set(keys)
        with self.lock:
            back = [q for q in self._quarantine if wanted is None or q[0] in wanted]
            self._quarantine = [q for q in self._quarantine if not (wanted is None or q[0] in wanted)]
        self.append([(key, body) for key, _, _, _, body in back])
        return len(back)

    def discard(self, keys: Optional[Sequence[str]] = None) -> int:
        wanted = None if keys is None else set(keys)
        with self.lock:
            before = len(self._quarantine)
            self._quarantine = [q for q in self._quarantine if not (wanted is None or q[0] in wanted)]
            return before - len(self._quarantine)

    def reclaim(self) -> bool:
        return False

    def dump(self) -> List[Row]:
        with self.lock:
            return sorted([*self._rows.values(), *self._leased.values()], key=lambda row: row.id)

    def watermark(self) -> int:
        with self.lock:
            return self._next_id - 1

    def pending_upto(self, watermark: int) -> bool:
        with self.lock:
            if self._rows and next(iter(self._rows)) <= watermark:
                return True
            return any(row_id <= watermark for row_id in self._leased)

    def pending(self) -> int:
        with self.lock:
            return len(self._keys)

    def after_fork_in_child(self) -> MemoryStore:
        return MemoryStore(self._max_events)

    def close(self) -> None:
        pass
