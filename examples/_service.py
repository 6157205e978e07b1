"""Where the examples record to: the service in BEARLUMEN_BASE_URL, else an embedded one on SQLite."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from datetime import datetime, timedelta, timezone

import bearlumen
from bearlumen.report import render_report


def connect() -> bearlumen.Client:
    """The service named by BEARLUMEN_BASE_URL / BEARLUMEN_API_KEY, else an embedded one on SQLite."""
    if os.environ.get("BEARLUMEN_BASE_URL"):
        return bearlumen.Client()
    from bearlumen.server.keys import create_api_key

    folder = tempfile.mkdtemp(prefix="bearlumen-example-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the database and its key go with the run
    url = f"sqlite:///{folder}/usage.db"
    print(f"BEARLUMEN_BASE_URL is not set: recording into an embedded service on {url} (removed at exit)")
    return bearlumen.Client(api_key=create_api_key(url, "examples"), base_url=url)


def report_since(client: bearlumen.Client, started: datetime) -> str:
    """The cost report of what was recorded from `started` until now."""
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    return render_report(client, started.astimezone(timezone.utc).isoformat(), end.isoformat())


def finish(client: bearlumen.Client, started: datetime) -> int:
    """Deliver what was metered, print the exporter's counts and this run's cost report, and stop."""
    delivered = bearlumen.flush(timeout=30)
    stats = bearlumen.stats()
    print(f"\nmodel calls recorded: {stats.get('emitted')}, delivered: {stats.get('delivered')}")
    print(report_since(client, started))  # only this run's events: a shared service may hold others
    bearlumen.uninstrument()
    client.close()
    return 0 if delivered else 1
