"""Sending claimed rows: one request per batch, and what each answer means for the rows in it.

Mixed into :class:`bearlumen.delivery.exporter.Exporter` (this module is its sending half; the exporter
holds the state). Rules (docs/api.md, README "Delivery"):

- 200: acknowledged (each event recorded or a duplicate of an earlier attempt): rows deleted.
- Network errors, timeouts, 408, 429, 5xx: the same rows are sent again with the same keys after a
  backoff (or the Retry-After asked for). Nothing is given up while the process lives.
- A batch answered 500 (any 5xx but the transient 502, 503 and 504) again and again may hold one event
  the service cannot take (a server bug such as an overflow). The batch is split in halves, the pieces
  that go through are delivered, and the one that keeps failing is narrowed down until it is alone.
  That event is *quarantined* (kept in the spool's quarantine, counted, warned about; ``bearlumen spool
  list / retry / drop``) only once it failed ``QUARANTINE_AFTER`` times while other events were
  acknowledged in the same delivery: during an outage (everything fails) nothing is split further than
  once, and nothing is quarantined.
- While a piece keeps failing, the rows queued behind it are pulled in and sent meanwhile (once per
  acknowledgement), so one bad event never holds up the others.
- 400 ``invalid_batch``: the events the service names are quarantined, except those it names for a
  reason that can change (``not_found`` for an external end-user id an older service does not register
  on first use), which wait (``deferred``, retried after a backoff); the rest of the batch is resent at
  once. ``not_found`` for an id the service issued (``eu_`` + 24 hex digits) can never change: it is
  quarantined. Another 400 about the events splits the batch until the culprit is alone.
- 401, 403, 404 and other 4xx: a configuration problem; the rows stay queued and are retried.
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from bearlumen.delivery.store import Row, Store

logger = logging.getLogger("bearlumen")

SPLIT = object()
SPLIT_AFTER = 2  # consecutive server errors of one batch before it is split in halves
QUARANTINE_AFTER = 3  # consecutive server errors of one event (alone) before it is quarantined
# Answers that say the service (or a proxy in front of it) is busy or away, not that an event is bad: a
# 503 `unavailable` (database locked under load), 502 and 504 from a gateway. They are retried as they
# are, never narrowed down to one event nor quarantined, however often one event meets them.
TRANSIENT_STATUSES = frozenset({502, 503, 504})
# A 400 that is about the events themselves carries one of the service's codes (docs/api.md). A 400/413
# without such a code (a proxy, a load balancer) says nothing about the events: they are kept, retried.
INVALID_CODES = frozenset(
    {
        "invalid_batch",
        "invalid_request",
        "invalid_quantity",
        "invalid_timestamp",
        "invalid_date",
        "batch_too_large",
    }
)
# Per-event codes that may stop applying later: such events wait and are retried, never quarantined.
TRANSIENT_EVENT_CODES = frozenset({"not_found"})


_SERVICE_END_USER_ID = re.compile(r"eu_[0-9a-f]{24}")


def _names_a_service_id(row: Row) -> bool:
    """The event points at an end-user id the service issued (for another tenant, or mistyped): its
    ``not_found`` can never change (the service only registers external ids on first use)."""
    try:
        ref = json.loads(row.body).get("end_user_id")
    except (ValueError, AttributeError):
        return False
    return isinstance(ref, str) and _SERVICE_END_USER_ID.fullmatch(ref) is not None


def _is_object(body: str) -> bool:
    """Whether a spooled text is one JSON object the service can read (strict JSON: no NaN, UTF-8)."""
    try:
        body.encode("utf-8")
        return isinstance(_decode(body), dict)
    except (ValueError, TypeError):  # UnicodeEncodeError is a ValueError
        return False


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_decode = json.JSONDecoder(parse_constant=_no_constant).decode


class ServerFault:
    """A 5xx answer: retry after ``delay``; a piece that keeps getting it is split / quarantined."""

    __slots__ = ("delay", "status", "text")

    def __init__(self, delay: float, status: int, text: str) -> None:
        self.delay = delay
        self.status = status
        self.text = text


class Sending:
    """The exporter's sending half (see the module docstring). State lives on the exporter."""

    # provided by the exporter
    _store: Store
    _transport: Any
    _backoff: Any
    _lock: Any
    _counts: Dict[str, int]
    _stop: Any
    _deadline: Optional[float]
    _retry_at: float
    _failing: bool
    _last_error: Optional[str]
    _last_invalid: Optional[Dict[str, Any]]
    options: Any

    def _note_error(self, exc: BaseException) -> None: ...

    def _warn(self, kind: str, message: str, *args: Any) -> None: ...

    def _notify_progress(self) -> None: ...

    # ------------------------------------------------------------------------------------- delivery

    def _deliver(self, rows: List[Row], max_attempts: Optional[int] = None) -> bool:
        """Send ``rows`` (just claimed by the caller) until acknowledged or quarantined; False if left in
        the store for later."""
        store = self._store  # kept: a switch to memory meanwhile must not ack rows of the other store
        work: List[List[Row]] = [rows]
        claimed = (rows[0].id, len(rows)) if rows else (0, 0)
        attempts = 0
        faults: Dict[Tuple[int, int], int] = {}  # piece (first id, size) -> consecutive server errors
        healthy = False  # some batch was acknowledged during this delivery
        pulled = False  # rows behind a failing piece were pulled in since the last acknowledgement
        passed: set[Tuple[int, int]] = set()  # failing pieces moved behind the others since the last wait
        # every caller claimed `rows` just before: their lease is new, and outlasts one attempt
        fresh = self.options.lease_seconds > 2 * self.options.request_timeout
        while work:
            batch = work.pop()
            if fresh:
                # Renewing now would rewrite every row (body included) to extend a lease taken a moment
                # ago (lease_seconds, longer than one attempt's request_timeout): the first attempt goes
                # without; every later one renews first.
                fresh = False
            else:
                try:
                    batch = store.renew(batch)
                except Exception as exc:
                    self._note_error(exc)
            if not batch:
                continue
            outcome = self._send_once(store, batch)
            if outcome is None:  # acknowledged
                healthy, pulled = True, False
                passed.clear()
                continue
            if outcome is SPLIT:
                half = len(batch) // 2
                work.extend([batch[half:], batch[:half]])
                continue
            if isinstance(outcome, list):  # invalid or waiting events set aside: resend the rest at once
                if outcome:
                    work.append(outcome)
                continue
            with self._lock:
                self._counts["retries"] += 1  # these events will be sent again (here, or later)
            if isinstance(outcome, ServerFault):
                piece = (batch[0].id, len(batch))
                count = faults[piece] = faults.get(piece, 0) + 1
                # split on evidence that the service works (else once: an outage is not narrowed down)
                if len(batch) > 1 and count >= SPLIT_AFTER and (healthy or piece == claimed):
                    half = len(batch) // 2
                    work.extend([batch[half:], batch[:half]])
                    continue
                if len(batch) == 1 and count >= QUARANTINE_AFTER and healthy:
                    self._quarantine_fault(store, batch, outcome, count)
                    continue
                if work and piece not in passed:  # the other pieces first: they must not wait behind it
                    passed.add(piece)
                    work.insert(0, batch)
                    continue
                if not pulled and max_attempts is None and not self._stop.is_set():
                    more = self._claim_more(store)  # the rows queued behind it go meanwhile
                    if more:
                        pulled = True
                        work.insert(0, batch)
                        work.append(more)
                        continue
                delay = outcome.delay
            else:
                delay = float(outcome)
            attempts += 1
            passed.clear()
            leftover = [row for part in work for row in part] + batch
            self._retry_at = time.monotonic() + delay
            if (max_attempts is not None and attempts >= max_attempts) or not self._can_wait(delay):
                self._release(store, leftover)
                return False
            try:
                store.renew(leftover, extra=delay)
            except Exception as exc:
                self._note_error(exc)
            if self._stop.wait(delay):
                self._release(store, leftover)
                return False
            work.append(batch)
        return True

    def _claim_more(self, store: Store) -> List[Row]:
        try:
            return store.claim(self.options.max_batch_size)
        except Exception as exc:
            self._note_error(exc)
            return []

    def _can_wait(self, delay: float) -> bool:
        if self._stop.is_set():
            return False
        deadline = self._deadline
        return deadline is None or time.monotonic() + delay < deadline

    def _release(self, store: Store, rows: Sequence[Row]) -> None:
        try:
            store.release(rows)
        except Exception as exc:
            self._note_error(exc)

    def _attempt_timeout(self) -> Optional[float]:
        deadline = self._deadline
        if deadline is None:
            return None
        return max(0.2, deadline - time.monotonic())

    def _send_once(self, store: Store, batch: List[Row]) -> Any:
        """One request. None: acknowledged; SPLIT; a list: the rows left after setting invalid / waiting
        ones aside; a ServerFault; a float: retry the same rows after that many seconds."""
        from bearlumen._exceptions import BearLumenError, RateLimitError

        # Each row must be one JSON object: its text goes into the batch as it is (joined, not decoded and
        # encoded again), so a row that is not (corrupt: the file was edited) is isolated and quarantined,
        # never sent (one holding `{..},{..}` would otherwise become two events).
        if not all(_is_object(row.body) for row in batch):
            if len(batch) > 1:
                return SPLIT
            self._quarantine(store, batch, "corrupt", "the spooled event is not valid JSON", invalid=True)
            return []
        try:
            answer = self._transport.send([row.body for row in batch], self._attempt_timeout())
        except RateLimitError as exc:
            self._failed(exc)
            return self._backoff.next_delay(exc.retry_after)
        except BearLumenError as exc:
            status = exc.status_code
            if exc.code in INVALID_CODES and status in (None, 400, 413, 422):
                return self._invalid(store, batch, exc)
            self._failed(exc)
            if status is not None and 400 <= status < 500 and status != 408:
                self._warn(
                    f"http_{status}",
                    "bearlumen: the service refuses usage events (%s); they stay queued and delivery "
                    "is retried (check the API key and base URL)",
                    exc,
                )
            if status is not None and status >= 500 and status not in TRANSIENT_STATUSES:
                return ServerFault(
                    self._backoff.next_delay(getattr(exc, "retry_after", None)), status, str(exc)
                )
            return self._backoff.next_delay()
        except Exception as exc:
            self._failed(exc)
            return self._backoff.next_delay()
        self._acknowledged(store, batch, answer)
        return None

    def _failed(self, exc: BaseException) -> None:
        self._failing = True
        self._note_error(exc)
        logger.debug("bearlumen: delivery attempt failed: %s", exc)

    def _invalid(self, store: Store, batch: List[Row], exc: Any) -> Any:
        """A 400: quarantine the events the service named (or let them wait), or split to find them."""
        self._failing = False
        errors = exc.errors if isinstance(getattr(exc, "errors", None), list) else None
        if exc.code == "batch_too_large" and len(batch) > 1:
            return SPLIT
        bad: Dict[int, Dict[str, Any]] = {}
        if exc.code == "invalid_batch" and errors:
            for item in errors:
                index = item.get("index") if isinstance(item, dict) else None
                if isinstance(index, int) and 0 <= index < len(batch):
                    bad.setdefault(index, item)
        if not bad:
            if len(batch) > 1:
                return SPLIT
            bad = {0: {"code": exc.code or "invalid_request", "message": exc.message}}
        waiting: List[Row] = []
        for index, item in sorted(bad.items()):
            code = str(item.get("code") or exc.code or "invalid_request")
            message = str(item.get("message") or exc.message)
            if code in TRANSIENT_EVENT_CODES and not _names_a_service_id(batch[index]):
                waiting.append(batch[index])
            else:
                self._quarantine(store, [batch[index]], code, message, invalid=True)
        if waiting:
            self._defer(store, waiting, str(next(iter(bad.values())).get("message") or exc.message))
        return [row for i, row in enumerate(batch) if i not in bad]

    def _defer(self, store: Store, rows: List[Row], reason: str) -> None:
        delay = self._backoff.next_delay()
        try:
            store.defer(rows, delay)
        except Exception as exc:
            self._note_error(exc)
            return
        with self._lock:
            self._counts["deferred"] += len(rows)
            self._last_error = f"events waiting: {reason}"
        self._warn(
            "deferred",
            "bearlumen: the service cannot take %d usage event(s) yet (%s); they wait and are retried",
            len(rows),
            reason,
        )

    def _quarantine_fault(self, store: Store, batch: List[Row], fault: ServerFault, count: int) -> None:
        message = (
            f"HTTP {fault.status} for this event alone {count} times in a row while other events were "
            f"delivered: {fault.text}"[:500]
        )
        self._quarantine(store, batch, "server_error", message, invalid=False)

    def _quarantine(self, store: Store, rows: List[Row], code: str, message: str, *, invalid: bool) -> None:
        try:
            store.reject(rows, code, message)
        except Exception as exc:
            self._note_error(exc)
            return
        with self._lock:
            self._counts["quarantined"] += len(rows)
            if invalid:
                self._counts["dropped_invalid"] += len(rows)
            self._last_invalid = {"idempotency_key": rows[-1].key, "code": code, "message": message}
            self._last_error = f"event quarantined ({code}): {message}"
        self._warn(
            "quarantine_invalid" if invalid else "quarantine_server_error",
            "bearlumen: %d usage event(s) quarantined (%s: %s); `bearlumen spool list` shows them, "
            "`bearlumen spool retry` resends them",
            len(rows),
            code,
            message,
        )
        self._notify_progress()

    def _acknowledged(self, store: Store, batch: List[Row], answer: Dict[str, Any]) -> None:
        self._failing = False
        self._retry_at = 0.0
        self._backoff.reset()
        results = answer.get("results")
        if isinstance(results, list) and len(results) == len(batch):
            recorded = sum(1 for r in results if isinstance(r, dict) and r.get("recorded"))
        else:
            recorded = int(answer.get("recorded_count") or 0)
        try:
            store.ack(batch)
        except Exception as exc:  # the rows come back when the lease ends: resent, answered "duplicate"
            self._note_error(exc)
        with self._lock:
            self._counts["delivered"] += recorded
            self._counts["duplicates"] += len(batch) - recorded
            self._counts["batches"] += 1
        self._notify_progress()
