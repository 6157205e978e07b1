"""Observe a stream that is a plain iterator or async iterator (a generator the library returns).

openai's and anthropic's `Stream` objects are watched in place (`_streams`). Libraries whose streams are
plain generators (google-genai, ollama, mistralai's `EventStream`) give the caller nothing to keep the
identity of: the caller gets a generator yielding the very same items, and the observer is told once
that the stream ended, however it ended (exhausted, broken off, closed, failed, or dropped: a generator
never started never runs its `finally`, so a `weakref.finalize` ends the observer then).
"""

from __future__ import annotations

import logging
import weakref
from typing import Any, AsyncIterator, Iterator

from ._streams import StreamObserver

logger = logging.getLogger("bearlumen")


def _observe(observer: StreamObserver, item: Any) -> None:
    try:
        observer.on_item(item)
    except Exception:
        logger.debug("bearlumen: observing a stream item failed", exc_info=True)


def _iterate(source: Iterator[Any], observer: StreamObserver) -> Iterator[Any]:
    completed = False
    try:
        for item in source:
            _observe(observer, item)
            yield item
        completed = True
    finally:
        observer.end(completed)
        close = getattr(source, "close", None)
        if not completed and callable(close):  # release the source's connection now, not at its GC
            close()


async def _aiterate(source: AsyncIterator[Any], observer: StreamObserver) -> AsyncIterator[Any]:
    completed = False
    try:
        async for item in source:
            _observe(observer, item)
            yield item
        completed = True
    finally:
        observer.end(completed)
        aclose = getattr(source, "aclose", None)
        if not completed and callable(aclose):
            await aclose()


def observe_iterator(source: Iterator[Any], observer: StreamObserver) -> Iterator[Any]:
    """A generator yielding `source`'s items, each shown to `observer`, which is ended once."""
    wrapped = _iterate(iter(source), observer)
    weakref.finalize(wrapped, observer.end, False)
    return wrapped


def observe_async_iterator(source: AsyncIterator[Any], observer: StreamObserver) -> AsyncIterator[Any]:
    """The async twin of :func:`observe_iterator`."""
    wrapped = _aiterate(source, observer)
    weakref.finalize(wrapped, observer.end, False)
    return wrapped
