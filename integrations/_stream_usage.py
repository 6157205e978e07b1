"""Which OpenAI-compatible hosts a chat stream asks for usage (`stream_options.include_usage`).

The OpenAI API sends a stream's usage only when asked; so do most servers that speak its protocol. The
openai patch asks (and hides the extra usage chunk from the caller, see `integrations.openai`) when the
client's host is the OpenAI API, Azure OpenAI, or one of

- :data:`STREAM_USAGE_HOSTS`: hosted APIs documented to accept the field, and the default local address
  of Ollama (`localhost:11434`), whose OpenAI-compatible endpoint accepts it;
- the hosts the user names: ``instrument(stream_usage_hosts=["vllm.internal:8000", "localhost:4000"])``
  ("host" matches every port, "host:port" one port), for self-hosted servers (vLLM, LiteLLM proxy,
  LocalAI...) whose address no list can know.

A host that rejects the field anyway (HTTP 400 or 422 whose error mentions `stream_options` or
`include_usage`) gets the very same request again once, without the field, and is remembered for the
life of the process: later streams to it are sent as the caller wrote them (their events say
`usage_source: "unavailable"`). The caller sees the answer of that second request, as it would have
without instrumentation.
"""

from __future__ import annotations

from typing import FrozenSet, Iterable, Optional, Set

#: Hosts asked for stream usage by default ("host" = any port, "host:port" = that port only).
STREAM_USAGE_HOSTS: FrozenSet[str] = frozenset(
    {
        "api.groq.com",
        "api.together.xyz",
        "api.together.ai",
        "api.deepseek.com",
        "openrouter.ai",
        "api.openrouter.ai",
        "generativelanguage.googleapis.com",  # Gemini's OpenAI-compatible endpoint
        "localhost:11434",  # Ollama's default address
        "127.0.0.1:11434",
    }
)

_user_hosts: FrozenSet[str] = frozenset()
# Hosts seen rejecting the field. Only ever added to (set.add is atomic): no lock on the call path.
_rejecting: Set[str] = set()


def configure(hosts: Optional[Iterable[str]]) -> None:
    """Replace the user's hosts (None or empty: only the documented list)."""
    global _user_hosts
    _user_hosts = frozenset(host.strip().lower() for host in hosts or () if host and host.strip())


def user_hosts() -> FrozenSet[str]:
    return _user_hosts


def asks(host: str, port: Optional[int]) -> bool:
    """Whether a stream to `host`:`port` is asked for usage."""
    address = f"{host}:{port}" if port is not None else host
    return any(candidate in STREAM_USAGE_HOSTS or candidate in _user_hosts for candidate in (host, address))


def rejected_by(exc: BaseException) -> bool:
    """Whether `exc` is a server's refusal of `stream_options` (an HTTP 400/422 that names it)."""
    if getattr(exc, "status_code", None) not in (400, 422):
        return False
    text = f"{exc} {getattr(exc, 'body', '')}".lower()
    return "stream_options" in text or "include_usage" in text


def rejects(host: str, port: Optional[int]) -> bool:
    """Whether `host`:`port` was seen rejecting the field (then it is never asked again)."""
    return bool(_rejecting) and (f"{host}:{port}" if port is not None else host) in _rejecting


def remember_rejection(host: str, port: Optional[int]) -> None:
    _rejecting.add(f"{host}:{port}" if port is not None else host)


def forget_rejections() -> None:
    """Ask every listed host again (tests; a server upgraded while the process runs)."""
    _rejecting.clear()


__all__ = [
    "STREAM_USAGE_HOSTS",
    "asks",
    "configure",
    "forget_rejections",
    "rejected_by",
    "rejects",
    "remember_rejection",
    "user_hosts",
]
