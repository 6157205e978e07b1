"""`bearlumen.track()`, loaded lazily: the implementation lives with the provider readers it uses
(`bearlumen.integrations.track`)."""

from __future__ import annotations

import importlib
import logging
from typing import Any, TypeVar

logger = logging.getLogger("bearlumen")

T = TypeVar("T")


def track(response: T, **details: Any) -> T:
    """Record `response` (an LLM response, a stream, or `None` with the call described by keywords) once,
    and return it unchanged. Never raises. See `bearlumen.integrations.track.track` for the keywords."""
    try:
        implementation = importlib.import_module("bearlumen.integrations.track").track
    except Exception:
        logger.warning("bearlumen: track() is unavailable", exc_info=True)
        return response
    result: T = implementation(response, **details)
    return result
