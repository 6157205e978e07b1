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
from typing import Any, Iterator, Optional

CASSETTES = Path(__file__).resolve().parent.parent / "tests" / "cassettes"


# Decided once, before provider_keys() may set placeholder keys.
OFFLINE = not (os.environ.get("OPENAI_API_KEY") or os.environ.get("ANTHROPIC_API_KEY"))


def offline() -> bool:
    return OFFLINE


@contextlib.contextmanager
def recorded(cassette: str, local_port: Optional[int] = None) -> Iterator[Any]:
    """Replay `tests/cassettes/<cassette>` while the block runs (offline mode only).

    `local_port`: the provider itself runs on this machine (Ollama, port 11434): its port is replayed,
    every other local port (the Bear Lumen service) goes through.
    """
    if not offline():
        yield None
        return
    import vcr

    def local_provider_only(request: Any) -> Any:
        return request if request.port == local_port else None  # None: not replayed, sent for real

    player = vcr.VCR(
        record_mode="none",
        match_on=["method", "scheme", "host", "port", "path"],
        filter_headers=["authorization", "x-api-key"],
        # Only provider traffic is replayed: calls to the Bear Lumen service on this machine go through.
        ignore_localhost=local_port is None,
        ignore_hosts=["bearlumen.embedded"],  # the embedded service's in-process transport
        **({"before_record_request": local_provider_only} if local_port is not None else {}),
    )
    with player.use_cassette(str(CASSETTES / cassette)) as cassette_player:
        yield cassette_player


def provider_keys() -> None:
    """Placeholder provider keys for offline replay (never sent anywhere: nothing leaves the process)."""
    if offline():
        os.environ.setdefault("OPENAI_API_KEY", "offline-replay")
        os.environ.setdefault("ANTHROPIC_API_KEY", "offline-replay")
        # the other providers of examples/providers.py
        for name in ("GEMINI_API_KEY", "MISTRAL_API_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            os.environ.setdefault(name, "offline-replay")
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM: no price-map fetch
