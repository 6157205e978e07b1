"""The in-memory store (``spool=False``): the same queue as the spool, for this process only.

Bounded by ``max_events``: beyond it new events are refused (drop-newest), and the exporter counts them as
``dropped_queue_full``. Nothing survives the process: what is undelivered at exit is lost (which is why
the spool is on by default). A forked child starts with an empty store: the parent's events are the
parent's to deliver.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Set, Tuple

from bearlumen.delivery.store import AppendResult, Row

DEFAULT_MAX_EVENTS = 100_000


class MemoryStore:
    def __init__(self, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        self._max_events = max_events
        self.lock = threading.Lock()
        self._rows: OrderedDict[int, Row] = OrderedDict()
        self._keys: Set[str] = set()
        self._leased: Dict[int, Row] = {}
        self._next_id = 1

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
            while self._rows and len(taken) < limit:
                _, row = self._rows.popitem(last=False)
                self._leased[row.id] = row
                taken.append(row)
        return taken

    def renew(self, rows: Sequence[Row], extra: float = 0.0) -> List[Row]:
        with self.lock:
            return [row for row in rows if row.id in self._leased]

    def release(self, rows: Sequence[Row]) -> None:
        with self.lock:
            for row in rows:
                if self._leased.pop(row.id, None) is not None:
                    self._rows[row.id] = row
            # keep the queue in id order (oldest first)
            self._rows = OrderedDict(sorted(self._rows.items()))

    def release_all(self) -> None:
        self.release(list(self._leased.values()))

    def _remove(self, rows: Sequence[Row]) -> None:
        with self.lock:
            for row in rows:
                found = self._leased.pop(row.id, None) or self._rows.pop(row.id, None)
                if found is not None:
                    self._keys.discard(found.key)

    def ack(self, rows: Sequence[Row]) -> None:
        self._remove(rows)

    def reject(self, rows: Sequence[Row], code: str, message: str) -> None:
        self._remove(rows)

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
