"""SIGTERM: what is in memory goes to the spool before the process goes, then the process goes as before.

``docker stop``, Kubernetes, systemd and ``multiprocessing.Pool.terminate()`` (which ``with Pool() as
pool:`` calls on exit) end a process with SIGTERM, whose default action kills it at once: no ``atexit``,
no ``finally``. Events still in the exporter's in-memory buffer (the last ``commit_interval``) would be
lost, and in a pool worker that is often all of them.

``instrument()`` (from the main thread) installs a SIGTERM handler that chains to the one it found:

1. every live exporter writes its buffer to the spool (within ``sigterm_timeout``, 5 s by default: a
   process's first event is priced then, which loads the price tables, about half a second),
   on a helper thread that the handler waits for (the interrupted thread may hold one of our locks);
   with ``spool=False`` a short flush is attempted instead;
   If the signal interrupted the main thread inside Bear Lumen's own code (it may hold a lock that
   securing needs: an Event's, the spool's), waiting would wait for ourselves: the handler returns at
   once instead, a helper thread secures the buffer and raises SIGTERM again, and step 2 runs then;
2. then the previous handler runs: a Python handler is called (its behaviour, e.g. ``sys.exit()``, is
   unchanged); the default action is re-raised (the process dies by SIGTERM, exit status -15, as it
   would have). A SIGTERM that the process ignored (``SIG_IGN``) is left alone: nothing is installed.

Frameworks that install their own SIGTERM handler later (gunicorn workers, celery) replace this one; they
exit through ``atexit`` (and billiard's hooks, see forking.py), where the exporter shuts down anyway.
The spooled events are delivered by the next process that opens the spool (a pool's parent, on its next
``flush()`` or send, or the restarted container).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any, Optional

from bearlumen.delivery import forking

logger = logging.getLogger("bearlumen")

_previous: Any = None
_installed = False


def install() -> None:
    """Install the handler once, from the main thread (elsewhere Python does not allow it)."""
    global _previous, _installed
    if _installed or not hasattr(signal, "SIGTERM"):
        return
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
        if previous is signal.SIG_IGN or previous is None:  # ignored, or set outside Python: leave it
            return
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, RuntimeError):
        return
    _previous, _installed = previous, True


def installed() -> bool:
    return _installed and signal.getsignal(signal.SIGTERM) is _on_sigterm


def _on_sigterm(signum: int, frame: Optional[Any]) -> Any:
    global _secured
    if not _secured and _inside_bearlumen(frame):
        # The main thread was interrupted inside Bear Lumen's own code, where it may hold a lock that
        # securing needs (an Event's, the spool's, a SQLite transaction): waiting here would wait for
        # ourselves until sigterm_timeout and then lose the buffer. Let it go on (it leaves our code
        # within moments), secure on a helper thread, and raise the signal again once secured.
        _defer(signum)
        return None
    if not _secured:
        try:
            secure_all()
        except Exception:
            logger.debug("bearlumen: securing events at SIGTERM failed", exc_info=True)
    _secured = False  # a handler that lets the process live on secures again at the next SIGTERM
    previous = _previous
    if callable(previous):
        return previous(signum, frame)
    # the default action: die by the same signal, as the process would have without us
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return None


_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(forking.__file__)))  # .../bearlumen
# The code whose locks securing needs: delivery, metering (emit, pricing), the finalizer hand-off and
# flush()/stats(). Not the scopes: a whole app may run inside a `@bearlumen.workflow` function.
_ROOTS = tuple(
    os.path.join(_PACKAGE, name)
    for name in ("delivery" + os.sep, "metering" + os.sep, "_handoff.py", "_instrument.py")
)
_secured = False  # set by the helper of a deferred SIGTERM before it raises the signal again
_deferring = False


def _inside_bearlumen(frame: Optional[Any]) -> bool:
    """Whether the interrupted main thread is inside Bear Lumen's delivery path (anywhere up its stack)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith(_ROOTS):
            return True
        frame = frame.f_back
    return False


def _defer(signum: int) -> None:
    global _deferring
    if _deferring:
        return
    _deferring = True
    helper = threading.Thread(target=_secure_then_raise, args=(signum,), name="bearlumen-sigterm-deferred")
    helper.daemon = True
    helper.start()


def _secure_then_raise(signum: int) -> None:
    global _secured, _deferring
    try:
        secure_all()
    except Exception:
        logger.debug("bearlumen: securing events at SIGTERM failed", exc_info=True)
    _secured, _deferring = True, False
    os.kill(os.getpid(), signum)  # the main thread runs the handler again: now it chains at once


def _reset_in_child() -> None:
    global _secured, _deferring
    _secured = _deferring = False


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_in_child)


def secure_all() -> None:
    for exporter in forking.live():
        try:
            exporter.secure()
        except Exception:
            logger.debug("bearlumen: securing an exporter at SIGTERM failed", exc_info=True)
