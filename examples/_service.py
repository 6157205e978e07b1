"""Where the examples record to: the service in BEARLUMEN_BASE_URL, else an embedded one on SQLite."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta, timezone

import bearlumen
from bearlumen.report import render_report


def connect() -> bearlumen.Client:
    """The service named by BEARLUMEN_BASE_URL / BEARLUMEN_API_KEY, else an embedded one on SQLite."""
    if os.environ.get("BEARLUMEN_BASE_URL"):
        return bearlumen.Client()
    from bearlumen.server.keys import create_api_key

    url = f"sqlite:///{tempfile.mkdtemp(prefix='bearlumen-example-')}/usage.db"
    print(f"BEARLUMEN_BASE_URL is not set: recording into the embedded service on {url}")
    return bearlumen.Client(api_key=create_api_key(url, "examples"), base_url=url)


def report_since(client: bearlumen.Client, started: datetime) -> str:
    """The cost report of what was recorded from `started` until now."""
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    return render_report(client, started.astimezone(timezone.utc).isoformat(), end.isoformat())
