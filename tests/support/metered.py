"""`instrument()` on one integration against a test deployment, and a client to read what it recorded."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Tuple

import bearlumen


@contextmanager
def metered(deployment: Tuple[str, str], integration: str, **options: Any) -> Iterator[bearlumen.Client]:
    """Only `integration` patched, no spool (events go straight to the service); uninstrumented on exit."""
    base_url, key = deployment
    bearlumen.instrument(api_key=key, base_url=base_url, integrations=[integration], spool=False, **options)
    reader = bearlumen.Client(api_key=key, base_url=base_url)
    try:
        yield reader
    finally:
        bearlumen.uninstrument()
        reader.close()
