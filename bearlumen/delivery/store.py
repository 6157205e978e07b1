"""What the sender reads from: a queue of built events, each claimed by one sender at a time.

Two implementations: :class:`bearlumen.delivery.spool.Spool` (SQLite file, survives crashes, can be
shared by several processes) and :class:`bearlumen.delivery.memory.MemoryStore` (this process only).
Rows are ordered by ``id`` (oldest first). A row is *claimed* by one owner with a lease; it is removed
only by :meth:`Store.ack` (the service acknowledged it) or :meth:`Store.reject` (the service refused it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from typing_extensions import Protocol


@dataclass
class Row:
    """One built event waiting for delivery: its idempotency key and JSON body are fixed for good."""

    id: int
    key: str
    body: str  # the event as JSON text (what build_event returned, serialized once)
    seq: int = 0  # this process's submit order (memory store only; 0 when unknown)


@dataclass
class AppendResult:
    rows: List[Row]  # the rows now stored (claimed by the caller when asked to)
    dropped: int  # refused because the store is full (drop-newest policy)


class Store(Protocol):
    """The queue between the writer (events built on the exporter's thread) and the sender."""

    lock: Any  # a threading.Lock held around every operation (and across fork() by the fork handler)

    @property
    def path(self) -> Optional[str]: ...

    def append(self, items: Sequence[Tuple[str, str]], *, claim: bool = False) -> AppendResult:
        """Store ``(key, body)`` items in order, as far as the size cap allows (drop newest).

        A key already in the store is not stored twice (it is the same event). With ``claim`` the new
        rows are leased to this owner at once (the synchronous mode sends them right away).
        """
        ...

    def claim(self, limit: int) -> List[Row]:
        """Lease up to ``limit`` of the oldest unleased rows (or rows of dead / expired owners)."""
        ...

    def renew(self, rows: Sequence[Row], extra: float = 0.0) -> List[Row]:
        """Extend this owner's lease on ``rows``; returns the rows still leased to it."""
        ...

    def release(self, rows: Sequence[Row]) -> None:
        """Give the lease on ``rows`` back (they will be sent later, by anyone)."""
        ...

    def release_all(self) -> None:
        """Give back every lease this owner holds (shutdown)."""
        ...

    def ack(self, rows: Sequence[Row]) -> None:
        """The service acknowledged ``rows`` (recorded or duplicate): remove them."""
        ...

    def reject(self, rows: Sequence[Row], code: str, message: str) -> None:
        """The service refused ``rows`` as invalid: remove them from the queue (kept aside if possible)."""
        ...

    def watermark(self) -> int:
        """The id of the newest row stored so far (0 when empty)."""
        ...

    def pending_upto(self, watermark: int) -> bool:
        """True while some row with ``id <= watermark`` is still waiting for delivery."""
        ...

    def pending(self) -> int:
        """Rows waiting for delivery (all owners)."""
        ...

    def after_fork_in_child(self) -> Store:
        """The store to use in a forked child (fresh connection and owner; memory: empty)."""
        ...

    def close(self) -> None: ...
