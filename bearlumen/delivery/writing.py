"""Writing: calls -> built events (idempotency key, price, JSON) -> the store, and the store's health.

Mixed into :class:`bearlumen.delivery.exporter.Exporter` (its writing half; the exporter holds the state).
The writer thread (or a sync caller) takes calls from the in-memory buffer, builds each event once (its
idempotency key is fixed here, before the first send), and commits them to the store in one transaction;
markers queued by ``flush()`` / strict submits / SIGTERM are set once everything before them is stored.
A spool file that was deleted is recreated (its queue moved into it); one that cannot be written (disk
full, read-only) is replaced by bounded memory; a drained spool gives its space back (``reclaim``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Deque, Dict, List, Optional, Tuple, Union

from bearlumen.delivery.memory import MemoryStore
from bearlumen.delivery.spool import Spool
from bearlumen.delivery.store import Row, Store
from bearlumen.metering.event import build_event, idempotency_key
from bearlumen.metering.pricing import UNPRICED, Price, PriceBook
from bearlumen.metering.record import LLMCall

logger = logging.getLogger("bearlumen")


class Marker:
    """Queued by flush() / a strict submit: the writer sets it once everything before it is stored."""

    __slots__ = ("done", "ok", "watermark")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.watermark = 0
        self.ok = True


class Unpriced:
    """Prices nothing: the fallback when the price book itself fails (the event must not be lost)."""

    def price(self, provider: str, model: Optional[str], usage: Any, at: float, **_facts: Any) -> Price:
        return Price(None, UNPRICED, "pricing error", model)


class Writing:
    """The exporter's writing half (see the module docstring). State lives on the exporter."""

    # provided by the exporter
    _store: Store
    _prices: PriceBook
    _buffer: Deque[Union[LLMCall, Marker]]
    _lock: Any
    _write_lock: Any
    _counts: Dict[str, int]
    _unwritten: List[Tuple[str, str]]
    _last_error: Optional[str]
    _spool_unusable: Optional[str]
    _reclaimed_at: float
    _sender_wake: threading.Event
    _sender_idle: bool
    options: Any

    def _note_error(self, exc: BaseException) -> None: ...

    def _warn(self, kind: str, message: str, *args: Any) -> None: ...

    def _build(self, call: LLMCall) -> Optional[Tuple[str, str]]:
        """``(idempotency key, event JSON)``; the key is fixed here, before the first send."""
        try:
            key = idempotency_key(call)
        except Exception:
            logger.debug("bearlumen: no idempotency key for a call", exc_info=True)
            with self._lock:
                self._counts["build_errors"] += 1
            return None
        event: Optional[Dict[str, Any]] = None
        for prices in (self._prices, Unpriced()):
            try:
                event = build_event(call, prices, key)  # type: ignore[arg-type]
                break
            except Exception:
                logger.debug("bearlumen: building the event failed", exc_info=True)
        if event is None:
            with self._lock:
                self._counts["build_errors"] += 1
            return None
        try:
            from bearlumen._http import encode_json

            body = encode_json(event).decode("utf-8")
        except Exception:
            body = json.dumps(event, default=str, separators=(",", ":"))
        return key, body

    def _write_buffer(self) -> None:
        """Move everything in the buffer into the store, signalling markers in order."""
        buffer = self._buffer
        items: List[Tuple[str, str]] = []
        taken = 0
        while buffer:
            try:
                item = buffer.popleft()
            except IndexError:
                break
            if isinstance(item, Marker):
                self._store_items(items)
                items = []
                item.ok = not self._unwritten
                item.watermark = self._safe_watermark()
                item.done.set()
                continue
            taken += 1
            built = self._build(item)
            if built is not None:
                items.append(built)
            if len(items) >= self.options.max_batch_size:
                self._store_items(items)
                items = []
        with self._lock:
            self._counts["emitted"] += taken
        self._store_items(items)

    def _store_items(self, items: List[Tuple[str, str]], *, claim: bool = False) -> List[Row]:
        """Write built events (after any the store refused earlier); returns the stored rows."""
        with self._write_lock:
            return self._store_items_locked(items, claim)

    def _store_items_locked(self, items: List[Tuple[str, str]], claim: bool) -> List[Row]:
        if self._unwritten:
            items = self._unwritten + items
            self._unwritten = []
        if not items:
            return []
        if isinstance(self._store, Spool) and not self._store.usable():
            self._fall_back("the spool file was deleted or replaced", recreate=True)
        try:
            try:
                result = self._store.append(items, claim=claim)
            except Exception as exc:
                if not isinstance(self._store, Spool):
                    raise
                self._fall_back(str(exc) or type(exc).__name__)  # disk full, read-only, I/O error
                result = self._store.append(items, claim=claim)
        except Exception as exc:
            self._note_error(exc)
            self._warn("spool_write", "bearlumen: cannot write to the delivery spool: %s", exc)
            keep = self.options.max_queue_size  # kept for the next try; beyond: drop newest
            self._unwritten = items[:keep]
            lost = len(items) - len(self._unwritten)
            if lost:
                with self._lock:
                    self._counts["dropped_queue_full"] += lost
            return []
        full = "dropped_spool_full" if isinstance(self._store, Spool) else "dropped_queue_full"
        with self._lock:
            self._counts["spooled"] += len(result.rows)
            self._counts[full] += result.dropped
        if result.dropped:
            self._warn(
                "store_full",
                "bearlumen: the delivery %s is full; dropped %d new usage event(s) (policy: drop newest)",
                "spool" if full == "dropped_spool_full" else "memory queue",
                result.dropped,
            )
        # A sender waiting for its next send wakes by itself (send_interval, or at once for a full batch
        # once it looks); waking it at every commit would cost a thread switch per commit for nothing.
        if result.rows and self._sender_idle:
            self._sender_wake.set()
        return result.rows

    def _fall_back(self, reason: str, *, recreate: bool = False) -> None:
        """The spool cannot keep events any more: go on with a new spool file, else bounded memory.

        A deleted spool file would silently swallow everything written after the deletion (SQLite writes
        on into the unlinked file): a new file is created at the same path (``recreate``) and the queue
        moved into it. When that fails too, or writing failed (disk full, read-only, I/O error), the queue
        goes into bounded memory: writing must never stall the exporter, or a strict / sync caller.
        What the old spool still holds (also leased rows) is copied, so an event in flight may be sent
        twice, which the service answers "duplicate". The next process opens the spool afresh.
        """
        old = self._store
        try:
            rows = old.dump()
        except Exception:
            logger.debug("bearlumen: cannot read the unusable spool", exc_info=True)
            rows = []
        with self._lock:
            self._counts["spool_fallbacks"] += 1
        if recreate and isinstance(old, Spool) and old.path and self._recreate(old, rows, reason):
            return
        memory = MemoryStore(self.options.max_memory_events)
        memory.adopt(rows)
        self._store = memory
        self._spool_unusable = reason[:200]
        with self._lock:
            self._last_error = f"spool unusable: {reason}"[:500]
        logger.warning(
            "bearlumen: the delivery spool %s cannot keep events (%s); %d undelivered event(s) moved to "
            "memory, which holds at most %d (max_memory_events) until this process ends",
            old.path,
            reason,
            len(rows),
            self.options.max_memory_events,
        )
        self._sender_wake.set()

    def _recreate(self, old: Spool, rows: List[Row], reason: str) -> bool:
        opts = self.options
        try:
            fresh = Spool(
                old.path or "",
                max_events=opts.max_spool_events,
                max_bytes=opts.max_spool_bytes,
                lease_seconds=opts.lease_seconds,
                synchronous=opts.spool_synchronous,
            )
            fresh.append([(row.key, row.body) for row in rows])
        except Exception:
            logger.debug("bearlumen: cannot create a new spool file", exc_info=True)
            return False
        self._store = fresh
        with self._lock:
            self._last_error = f"spool recreated: {reason}"[:500]
        logger.warning(
            "bearlumen: %s (%s); a new spool file was created there and its %d undelivered event(s) "
            "moved into it",
            reason,
            old.path,
            len(rows),
        )
        self._sender_wake.set()
        return True

    def _store_kind(self) -> str:
        if isinstance(self._store, Spool):
            return "spool"
        return "memory (spool unusable)" if self._spool_unusable else "memory"

    def _maybe_reclaim(self) -> None:
        """Idle: give the space of a drained spool back (at most every few seconds)."""
        now = time.monotonic()
        if now - self._reclaimed_at < 5.0:
            return
        self._reclaimed_at = now
        try:
            if self._store.reclaim():
                logger.debug("bearlumen: spool drained; free space given back")
        except Exception:
            logger.debug("bearlumen: reclaiming spool space failed", exc_info=True)

    def _safe_watermark(self) -> int:
        try:
            return self._store.watermark()
        except Exception:
            logger.debug("bearlumen: reading the spool watermark failed", exc_info=True)
            return 0
