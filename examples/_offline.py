"""Recorded real provider traffic for the examples, so they run with no provider key and no network.

When OPENAI_API_KEY / ANTHROPIC_API_KEY are set, `recorded(...)` does nothing and the examples call the
real APIs. Otherwise it replays real responses recorded from the providers (the cassettes vendored in
tests/cassettes, with their licenses), through the real openai / anthropic / LangChain clients: the
instrumentation sees exactly what it would see live.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator

CASSETTES = Path(__file__).resolve().parent.parent / "tests" / "cassettes"


# Decided once, before provider_keys() may set placeholder keys.
OFFLINE = not (os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY"))


def offline() -> bool:
    return OFFLINE


@contextlib.contextmanager
def recorded(cassette: str) -> Iterator[Any]:
    """Replay `tests/cassettes/<cassette>` while the block runs (offline mode only)."""
    if not offline():
        yield None
        return
    import vcr

    player = vcr.VCR(
        record_mode="none",
        match_on=["method", "scheme", "host", "port", "path"],
        filter_headers=["authorization", "x-api-key"],
        # Only provider traffic is replayed: calls to the Bear Lumen service on this machine go through.
        ignore_localhost=True,
        ignore_hosts=["bearlumen.embedded"],  # the embedded service's in-process transport
    )
    with player.use_cassette(str(CASSETTES / cassette)) as cassette_player:
        yield cassette_player


def provider_keys() -> None:
    """Placeholder provider keys for offline replay (never sent anywhere: nothing leaves the process)."""
    if offline():
        os.environ.setdefault("OPENAI_API_KEY", "offline-replay")
        os.environ.setdefault("ANTHROPIC_API_KEY", "offline-replay")
