"""How a batch reaches the service: ``usage.record_batch`` on a client with the SDK's own retries off.

The exporter retries by itself (backoff, Retry-After, leases), so its client makes exactly one attempt
per call. In the process that built the user's client it is ``client.with_options(max_retries=0)``
(same connection pool, proxies, certificates). A forked child never touches the parent's pool (its
sockets are shared with the parent): it builds a new client from the same key and URL (also in embedded
mode, where the parent's in-process service cannot cross a fork), lazily, on its first send.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import TYPE_CHECKING, Any, Dict, Optional, Sequence

from bearlumen._http import RawJSON

if TYPE_CHECKING:
    from bearlumen._client import Client
    from bearlumen._config import ClientConfig

logger = logging.getLogger("bearlumen")


def client_config(client: Any) -> Optional[ClientConfig]:
    http = getattr(client, "_http", None)
    return getattr(http, "config", None)


class BatchTransport:
    def __init__(self, client: Client, request_timeout: float) -> None:
        self._timeout = request_timeout
        self._config = client_config(client)
        self._lock = threading.Lock()
        self._owned: Optional[Client] = None  # a client this transport built (closed by close())
        self._base: Optional[Client] = None
        embedded = bool(getattr(client, "is_embedded", False))
        try:
            # Embedded mode has no timeouts; elsewhere each attempt is bounded by request_timeout.
            self._base = (
                client.with_options(max_retries=0)
                if embedded
                else client.with_options(timeout=request_timeout, max_retries=0)
            )
        except Exception:  # not a bearlumen.Client (a test double): use it as given
            self._base = client
        self._embedded = embedded

    @property
    def base_url(self) -> str:
        return self._config.base_url if self._config is not None else ""

    @property
    def api_key(self) -> str:
        return self._config.api_key if self._config is not None else ""

    def _client(self) -> Client:
        with self._lock:
            if self._base is not None and self._owned is None and getattr(self._base, "is_closed", False):
                # the application closed its client (e.g. an atexit handler that ran before ours):
                # deliver with a client of our own, same key and URL
                self._base = None
            if self._base is None:
                if self._config is None:
                    raise RuntimeError("no client to deliver with")
                from bearlumen._client import Client

                self._owned = Client(
                    api_key=self._config.api_key,
                    base_url=self._config.base_url,
                    timeout=self._timeout,
                    max_retries=0,
                )
                self._base = self._owned
            return self._base

    def send(self, bodies: Sequence[str], timeout: Optional[float] = None) -> Dict[str, Any]:
        """One attempt with the events' JSON texts as spooled (each one checked by the sender to be a
        JSON object): ``{"recorded_count", "skipped_count", "results"}`` or an SDK exception.

        The batch body is the stored texts joined, not decoded and encoded again: those were made by
        ``encode_json`` when the event was built, so the bytes on the wire are the same."""
        client = self._client()
        if timeout is not None and not self._embedded and timeout < self._timeout:
            client = client.with_options(timeout=max(timeout, 0.05))
        http = getattr(client, "_http", None)
        if http is None:  # not a bearlumen.Client (a test double): its own record_batch
            answer: Any = client.usage.record_batch([json.loads(body) for body in bodies])
        else:
            payload = RawJSON(b'{"events":[' + ",".join(bodies).encode("utf-8") + b"]}")
            answer = http.request("POST", "/v1/usage/events/batch", body=payload)
        return answer if isinstance(answer, dict) else {}

    def after_fork_in_child(self) -> BatchTransport:
        child = BatchTransport.__new__(BatchTransport)
        child._timeout = self._timeout
        child._config = self._config
        child._lock = threading.Lock()
        child._owned = None
        child._base = None if self._config is not None else self._base
        child._embedded = self._embedded
        return child

    def close(self) -> None:
        owned, self._owned = self._owned, None
        if owned is not None:
            try:
                owned.close()
            except Exception:
                logger.debug("bearlumen: closing the delivery client failed", exc_info=True)
