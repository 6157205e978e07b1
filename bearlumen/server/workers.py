"""Running the app in one process or in several (``bearlumen serve --workers N``).

Several workers use uvicorn's own supervisor (``uvicorn.supervisors.Multiprocess``, no extra dependency):
the parent binds the socket once, starts N worker processes (``spawn``) that accept on it, restarts a
worker that dies, and on SIGTERM / SIGINT stops them gracefully. Each worker builds its app from the
settings the parent put in the environment (``worker_app``, a uvicorn factory), so a worker holds its own
connection pool and its own rate limiter (limits are per process: see README "Several replicas").

The parent migrates and creates the first key before any worker starts; each worker's ``create_app`` then
finds the schema at head (a read, no lock). Separate ``bearlumen serve`` processes starting together are
safe too: ``migrate.upgrade`` and ``keys.bootstrap_key`` serialize on PostgreSQL advisory locks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from typing import Any, Dict, Iterator, Optional

__all__ = ["SETTINGS_ENV", "configure_access_log", "run", "worker_app"]

SETTINGS_ENV = "BEARLUMEN_WORKER_SETTINGS"  # JSON: create_app's arguments, for spawned workers


def configure_access_log(enabled: bool) -> None:
    """The access log on stdout, one JSON line per request (in every process that serves requests)."""
    from bearlumen.server.middleware import ACCESS_LOG

    ACCESS_LOG.propagate = False
    if not enabled:
        ACCESS_LOG.setLevel(logging.WARNING)
        return
    if not ACCESS_LOG.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(message)s"))
        ACCESS_LOG.addHandler(handler)
    ACCESS_LOG.setLevel(logging.INFO)


def worker_app() -> Any:
    """uvicorn factory of one worker's app (``bearlumen.server.workers:worker_app``)."""
    from bearlumen.server.app import create_app

    settings: Dict[str, Any] = json.loads(os.environ[SETTINGS_ENV])
    configure_access_log(settings.pop("access_log"))
    return create_app(settings.pop("database_url"), **settings)


def run(
    app: Any,
    settings: Dict[str, Any],
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
) -> None:
    """Serve ``app`` in this process (``workers == 1``), or ``workers`` processes built from ``settings``
    (``app`` is then only used by the caller, for migrations and the first key). Returns after a
    graceful stop (SIGINT / SIGTERM)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    common: Dict[str, Any] = dict(
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,  # ours (structured, with request ids) replaces uvicorn's
        timeout_graceful_shutdown=30,
        server_header=False,
    )
    if workers <= 1:
        _server_class()(uvicorn.Config(app, **common)).run()
        return
    os.environ[SETTINGS_ENV] = json.dumps(settings)  # inherited by the spawned workers
    config = uvicorn.Config("bearlumen.server.workers:worker_app", factory=True, workers=workers, **common)
    sock = config.bind_socket()
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()


def _server_class() -> Any:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn re-raises SIGINT/SIGTERM after its graceful shutdown (exit status 130/143 and, for
        SIGINT, a KeyboardInterrupt); a service that stopped as asked should exit normally instead."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                captured = getattr(self, "_captured_signals", None)
                if isinstance(captured, list):
                    captured.clear()

    return Server


def settings_for(
    database_url: str,
    *,
    rate_limit: Optional[float],
    metrics: bool,
    body_timeout: float,
    access_log: bool,
) -> Dict[str, Any]:
    """``create_app`` keyword arguments (plus the access-log switch), as JSON-able settings."""
    return {
        "database_url": database_url,
        "rate_limit": rate_limit,
        "metrics": metrics,
        "body_timeout": body_timeout,
        "access_log": access_log,
    }
