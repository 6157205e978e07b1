"""Watch a provider stream as the user consumes it, without replacing it.

The user must get the very object the library returned (same type, same helpers, `with`, `close()`),
so instead of wrapping a stream in a proxy we swap the generator it iterates (`_iterator`) for one that
hands each item to an observer on its way to the user. The observer is told once that the stream ended,
however it ended: exhausted, `break` then garbage collection, `close()`, `with` exit, an exception, or
dropped without ever being iterated (a generator never started never runs its `finally`, so a
`weakref.finalize` on the stream ends the observer then).

openai's and anthropic's `Stream` / `AsyncStream` both iterate a private `_iterator` generator. If a
future release drops it, `observe_*` ends the observer at once (`end(False)`: the call is recorded, its
usage unavailable) and returns False, rather than touch an object it does not understand.

Garbage collection: a stream abandoned mid-way ends when its generator is finalized (``GeneratorExit``),
and one never iterated ends in a ``weakref.finalize`` callback. Both may run inside a collection that
started anywhere, also inside one of our own critical sections on the same thread, so these two paths
only hand the end over (:func:`bearlumen._handoff.later`, a lock-free queue) to the finisher thread, which
ends the observer in the context captured when the stream was observed. A stream that is exhausted,
fails, or is closed by the user ends synchronously, on the user's thread.
"""

from __future__ import annotations

import contextvars
import logging
import weakref
from typing import Any, AsyncIterator, Callable, Iterator, Optional

from bearlumen import _handoff

logger = logging.getLogger("bearlumen")


class StreamObserver:
    """Receives a stream's items and its end; subclasses accumulate usage and emit one event.

    An observer must not hold a reference to its stream: the stream's finalizer holds the observer, so
    such a reference would keep the stream alive until interpreter exit.
    """

    __slots__ = ("_context", "_ended")

    def __init__(self) -> None:
        self._ended = False
        self._context: Optional[contextvars.Context] = None

    def on_item(self, item: Any) -> None:
        """One item (chunk / event) as the user receives it. Must be cheap and must not raise."""

    def on_end(self, completed: bool) -> None:
        """The stream is over; `completed` is False when it was closed or failed before its end."""

    def end(self, completed: bool) -> None:
        """Run `on_end` exactly once, whatever ends the stream first; never raises."""
        if self._ended:
            return
        self._ended = True
        try:
            self.on_end(completed)
        except Exception:
            logger.debug("bearlumen: finishing a stream failed", exc_info=True)

    def end_later(self, completed: bool) -> None:
        """`end` from code the garbage collector runs: hand it to the finisher thread, take no lock."""
        if not self._ended:
            _handoff.later(self.end, completed, context=self._context)

    def watch(self) -> None:
        """Called where the stream is set up (ordinary code): capture its context, arm the finisher."""
        self._context = contextvars.copy_context()
        _handoff.arm()


def _observe_items(observer: StreamObserver, item: Any) -> None:
    try:
        observer.on_item(item)
    except Exception:
        logger.debug("bearlumen: observing a stream item failed", exc_info=True)


def _observed(source: Iterator[Any], observer: StreamObserver) -> Iterator[Any]:
    try:
        for item in source:
            _observe_items(observer, item)
            yield item
    except GeneratorExit:
        # `break` + the stream dropped: the generator is finalized, maybe by the garbage collector
        observer.end_later(False)
        raise
    except BaseException:
        observer.end(False)
        raise
    observer.end(True)


async def _aobserved(source: AsyncIterator[Any], observer: StreamObserver) -> AsyncIterator[Any]:
    try:
        async for item in source:
            _observe_items(observer, item)
            yield item
    except GeneratorExit:
        observer.end_later(False)
        raise
    except BaseException:
        observer.end(False)
        raise
    observer.end(True)


def _current_iterator(stream: Any) -> Optional[Any]:
    # anthropic builds `_iterator` lazily (a cached_property); reading it creates it, as the
    # library itself would on first iteration.
    try:
        return stream._iterator
    except AttributeError:
        return None


def _chain_close(stream: Any, name: str, observer: StreamObserver, is_async: bool) -> None:
    # The replacement reaches the stream through a weak reference: a strong one would form a cycle
    # (stream -> its __dict__ -> this closure -> stream) and delay the end of a dropped stream until
    # the cyclic garbage collector runs.
    method: Optional[Callable[..., Any]] = getattr(type(stream), name, None)
    if method is None:
        return
    stream_ref = weakref.ref(stream)
    if is_async:

        async def aclose_then_end(*args: Any, **kwargs: Any) -> Any:
            target = stream_ref()
            try:
                return None if target is None else await method(target, *args, **kwargs)
            finally:
                observer.end(False)

        setattr(stream, name, aclose_then_end)
    else:

        def close_then_end(*args: Any, **kwargs: Any) -> Any:
            target = stream_ref()
            try:
                return None if target is None else method(target, *args, **kwargs)
            finally:
                observer.end(False)

        setattr(stream, name, close_then_end)


def _end_when_dropped(stream: Any, observer: StreamObserver) -> None:
    # A stream dropped without ever being iterated: its generator never started, so its `finally` never
    # runs. `end` is idempotent, so this is a no-op for a stream that ended otherwise first.
    weakref.finalize(stream, observer.end_later, False)


def observe_sync_stream(stream: Any, observer: StreamObserver) -> bool:
    """Route `stream`'s items through `observer`, which is told once when the stream ends.

    False if the stream's shape is unknown: the observer is ended at once (`end(False)`).
    """
    observer.watch()
    source = _current_iterator(stream)
    if source is None or not hasattr(source, "__next__"):
        logger.debug("bearlumen: unknown stream type %s; usage unavailable", type(stream).__name__)
        observer.end(False)
        return False
    try:
        stream._iterator = _observed(source, observer)
        _chain_close(stream, "close", observer, is_async=False)
        _end_when_dropped(stream, observer)
    except Exception:
        logger.debug("bearlumen: could not observe %s", type(stream).__name__, exc_info=True)
        observer.end(False)
        return False
    return True


def observe_async_stream(stream: Any, observer: StreamObserver) -> bool:
    """The async twin of :func:`observe_sync_stream`."""
    observer.watch()
    source = _current_iterator(stream)
    if source is None or not hasattr(source, "__anext__"):
        logger.debug("bearlumen: unknown async stream type %s; usage unavailable", type(stream).__name__)
        observer.end(False)
        return False
    try:
        stream._iterator = _aobserved(source, observer)
        for name in ("close", "aclose"):
            _chain_close(stream, name, observer, is_async=True)
        _end_when_dropped(stream, observer)
    except Exception:
        logger.debug("bearlumen: could not observe %s", type(stream).__name__, exc_info=True)
        observer.end(False)
        return False
    return True
