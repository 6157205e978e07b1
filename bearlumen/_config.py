"""Client configuration: API key, base URL, timeouts and retries, from arguments, then the environment.

| setting      | argument      | environment variable    | default                               |
|--------------|---------------|-------------------------|---------------------------------------|
| API key      | `api_key`     | `BEARLUMEN_API_KEY`     | none: AuthenticationError             |
| service      | `base_url`    | `BEARLUMEN_BASE_URL`    | `http://127.0.0.1:8787` (`bearlumen serve`) |
| timeout      | `timeout`     | `BEARLUMEN_TIMEOUT`     | 30 s per request, 5 s to connect      |
| retries      | `max_retries` | `BEARLUMEN_MAX_RETRIES` | 2 (3 attempts in all)                 |

A ``base_url`` that is a database URL (``sqlite:///path/to/usage.db``, ``postgresql://user@host/db``) selects
the embedded mode: the service runs in-process on that database, no server needed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Union
from urllib.parse import urlsplit

from bearlumen._exceptions import AuthenticationError

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "NOT_GIVEN",
    "ClientConfig",
    "NotGiven",
    "Timeout",
    "mask_key",
    "resolve_config",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8787"
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_MAX_RETRIES = 2

ENV_API_KEY = "BEARLUMEN_API_KEY"
ENV_BASE_URL = "BEARLUMEN_BASE_URL"
ENV_TIMEOUT = "BEARLUMEN_TIMEOUT"
ENV_MAX_RETRIES = "BEARLUMEN_MAX_RETRIES"

_EMBEDDED_SCHEMES = ("sqlite", "postgresql", "postgres")

MISSING_KEY_MESSAGE = (
    "No API key provided. Pass it as bearlumen.Client(api_key='blm_...') or set the BEARLUMEN_API_KEY "
    "environment variable. Create a key with `bearlumen keys create --tenant <name>` on the machine that "
    "runs the service (add `--database-url sqlite:///path/to/usage.db` for the embedded mode)."
)


class NotGiven:
    """Sentinel for "argument not given", where ``None`` is a meaningful value (e.g. ``timeout=None``)."""

    _instance: Optional[NotGiven] = None

    def __new__(cls) -> NotGiven:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __reduce__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()

# A number of seconds, an ``httpx.Timeout`` for per-phase control, or None for no timeout at all.
Timeout = Union[float, "httpx.Timeout", None]


@dataclass(frozen=True)
class ClientConfig:
    api_key: str
    base_url: str  # http(s) origin without trailing slash or /v1; or the database URL (embedded)
    embedded: bool
    timeout: Timeout
    max_retries: int

    def __repr__(self) -> str:  # never print the key
        return (
            f"ClientConfig(api_key={mask_key(self.api_key)!r}, base_url={self.base_url!r}, "
            f"embedded={self.embedded!r}, timeout={self.timeout!r}, max_retries={self.max_retries!r})"
        )


def mask_key(api_key: str) -> str:
    """A display form of a key that is safe to log: ``blm_abcd…`` (the prefix the service also stores)."""
    return f"{api_key[:8]}…" if len(api_key) > 12 else "…"


def resolve_config(
    api_key: Optional[str],
    base_url: Optional[str],
    timeout: Union[Timeout, NotGiven],
    max_retries: Optional[int],
) -> ClientConfig:
    key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
    if not key or not key.strip():
        raise AuthenticationError(MISSING_KEY_MESSAGE, code="missing_api_key")
    key = key.strip()

    url, embedded = normalize_base_url(base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL)

    resolved_timeout: Timeout
    if isinstance(timeout, NotGiven):
        env_timeout = os.environ.get(ENV_TIMEOUT)
        resolved_timeout = _parse_env_number(ENV_TIMEOUT, env_timeout) if env_timeout else DEFAULT_TIMEOUT
    else:
        resolved_timeout = timeout
    if isinstance(resolved_timeout, (int, float)) and (
        isinstance(resolved_timeout, bool) or not resolved_timeout > 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds, got {resolved_timeout!r}")

    if max_retries is None:
        env_retries = os.environ.get(ENV_MAX_RETRIES)
        max_retries = (
            int(_parse_env_number(ENV_MAX_RETRIES, env_retries)) if env_retries else DEFAULT_MAX_RETRIES
        )
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")

    return ClientConfig(
        api_key=key, base_url=url, embedded=embedded, timeout=resolved_timeout, max_retries=max_retries
    )


def normalize_base_url(url: str) -> tuple[str, bool]:
    """``(url, embedded)``: an http(s) origin (trailing ``/`` and ``/v1`` removed) or a database URL."""
    url = url.strip()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme.split("+", 1)[0] in _EMBEDDED_SCHEMES:
        return url, True
    if scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"base_url must be an http(s) URL of the service (e.g. {DEFAULT_BASE_URL}) or a database URL "
            f"for the embedded mode (sqlite:///path/to/usage.db, postgresql://...), got {url!r}"
        )
    url = url.rstrip("/")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url, False


def _parse_env_number(name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
