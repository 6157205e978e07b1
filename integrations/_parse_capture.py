"""The answer a structured-output parser rejected, kept so that the billed call is still metered.

`chat.completions.parse`, `responses.parse` and anthropic's `messages.parse` send the request, receive a
complete (billed) answer, then run the SDK's parser on it inside the call: a pydantic `ValidationError`,
a `LengthFinishReasonError` or a content-filter error raised there reaches the caller with no response
object. The integrations wrap the SDK's parser function (listed as data in their patch tables) with
:func:`capture_wrapper`: while a metered call is inside :func:`capturing`, a parser that raises leaves the
answer it was given in the holder, and the integration records the call from it before the very same
exception propagates. Nothing is caught or changed here.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

_holder: contextvars.ContextVar[Optional[List[Any]]] = contextvars.ContextVar(
    "bearlumen_parse_capture", default=None
)


@contextmanager
def capturing() -> Iterator[List[Any]]:
    """A holder that receives the answer of a parser failing within this block (at most one)."""
    holder: List[Any] = []
    token = _holder.set(holder)
    try:
        yield holder
    finally:
        _holder.reset(token)


def capture_wrapper(argument: str) -> Callable[[Any, Any, Tuple[Any, ...], Dict[str, Any]], Any]:
    """A wrapt wrapper for a parser function taking the raw answer as keyword `argument`."""

    def capture(wrapped: Any, instance: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        try:
            return wrapped(*args, **kwargs)
        except BaseException:
            holder = _holder.get()
            if holder is not None and not holder:
                answer = kwargs.get(argument, args[0] if args else None)
                if answer is not None:
                    holder.append(answer)
            raise

    return capture
