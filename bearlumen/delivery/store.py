"""What the sender reads from: a queue of built events, each claimed by one sender at a time.

Two implementations: :class:`bearlumen.delivery.spool.Spool` (SQLite file, survives crashes, can be
shared by several processes) and :class:`bearlumen.delivery.memory.MemoryStore` (this process only).
Rows are ordered by ``id`` (oldest first). A row is *claimed* by one owner with a lease; it is removed
only by :meth:`Store.ack` (the service acknowledged it) or :meth:`Store.reject` (moved to the quarantine:
refused as invalid, or failing alone while the rest is delivered), where it stays until ``requeue``
(resend) or ``discard`` (``bearlumen spool retry / drop``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

from typing_extensions import Protocol

Quarantined = Tuple[str, str, str, float, str]  # key, code, message, quarantined at (epoch s), body


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
        """Move ``rows`` from the queue to the quarantine, with the reason."""
        ...

    def defer(self, rows: Sequence[Row], seconds: float) -> None:
        """Keep ``rows`` (leased to this owner) from being sent for ``seconds``."""
        ...

    def quarantined(self, limit: int = 1000) -> List[Quarantined]:
        """Quarantined events, oldest first."""
        ...

    def quarantine_count(self) -> int: ...

    def requeue(self, keys: Optional[Sequence[str]] = None) -> int:
        """Quarantined events (``keys``, or all) back into the queue; returns how many."""
        ...

    def discard(self, keys: Optional[Sequence[str]] = None) -> int:
        """Quarantined events (``keys``, or all) deleted for good; returns how many."""
        ...

    def reclaim(self) -> bool:
        """Give disk space back once the queue is empty (spool); True if something was freed."""
        ...

    def usable(self) -> bool:
        """False when the store can no longer keep events (the spool file was deleted)."""
        ...

    def dump(self) -> List[Row]:
        """Every queued row, oldest first."""
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
