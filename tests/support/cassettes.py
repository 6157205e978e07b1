"""Replaying the recorded real provider traffic vendored in `tests/cassettes/` (see its README).

    with replay("openllmetry/openai/test_chat.yaml"):
        openai.OpenAI(api_key="test", max_retries=0).chat.completions.create(...)

Requests are matched on method, host and path, in recorded order (bodies are not compared: the real
clients' JSON differs byte-wise from the recorded one). `record_mode="none"`: an unmatched request fails
loudly instead of reaching the network.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import vcr

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"

_vcr = vcr.VCR(
    cassette_library_dir=str(CASSETTES),
    record_mode="none",
    # Six Anthropic cassettes were recorded against /v1/messages?beta=true, which current clients no
    # longer add; the path alone identifies the endpoint.
    match_on=["method", "scheme", "host", "port", "path"],
    filter_headers=["authorization", "x-api-key", "api-key", "openai-organization", "cookie"],
    # The exporter may deliver to the local Bear Lumen service while a cassette plays: let it through.
    ignore_localhost=True,
    ignore_hosts=["bearlumen.embedded"],  # the embedded service (in-process transport)
)


def _same_method(recorded: Any, sent: Any) -> None:
    # Cassettes recorded through aiohttp store `post`, those through httpx `POST`; google-genai's async
    # client sends through aiohttp when it is installed (litellm brings it), so compare without case.
    if recorded.method.upper() != sent.method.upper():
        raise AssertionError(f"{recorded.method} != {sent.method}")


_vcr.register_matcher("method", _same_method)


def replay(relative_path: str, **options: Any) -> Any:
    """A vcrpy cassette context manager for `tests/cassettes/<relative_path>`."""
    path = CASSETTES / relative_path
    if not path.exists():
        raise FileNotFoundError(f"cassette not vendored: {path}")
    return _vcr.use_cassette(str(path), **options)
