"""Process lifecycle of the exporters: ``fork()`` and interpreter exit.

Fork (``os.register_at_fork``): before the fork, each live exporter takes its locks (so no thread of ours
is inside SQLite or halfway through a state change when the process is copied); the parent releases them;
the child gets a fresh exporter state: empty in-memory buffer, new locks, no threads (a new worker starts
on its first event), a new spool connection and owner identity, a new HTTP client. The parent's pending
events stay the parent's: those in its buffer are written by the parent, those in the spool are claimed
under leases, so nothing is sent twice at once, and nothing is lost.

Exit: ``atexit`` shuts every exporter down, each bounded by its ``shutdown_timeout``: the buffer is written
to the spool, then delivery is attempted until the bound (not at all while the service is failing and
the spool holds the events). What is not delivered stays in the spool for the next process.

``multiprocessing`` (fork start method) and ``billiard`` (celery's prefork pool) children leave with
``os._exit()``, which skips ``atexit``: their exporters are also registered as finalizers of that
library (``util.Finalize``), which it runs before the child exits. billiard's pool workers (celery's
prefork workers) call ``os._exit()`` even before those finalizers, from ``billiard.pool.Worker._do_exit``:
that method is wrapped (once, when billiard's pool is imported and a fork happens) so that a worker that
leaves (``max_tasks_per_child``, shutdown) first shuts its exporters down, within their bound.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import weakref
from typing import Any, List

from typing_extensions import Protocol

logger = logging.getLogger("bearlumen")


class ForkAware(Protocol):
    def before_fork(self) -> None: ...

    def after_fork_in_parent(self) -> None: ...

    def after_fork_in_child(self) -> None: ...

    def shutdown(self, timeout: Any = None) -> None: ...


_live: weakref.WeakSet[Any] = weakref.WeakSet()
_held: List[Any] = []  # the exporters whose locks the forking thread holds
_registry_lock = threading.Lock()
_hooks_installed = False
_POOL_LIBRARIES = ("multiprocessing.util", "billiard.util")


def register(exporter: ForkAware) -> None:
    global _hooks_installed
    with _registry_lock:
        _live.add(exporter)
        if not _hooks_installed:
            _hooks_installed = True
            atexit.register(_at_exit)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(
                    before=_before_fork, after_in_parent=_after_in_parent, after_in_child=_after_in_child
                )


def unregister(exporter: ForkAware) -> None:
    with _registry_lock:
        _live.discard(exporter)


def live() -> List[Any]:
    return list(_live)


def _before_fork() -> None:
    _held.clear()
    try:
        _wrap_billiard_worker_exit()
    except Exception:
        logger.debug("bearlumen: cannot hook billiard's worker exit", exc_info=True)
    for exporter in list(_live):
        try:
            _watch_pool_library(exporter)
            exporter.before_fork()
            _held.append(exporter)
        except Exception:
            logger.debug("bearlumen: before-fork hook failed", exc_info=True)


def _after_in_parent() -> None:
    held = list(_held)
    _held.clear()
    for exporter in held:
        try:
            exporter.after_fork_in_parent()
        except Exception:
            logger.debug("bearlumen: after-fork hook (parent) failed", exc_info=True)


def _after_in_child() -> None:
    global _registry_lock
    _registry_lock = threading.Lock()
    held = list(_held)
    _held.clear()
    for exporter in held:
        try:
            exporter.after_fork_in_child()
        except Exception:
            logger.debug("bearlumen: after-fork hook (child) failed", exc_info=True)


def _at_exit() -> None:
    try:  # calls that finalizers handed over (abandoned streams) are emitted before the exporters stop
        from bearlumen import _handoff

        _handoff.drain()
    except Exception:
        logger.debug("bearlumen: running deferred finalizer work at exit failed", exc_info=True)
    for exporter in list(_live):
        try:
            exporter.shutdown(None)
        except Exception:
            logger.debug("bearlumen: shutdown at exit failed", exc_info=True)


# --------------------------------------------------- multiprocessing / billiard children skip atexit

_watched: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def _watch_pool_library(exporter: Any) -> None:
    """Ask each imported pool library to shut ``exporter`` down when one of its forked children exits."""
    seen = _watched.setdefault(exporter, set())
    for name in _POOL_LIBRARIES:
        util = sys.modules.get(name)
        if util is None or name in seen:
            continue
        seen.add(name)
        register_after_fork = getattr(util, "register_after_fork", None)
        if register_after_fork is None:
            continue

        def arm(obj: Any, util: Any = util) -> None:
            # runs in the child, after the library cleared the finalizers inherited from the parent
            util.Finalize(None, _shutdown_quietly, args=(weakref.ref(obj),), exitpriority=100)

        register_after_fork(exporter, arm)


def _wrap_billiard_worker_exit() -> None:
    pool = sys.modules.get("billiard.pool")
    worker = getattr(pool, "Worker", None)
    original = getattr(worker, "_do_exit", None)
    if worker is None or original is None or getattr(original, "_bearlumen_wrapped", False):
        return

    def _do_exit(self: Any, pid: Any, exitcode: Any, exc: Any = None) -> Any:
        _at_exit()  # deliver (or spool) what this worker holds, then leave as billiard does
        return original(self, pid, exitcode, exc)

    setattr(_do_exit, "_bearlumen_wrapped", True)  # noqa: B010
    worker._do_exit = _do_exit


def _shutdown_quietly(ref: Any) -> None:
    exporter = ref()
    if exporter is None:
        return
    try:
        exporter.shutdown(None)
    except Exception:
        logger.debug("bearlumen: shutdown in a pool child failed", exc_info=True)
