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
    try:
        secure_all()
    except Exception:
        logger.debug("bearlumen: securing events at SIGTERM failed", exc_info=True)
    previous = _previous
    if callable(previous):
        return previous(signum, frame)
    # the default action: die by the same signal, as the process would have without us
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)
    return None


def secure_all() -> None:
    for exporter in forking.live():
        try:
            exporter.secure()
        except Exception:
            logger.debug("bearlumen: securing an exporter at SIGTERM failed", exc_info=True)
