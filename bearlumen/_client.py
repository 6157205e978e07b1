"""``Client`` and ``AsyncClient``: the entry points of the SDK.

    import bearlumen

    with bearlumen.Client(api_key="blm_...") as client:         # or BEARLUMEN_API_KEY
        client.usage.record(event_type="token_usage", metric_name="llm_tokens", quantity=150000)

    async with bearlumen.AsyncClient() as client:
        await client.usage.record(event_type="token_usage", metric_name="llm_tokens", quantity=150000)

A client holds a connection pool: create one per process (it is thread-safe) and reuse it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Optional, Type, TypeVar, Union

import httpx

from bearlumen._config import NOT_GIVEN, ClientConfig, NotGiven, Timeout, mask_key, resolve_config
from bearlumen._http import AsyncHTTPClient, SyncHTTPClient
from bearlumen.resources import (
    AsyncCostAttribution,
    AsyncEndUsers,
    AsyncSubscriptions,
    AsyncUsage,
    CostAttribution,
    EndUsers,
    Subscriptions,
    Usage,
)

__all__ = ["AsyncClient", "Client"]

_C = TypeVar("_C", bound="Client")
_AC = TypeVar("_AC", bound="AsyncClient")


def _replace(
    config: ClientConfig, timeout: Union[Timeout, NotGiven], max_retries: Optional[int]
) -> ClientConfig:
    return resolve_config(
        config.api_key,
        config.base_url,
        config.timeout if isinstance(timeout, NotGiven) else timeout,
        config.max_retries if max_retries is None else max_retries,
    )


def _repr(client: Any, config: ClientConfig) -> str:
    return f"<{type(client).__name__} base_url={config.base_url!r} api_key={mask_key(config.api_key)!r}>"


class Client:
    """The Bear Lumen client.

    Args:
        api_key: your key (``blm_...``); defaults to the ``BEARLUMEN_API_KEY`` environment variable.
        base_url: the service, default ``BEARLUMEN_BASE_URL`` or ``http://127.0.0.1:8787`` (what
            ``bearlumen serve`` listens on). A database URL (``sqlite:///path/to/usage.db``,
            ``postgresql://...``) runs the service in-process instead (embedded mode).
        timeout: seconds per request (default 30, 5 to connect), an ``httpx.Timeout``, or None for none.
        max_retries: retries after a failed attempt (default 2); 0 disables them.
        http_client: your own ``httpx.Client`` (proxies, certificates, event hooks); you close it.

    Raises:
        AuthenticationError: no API key at all.
    """

    end_users: EndUsers
    subscriptions: Subscriptions
    usage: Usage
    cost_attribution: CostAttribution

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        timeout: Union[Timeout, NotGiven] = NOT_GIVEN,
        max_retries: Optional[int] = None,
        http_client: Optional[httpx.Client] = None,
    ) -> None:
        config = resolve_config(api_key, base_url, timeout, max_retries)
        transport: Optional[httpx.BaseTransport] = None
        if config.embedded:
            if http_client is not None:
                raise ValueError("http_client cannot be combined with an embedded (database URL) base_url")
            from bearlumen._embedded import SyncEmbeddedTransport

            transport = SyncEmbeddedTransport(config.base_url)
        self._attach(SyncHTTPClient(config, http_client=http_client, transport=transport))

    def _attach(self, http: SyncHTTPClient) -> None:
        self._http = http
        self.end_users = EndUsers(http)
        self.subscriptions = Subscriptions(http)
        self.usage = Usage(http)
        self.cost_attribution = CostAttribution(http)

    @property
    def base_url(self) -> str:
        return self._http.config.base_url

    @property
    def is_embedded(self) -> bool:
        return self._http.config.embedded

    @property
    def timeout(self) -> Timeout:
        return self._http.config.timeout

    @property
    def max_retries(self) -> int:
        return self._http.config.max_retries

    def with_options(
        self: _C, *, timeout: Union[Timeout, NotGiven] = NOT_GIVEN, max_retries: Optional[int] = None
    ) -> _C:
        """A client with another timeout / retry budget that shares this one's connections.

        ``client.with_options(max_retries=0).usage.record(...)``. Closing it does nothing; close the original.
        """
        clone = type(self).__new__(type(self))
        clone._attach(self._http.copy(_replace(self._http.config, timeout, max_retries)))
        return clone

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    def close(self) -> None:
        """Close the connection pool (and the embedded service, if any). Idempotent."""
        self._http.close()

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return _repr(self, self._http.config)


class AsyncClient:
    """The Bear Lumen client for asyncio (and trio): the same resources as ``Client``, awaitable.

    Same arguments as ``Client``; ``http_client`` is an ``httpx.AsyncClient``. Close it with
    ``await client.aclose()`` or ``async with``.
    """

    end_users: AsyncEndUsers
    subscriptions: AsyncSubscriptions
    usage: AsyncUsage
    cost_attribution: AsyncCostAttribution

    def __init__(
        self,
        api_key: Optional[str] = None,
        *,
        base_url: Optional[str] = None,
        timeout: Union[Timeout, NotGiven] = NOT_GIVEN,
        max_retries: Optional[int] = None,
        http_client: Optional[httpx.AsyncClient] = None,
    ) -> None:
        config = resolve_config(api_key, base_url, timeout, max_retries)
        transport: Optional[httpx.AsyncBaseTransport] = None
        if config.embedded:
            if http_client is not None:
                raise ValueError("http_client cannot be combined with an embedded (database URL) base_url")
            from bearlumen._embedded import AsyncEmbeddedTransport

            transport = AsyncEmbeddedTransport(config.base_url)
        self._attach(AsyncHTTPClient(config, http_client=http_client, transport=transport))

    def _attach(self, http: AsyncHTTPClient) -> None:
        self._http = http
        self.end_users = AsyncEndUsers(http)
        self.subscriptions = AsyncSubscriptions(http)
        self.usage = AsyncUsage(http)
        self.cost_attribution = AsyncCostAttribution(http)

    @property
    def base_url(self) -> str:
        return self._http.config.base_url

    @property
    def is_embedded(self) -> bool:
        return self._http.config.embedded

    @property
    def timeout(self) -> Timeout:
        return self._http.config.timeout

    @property
    def max_retries(self) -> int:
        return self._http.config.max_retries

    def with_options(
        self: _AC, *, timeout: Union[Timeout, NotGiven] = NOT_GIVEN, max_retries: Optional[int] = None
    ) -> _AC:
        """A client with another timeout / retry budget that shares this one's connections."""
        clone = type(self).__new__(type(self))
        clone._attach(self._http.copy(_replace(self._http.config, timeout, max_retries)))
        return clone

    @property
    def is_closed(self) -> bool:
        return self._http.is_closed

    async def aclose(self) -> None:
        """Close the connection pool (and the embedded service, if any). Idempotent."""
        await self._http.aclose()

    async def close(self) -> None:
        """Alias of ``aclose()``."""
        await self.aclose()

    async def __aenter__(self: _AC) -> _AC:
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return _repr(self, self._http.config)
