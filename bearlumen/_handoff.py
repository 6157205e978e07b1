"""Hand work over from code a garbage collector runs (finalizers, weakref callbacks) to a thread of ours.

A finalizer runs wherever a collection happens to start: possibly on a thread that is inside one of our
critical sections (the exporter's write lock, a spool transaction, LangChain's collector), in the
context (scopes) of unrelated code. Taking any lock from there can deadlock the thread against itself.
So finalizers only call :func:`later`, which puts the work on a ``queue.SimpleQueue`` (its ``put`` is
reentrant and never blocks: safe from ``__del__`` and weakref callbacks) and returns. A daemon
*finisher* thread runs the work, in the context captured where the work was set up (the stream's
creation, so its scopes and LangChain collector), never under a caller's lock.

- The finisher is started by :func:`arm` from ordinary code (starting a thread takes locks, so it is never
  started from a finalizer); integrations call it when they set up something a finalizer may end.
- :func:`wait` (called by ``flush()``) waits until everything handed over so far has run; :func:`drain`
  (interpreter exit, before the exporters shut down) runs what is left on the calling thread.
- After ``fork()`` the child gets an empty queue and no finisher thread (it starts on the next
  :func:`arm`; until then :func:`wait` and :func:`drain` run the child's work inline); work the parent
  had queued is the parent's.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import queue
import threading
import time
from typing import Any, Callable, Optional, Tuple

logger = logging.getLogger("bearlumen")

__all__ = ["arm", "drain", "later", "wait"]

_Work = Tuple[Optional[contextvars.Context], Callable[..., Any], Tuple[Any, ...]]

_queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
_put = itertools.count(1)  # next() on a count is atomic in CPython: no lock
_done = itertools.count(1)
_state = {"put": 0, "done": 0}
_thread: Optional[threading.Thread] = None
_pid = os.getpid()
_start_lock = threading.Lock()


def later(fn: Callable[..., Any], *args: Any, context: Optional[contextvars.Context] = None) -> None:
    """Run ``fn(*args)`` on the finisher thread (in ``context`` if given). Never blocks, never raises."""
    try:
        _queue.put((context, fn, args))
        _state["put"] = next(_put)
    except Exception:  # pragma: no cover - SimpleQueue.put does not fail
        pass


def arm() -> None:
    """Make sure the finisher thread runs (ordinary code only: this may take a lock)."""
    global _thread, _pid
    thread = _thread
    if thread is not None and _pid == os.getpid():
        return
    with _start_lock:
        if _thread is not None and _pid == os.getpid():
            return
        if _pid != os.getpid():  # a forked child: the parent's thread and queued work are not ours
            _reset_after_fork()
        worker = threading.Thread(target=_run, name="bearlumen-finisher", daemon=True)
        try:
            worker.start()
        except RuntimeError:  # interpreter shutting down: drain() runs what is left
            return
        _thread = worker


def _reset_after_fork() -> None:
    global _queue, _thread, _pid, _put, _done, _start_lock
    _queue = queue.SimpleQueue()
    _put, _done = itertools.count(1), itertools.count(1)
    _state["put"] = _state["done"] = 0
    _thread = None
    _pid = os.getpid()
    _start_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # the child starts with an empty queue of its own, at once
    os.register_at_fork(after_in_child=_reset_after_fork)


def _run() -> None:
    while True:
        work = _queue.get()
        _execute(work)


def _execute(work: _Work) -> None:
    context, fn, args = work
    try:
        if context is not None:
            context.copy().run(fn, *args)
        else:
            fn(*args)
    except Exception:
        logger.debug("bearlumen: deferred finalizer work failed", exc_info=True)
    finally:
        _state["done"] = next(_done)


def wait(timeout: float) -> bool:
    """Wait until the work handed over before this call has run (at most ``timeout`` s)."""
    if _pid != os.getpid():
        return True
    target = _state["put"]
    if _state["done"] >= target:
        return True
    if _thread is None or not _thread.is_alive():
        drain()
        return _state["done"] >= target
    deadline = time.monotonic() + max(0.0, timeout)
    while _state["done"] < target:
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def drain() -> None:
    """Run whatever is still queued on the calling thread (interpreter exit)."""
    if _pid != os.getpid():
        return
    while True:
        try:
            work = _queue.get_nowait()
        except queue.Empty:
            return
        _execute(work)
