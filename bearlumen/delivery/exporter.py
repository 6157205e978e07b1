"""The background exporter behind ``bearlumen.instrument()``: every billable call delivered exactly once.

    caller thread        submit(call): append to a bounded deque, wake the writer if it sleeps (µs)
         │
    writer thread        every `commit_interval` (or at once when busy): idempotency key, pricing, JSON,
         │               then one transaction into the store (the spool file, or memory)
    sender thread        about once a `send_interval` (at once for a full batch or a flush): claim up to
                         1000 rows under a lease, `usage.record_batch`, delete them once acknowledged

Delivery rules (the answers and what they do to the rows: sending.py):
- Acknowledged = the batch answered 200 (each event recorded, or a duplicate of an earlier attempt whose
  answer was lost). Only then are rows deleted.
- Network errors, timeouts, 408, 429, 5xx: resent with the same keys after a backoff; a batch that keeps
  getting 5xx while others go through is narrowed down to the one event, which is quarantined.
- 400 about the events: those the service names are quarantined (``not_found``: they wait instead), the
  rest is resent at once. 401/403/404: kept and retried (a configuration problem).
- Nothing is dropped but what the store cannot hold (``dropped_queue_full`` / ``dropped_spool_full``);
  ``flush()`` says when that, or a quarantine, happened (results.py).
- A spool that becomes unusable (deleted, disk full) is replaced by bounded memory, with a warning.
- SIGTERM spools the buffer first (signals.py); code run by the garbage collector only hands work over
  (``bearlumen._handoff``).
- Nothing here ever raises into the application; failures are logged (at most one warning per kind per
  `warn_interval`, never the key) and counted in :meth:`Exporter.stats`.

Modes: the default background mode above; ``sync=True`` builds and sends each event on the caller's thread
before ``submit`` returns (serverless, scripts): the event is spooled first and stays there for the
background sender if the send fails. ``strict=True`` (background mode) returns from ``submit`` only once
the event is in the spool.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any, Deque, Dict, List, Optional, Tuple, Union

from bearlumen import _handoff
from bearlumen.delivery import forking, signals
from bearlumen.delivery.backoff import Backoff
from bearlumen.delivery.memory import MemoryStore
from bearlumen.delivery.options import DeliveryOptions
from bearlumen.delivery.results import FlushResult
from bearlumen.delivery.sending import Sending
from bearlumen.delivery.spool import Spool, default_spool_path
from bearlumen.delivery.store import Store
from bearlumen.delivery.transport import BatchTransport
from bearlumen.delivery.writing import Marker as _Marker
from bearlumen.delivery.writing import Writing
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall

if TYPE_CHECKING:
    from bearlumen._client import Client

logger = logging.getLogger("bearlumen")

__all__ = ["DeliveryOptions", "Exporter"]

COUNTERS = (
    "emitted",  # calls handed to submit()
    "spooled",  # events written to the store (spool file, or memory with spool=False)
    "delivered",  # acknowledged as newly recorded
    "duplicates",  # acknowledged as already recorded (an earlier attempt got through)
    "dropped_queue_full",  # refused: the in-memory buffer (or memory store) was full
    "dropped_spool_full",  # refused: the spool reached max_spool_events / max_spool_bytes
    "dropped_invalid",  # refused by the service as invalid (400); moved to the quarantine
    "quarantined",  # moved to the quarantine: invalid, or failing alone with 5xx (see sending.py)
    "deferred",  # set aside for a while: the service cannot take them yet (e.g. not_found)
    "build_errors",  # calls that could not be turned into an event at all
    "retries",  # delivery attempts repeated after a failure
    "spool_fallbacks",  # the spool became unusable (disk full, file deleted): events went to memory
    "batches",  # batches acknowledged
)


class Exporter(Writing, Sending):
    """Delivers :class:`LLMCall` s to the service; the sink that ``bearlumen.instrument()`` installs."""

    def __init__(
        self,
        client: Client,
        prices: PriceBook,
        *,
        spool: Union[bool, str] = True,
        sync: bool = False,
        **options: Any,
    ) -> None:
        self.options = DeliveryOptions.from_kwargs(options)
        self._prices = prices
        self._sync = bool(sync)
        self._transport = BatchTransport(client, self.options.request_timeout)
        self._store: Store = self._open_store(spool)
        self._init_runtime()
        self._closed = False
        self._spool_unusable: Optional[str] = None  # why the spool was left for memory (see _fall_back)
        self._reclaimed_at = 0.0
        forking.register(self)
        signals.install()
        try:
            if self._store.pending() > 0:  # left by an earlier process: deliver it
                self._ensure_sender()
        except Exception:
            logger.debug("bearlumen: could not read the spool", exc_info=True)

    # ------------------------------------------------------------------------------------- setup

    def _open_store(self, spool: Union[bool, str]) -> Store:
        opts = self.options
        if spool is False or spool is None:
            return MemoryStore(opts.max_memory_events)
        if spool is True:
            path = default_spool_path(self._transport.base_url, self._transport.api_key, opts.spool_dir)
        else:
            path = os.fspath(spool)
        try:
            return Spool(
                path,
                max_events=opts.max_spool_events,
                max_bytes=opts.max_spool_bytes,
                lease_seconds=opts.lease_seconds,
                synchronous=opts.spool_synchronous,
            )
        except Exception as exc:
            logger.warning(
                "bearlumen: cannot open the delivery spool %s (%s); keeping events in memory only", path, exc
            )
            return MemoryStore(opts.max_memory_events)

    def _init_runtime(self) -> None:
        """Everything a forked child must not inherit: buffer, locks, events, threads, counters."""
        self._pid = os.getpid()
        self._buffer: Deque[Union[LLMCall, _Marker]] = collections.deque()
        self._lock = threading.Lock()  # counters, thread start, flush bookkeeping
        self._write_lock = threading.Lock()  # _store_items (the writer, sync callers, shutdown)
        self._progress = threading.Condition(threading.Lock())  # notified after every ack / reject
        self._wake = threading.Event()  # writer: something was appended
        self._urgent = threading.Event()  # writer: commit now (flush, strict, big buffer)
        self._sender_idle = False  # the sender found the store empty: the writer wakes it for new rows
        self._sender_wake = threading.Event()
        self._stop = threading.Event()
        self._writer: Optional[threading.Thread] = None
        self._sender: Optional[threading.Thread] = None
        self._counts: Dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._retry_at = 0.0  # no delivery attempt before this (monotonic): a backoff in force
        self._last_error: Optional[str] = None
        self._last_invalid: Optional[Dict[str, Any]] = None
        self._flushing = 0
        self._deadline: Optional[float] = None  # shutdown: stop retrying after this (monotonic)
        self._failing = False  # the last delivery attempt failed (the service is unreachable / refusing)
        self._unwritten: List[Tuple[str, str]] = []  # built events the store could not take yet
        opts = self.options
        self._backoff = Backoff(opts.initial_backoff, opts.max_backoff, opts.max_retry_after)
        self._warned: Dict[str, Tuple[float, int]] = {}
        self._flushed_counts: Dict[str, int] = dict(self._counts)  # counters at the last flush
        self._last_flush: Optional[Dict[str, Any]] = None
        self._urgent_at = max(1, min(self.options.max_batch_size, self.options.max_queue_size // 2))

    # ------------------------------------------------------------------------------------- caller path

    def submit(self, call: LLMCall) -> None:
        """Accept one call. Costs microseconds on the caller's thread; never raises, never blocks
        (except ``strict=True``: until the event is spooled, at most ``strict_timeout``)."""
        try:
            if self._sync or self._closed:
                self._submit_inline(call)
                return
            buffer = self._buffer
            if len(buffer) >= self.options.max_queue_size:
                self._queue_full()
                return
            buffer.append(call)
            if self._writer is None:
                self._start_threads()
            if not self._wake.is_set():
                self._wake.set()
            if len(buffer) >= self._urgent_at:
                self._urgent.set()
            if self.options.strict:
                marker = _Marker()
                buffer.append(marker)
                self._urgent.set()
                marker.done.wait(self.options.strict_timeout)
        except Exception:
            logger.debug("bearlumen: submit failed", exc_info=True)

    def _queue_full(self) -> None:
        with self._lock:
            self._counts["dropped_queue_full"] += 1
            self._counts["emitted"] += 1
        self._warn(
            "queue_full",
            "bearlumen: the delivery buffer is full (%d calls); dropping new usage events",
            self.options.max_queue_size,
        )

    def _submit_inline(self, call: LLMCall) -> None:
        """sync=True (or after shutdown): build, store, and (sync) send on the caller's thread."""
        with self._lock:
            self._counts["emitted"] += 1
        built = self._build(call)
        if built is None:
            return
        key, body = built
        # While a backoff is in force (the last attempt failed) the event only goes to the store: the
        # sender retries it, and the caller is not held up by a service that is known to be failing.
        send_now = self._sync and time.monotonic() >= self._retry_at
        rows = self._store_items([(key, body)], claim=send_now)
        if not send_now or not rows:
            self._ensure_sender()
            return
        if not self._deliver(rows, max_attempts=1):
            self._ensure_sender()

    # ------------------------------------------------------------------------------------- threads

    def _start_threads(self) -> None:
        with self._lock:
            if self._writer is not None or self._closed:
                return
            writer = threading.Thread(target=self._writer_loop, name="bearlumen-writer", daemon=True)
            try:
                writer.start()
            except RuntimeError:  # interpreter shutting down: no new threads; callers drain inline
                logger.debug("bearlumen: cannot start the writer thread", exc_info=True)
                return
            self._writer = writer
        self._ensure_sender()

    def _ensure_sender(self) -> None:
        with self._lock:
            if self._sender is not None or self._closed or self._stop.is_set():
                return
            sender = threading.Thread(target=self._sender_loop, name="bearlumen-sender", daemon=True)
            try:
                sender.start()
            except RuntimeError:
                logger.debug("bearlumen: cannot start the sender thread", exc_info=True)
                return
            self._sender = sender

    def _writer_loop(self) -> None:
        """Group commits, and no timer: asleep until a call (or flush / shutdown / SIGTERM) sets ``_wake``,
        then it gathers for one ``commit_interval`` and commits. ``_wake`` is cleared before the buffer
        is looked at, so a call appended meanwhile is either seen now or sets it again. While calls keep
        coming the event is already set again when the writer comes back, so callers never wait for a
        thread to wake up (which costs ~10-40 µs); only the first call after an idle spell wakes it."""
        while True:
            try:
                self._wake.clear()
                if self._buffer or self._unwritten:
                    if not self._urgent.is_set() and not self._stop.is_set():
                        self._urgent.wait(self.options.commit_interval)
                    self._urgent.clear()
                    self._write_buffer()
                    if self._unwritten:  # the store refused: try again a little later
                        self._stop.wait(0.5)
                    continue
                if self._stop.is_set():
                    return
                self._wake.wait()
            except Exception:
                logger.warning("bearlumen: delivery writer error", exc_info=True)
                self._stop.wait(0.5)

    def _sender_loop(self) -> None:
        next_send = time.monotonic()
        while not self._stop.is_set():
            try:
                self._sender_wake.clear()
                urgent = self._flushing > 0 or self._deadline is not None
                now = time.monotonic()
                if now < self._retry_at:
                    self._stop.wait(self._retry_at - now)
                    continue
                if not urgent and now < next_send and self._store.pending() < self.options.max_batch_size:
                    self._sender_wake.wait(next_send - now)
                    continue
                rows = self._store.claim(self.options.max_batch_size)
                if not rows:
                    self._maybe_reclaim()
                    # Idle: the writer wakes it for new rows (one committed just before the flag was set
                    # waits at most poll_interval, as do rows of other, dead processes sharing the spool)
                    self._sender_idle = True
                    self._sender_wake.wait(self.options.poll_interval)
                    self._sender_idle = False
                    continue
                self._deliver(rows)
                next_send = time.monotonic() + self.options.send_interval
            except Exception as exc:
                self._note_error(exc)
                logger.warning("bearlumen: delivery sender error", exc_info=True)
                self._stop.wait(min(self.options.max_backoff, 1.0))

    def _notify_progress(self) -> None:
        with self._progress:
            self._progress.notify_all()

    # ------------------------------------------------------------------------------------- flush / stop

    def flush(self, timeout: Optional[float] = None) -> Union[bool, FlushResult]:
        """Block until everything submitted before this call is acknowledged, or ``timeout`` seconds
        (``None``: ``flush_timeout``) pass. ``True`` when it all was and nothing was dropped or
        quarantined since the previous flush; else a falsy :class:`FlushResult` saying what happened
        (results.py). Never raises."""
        budget = self.options.flush_timeout if timeout is None else max(0.0, timeout)
        try:
            start = time.monotonic()
            # calls that finalizers handed over (an abandoned stream) are emitted first
            _handoff.wait(budget)
            complete = self._flush(max(0.0, budget - (time.monotonic() - start)))
        except Exception:
            logger.debug("bearlumen: flush failed", exc_info=True)
            complete = False
        return self._flush_result(complete)

    def _flush_result(self, complete: bool) -> Union[bool, FlushResult]:
        with self._lock:
            now = dict(self._counts)
            before, self._flushed_counts = self._flushed_counts, now
        since = {name: now[name] - before.get(name, 0) for name in now}
        result = FlushResult(
            complete=complete,
            quarantined=since["quarantined"],
            dropped=since["dropped_queue_full"] + since["dropped_spool_full"] + since["build_errors"],
            deferred=since["deferred"],
            pending=self.pending(),
        )
        self._last_flush = result.as_dict()
        if not result:
            self._warn("flush", "bearlumen: flush: %s", "; ".join(result.reasons))
        return True if result.ok else result

    def _flush(self, timeout: float) -> bool:
        current = threading.current_thread()
        if current is self._writer or current is self._sender:
            return False
        deadline = time.monotonic() + max(0.0, timeout)
        with self._lock:
            self._flushing += 1
        try:
            writer_alive = self._writer is not None and self._writer.is_alive()
            if self._buffer and not writer_alive:
                self._start_threads()
                writer_alive = self._writer is not None and self._writer.is_alive()
            if writer_alive:
                marker = _Marker()
                self._buffer.append(marker)
                self._wake.set()
                self._urgent.set()
                if not marker.done.wait(max(0.0, deadline - time.monotonic())):
                    return False
                ok, watermark = marker.ok, marker.watermark
            else:  # no writer (sync mode, never started, or exiting): write inline
                self._write_buffer()
                ok, watermark = not self._unwritten, self._store.watermark()
            sender = self._sender
            if sender is None or not sender.is_alive():
                self._ensure_sender()
                sender = self._sender
            if sender is None or not sender.is_alive():
                return self._drain_inline(watermark, deadline) and ok
            self._sender_wake.set()
            while self._store.pending_upto(watermark):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not sender.is_alive():
                    return False
                with self._progress:
                    self._progress.wait(min(0.1, remaining))
            return ok
        finally:
            with self._lock:
                self._flushing -= 1

    def _drain_inline(self, watermark: int, deadline: float) -> bool:
        """Deliver on the calling thread (no sender thread can run, e.g. at interpreter exit)."""
        saved = self._deadline
        self._deadline = deadline if saved is None else min(saved, deadline)
        try:
            while self._store.pending_upto(watermark):
                if time.monotonic() >= deadline:
                    return False
                rows = self._store.claim(self.options.max_batch_size)
                if not rows:
                    return not self._store.pending_upto(watermark)
                if not self._deliver(rows):
                    return False
            return True
        finally:
            self._deadline = saved

    def shutdown(self, timeout: Optional[float] = None) -> None:
        """Deliver what is pending within ``timeout`` (``None``: ``shutdown_timeout``), then stop.

        The buffer always goes to the store first; what is not delivered by the deadline stays in the
        spool for the next process (with ``spool=False`` it is lost, and counted in the warning).
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            budget = self.options.shutdown_timeout if timeout is None else max(0.0, timeout)
            deadline = time.monotonic() + budget
            self._deadline = deadline
            durable = isinstance(self._store, Spool)
            if durable and self._failing:
                # the service is failing right now: make sure everything is in the spool, and leave
                # the delivery to the next process rather than delay this exit
                self._flush_to_store(deadline)
            else:
                self.flush(budget)
        except Exception:
            logger.debug("bearlumen: shutdown flush failed", exc_info=True)
        finally:
            self._stop_threads(deadline)
        forking.unregister(self)

    def secure(self) -> None:
        """SIGTERM (signals.py): get the in-memory buffer into the spool within ``sigterm_timeout``.

        Runs in a signal handler on the main thread, which may have been interrupted inside one of our
        critical sections: so the work runs on a helper thread and the handler only waits for it,
        bounded. (If the interrupted thread holds a lock the work needs, the wait times out and the
        process goes on as it would have.) With ``spool=False`` a short flush is attempted instead.
        """
        if self._pid != os.getpid():
            return
        budget = self.options.sigterm_timeout
        helper = threading.Thread(target=self._secure_now, args=(budget,), name="bearlumen-sigterm")
        helper.daemon = True
        helper.start()
        helper.join(budget + 0.5)

    def _secure_now(self, budget: float) -> None:
        try:
            deadline = time.monotonic() + budget
            _handoff.wait(min(0.5, budget))  # abandoned streams' calls join the buffer first
            if not isinstance(self._store, Spool):
                if self.pending():
                    self._flush(max(0.0, deadline - time.monotonic()))
            else:
                # also with an empty buffer: the writer may be pricing what it just took from it (e.g.
                # inside a shutdown that the SIGTERM interrupted); the marker is set once that is stored
                self._flush_to_store(deadline)
        except Exception:
            logger.debug("bearlumen: securing the buffer at SIGTERM failed", exc_info=True)

    def _flush_to_store(self, deadline: float) -> None:
        writer = self._writer
        if writer is not None and writer.is_alive():
            marker = _Marker()
            self._buffer.append(marker)
            self._wake.set()
            self._urgent.set()
            marker.done.wait(max(0.0, deadline - time.monotonic()))
        else:
            self._write_buffer()

    def _stop_threads(self, deadline: float) -> None:
        self._stop.set()
        self._wake.set()
        self._urgent.set()
        self._sender_wake.set()
        alive = False
        for thread in (self._writer, self._sender):
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.05, deadline - time.monotonic()) + 0.5)
                alive = alive or thread.is_alive()
        if self._buffer:
            self._write_buffer()
        try:
            self._store.release_all()
        except Exception:
            logger.debug("bearlumen: releasing spool leases failed", exc_info=True)
        pending = self.pending()
        if pending and isinstance(self._store, Spool):
            logger.warning(
                "bearlumen: %d undelivered usage event(s) stay in the spool %s; the next process that "
                "opens it delivers them",
                pending,
                self._store.path,
            )
        elif pending:
            logger.warning("bearlumen: %d undelivered usage event(s) lost at shutdown (spool=False)", pending)
        if not alive:
            try:
                self._store.close()
            except Exception:
                logger.debug("bearlumen: closing the spool failed", exc_info=True)
            self._transport.close()

    # ------------------------------------------------------------------------------------- fork

    def before_fork(self) -> None:
        self._lock.acquire()
        self._store.lock.acquire()

    def after_fork_in_parent(self) -> None:
        self._store.lock.release()
        self._lock.release()

    def after_fork_in_child(self) -> None:
        old = self._store
        try:
            self._store = old.after_fork_in_child()
        except Exception:
            logger.warning("bearlumen: cannot reopen the spool after fork; memory only", exc_info=True)
            self._store = MemoryStore(self.options.max_memory_events)
        self._transport = self._transport.after_fork_in_child()
        closed = self._closed
        self._init_runtime()
        self._closed = closed

    # ------------------------------------------------------------------------------------- stats

    def pending(self) -> int:
        try:
            stored = self._store.pending()
        except Exception:
            stored = 0
        return stored + sum(1 for item in list(self._buffer) if not isinstance(item, _Marker))

    def stats(self) -> Dict[str, Any]:
        """Counters of this process's exporter (a forked child starts from zero)."""
        with self._lock:
            counts: Dict[str, Any] = dict(self._counts)
            counts["last_error"] = self._last_error
            counts["last_invalid"] = dict(self._last_invalid) if self._last_invalid else None
        counts["emitted"] += sum(1 for item in list(self._buffer) if not isinstance(item, _Marker))
        counts["pending"] = self.pending()
        try:
            counts["quarantine"] = self._store.quarantine_count()
        except Exception:
            counts["quarantine"] = None
        counts["last_flush"] = dict(self._last_flush) if self._last_flush else None
        counts["store"] = self._store_kind()
        counts["spool_path"] = self._store.path
        counts["mode"] = "sync" if self._sync else ("strict" if self.options.strict else "background")
        return counts

    def _note_error(self, exc: BaseException) -> None:
        text = str(exc) or type(exc).__name__
        with self._lock:
            self._last_error = f"{type(exc).__name__}: {text}"[:500]

    def _warn(self, kind: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        last, suppressed = self._warned.get(kind, (-1e18, 0))
        if now - last < self.options.warn_interval:
            self._warned[kind] = (last, suppressed + 1)
            return
        self._warned[kind] = (now, 0)
        if suppressed:
            message += f" ({suppressed} similar warning(s) suppressed)"
        logger.warning(message, *args)
