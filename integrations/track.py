"""`bearlumen.track()`: record a call that no patch saw (a custom HTTP client, a response from elsewhere).

    bearlumen.track(response, agent_id="support-bot")     # an SDK response object or its JSON dict
    stream = bearlumen.track(stream)                      # records when the stream ends, however it ends
    bearlumen.track(None, model="whisper-1", provider="openai", cost_usd="0.006")   # any other cost

It returns its first argument unchanged (a stream the library built keeps its identity; a plain generator
comes back as a generator that yields the same items), never raises into the caller, and records through
the same path as the integrations: same pricing, and the provider's response id as the idempotency key,
so a response that an integration already recorded is recorded once.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any, Dict, Optional, TypeVar

from bearlumen.metering.record import (
    USAGE_FROM_RESPONSE,
    USAGE_FROM_STREAM,
    USAGE_PARTIAL_STREAM,
    USAGE_UNAVAILABLE,
    LLMCall,
    TokenUsage,
    emit,
)
from bearlumen.scopes import Attribution, current_attribution

from ._detect import StreamState, describe
from ._iterators import observe_async_iterator, observe_iterator
from ._streams import StreamObserver, observe_async_stream, observe_sync_stream

logger = logging.getLogger("bearlumen")

T = TypeVar("T")

INTEGRATION = "track"
# Keyword arguments that set the attribution (everything else unknown goes to the event's metadata).
_ATTRIBUTION = ("agent_id", "workflow_id", "end_user_id", "subscription_id")
# Keyword arguments that describe the call itself (they override what the response says).
_CALL = ("provider", "model", "operation", "response_id", "cost_usd")
_BUCKETS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def track(response: T, **details: Any) -> T:
    """Record `response` (or, with `None`, the call the keyword arguments describe) once; return it as is.

    Keyword arguments: `agent_id`, `workflow_id`, `end_user_id`, `subscription_id` (laid over the current
    scopes); `provider`, `model`, `operation`, `response_id` (override what the response says; `response_id`
    is the idempotency key of a manual record); token counts `input_tokens`, `output_tokens`,
    `cache_read_tokens`, `cache_write_tokens`, `cache_write_1h_tokens`, `reasoning_tokens`; `cost_usd`
    (a cost you know: recorded as given instead of priced); anything else goes to the event's metadata.
    """
    try:
        if response is None:
            _record_manual(details)
            return response
        if _is_stream(response):
            tracked: T = _track_stream(response, details)
            return tracked
        _record_response(response, details)
    except Exception:
        logger.warning("bearlumen: track() could not record a %s", type(response).__name__, exc_info=True)
    return response


# -- what a call is --------------------------------------------------------------------------------------


def _attribution(details: Dict[str, Any]) -> Attribution:
    changes = {name: str(details[name]) for name in _ATTRIBUTION if details.get(name) is not None}
    known = set(_ATTRIBUTION) | set(_CALL) | set(_BUCKETS)
    metadata = {name: value for name, value in details.items() if name not in known}
    return current_attribution().merged_with(changes, metadata)


def _cost(details: Dict[str, Any]) -> Optional[Decimal]:
    value = details.get("cost_usd")
    if value is None:
        return None
    if isinstance(value, float):  # a float is not an exact amount: read it through its shortest repr
        value = repr(value)
    cost = Decimal(str(value))
    if not cost.is_finite() or cost < 0:
        raise ValueError(f"cost_usd must be a finite amount >= 0, not {value!r}")
    return cost


def _manual_usage(details: Dict[str, Any]) -> Optional[TokenUsage]:
    counts = {name: details[name] for name in _BUCKETS if details.get(name) is not None}
    if not counts:
        return None
    for name, value in counts.items():
        if type(value) is not int or value < 0:
            raise ValueError(f"{name} must be an int >= 0, not {value!r}")
    return TokenUsage(**counts)


def _record_manual(details: Dict[str, Any]) -> None:
    usage = _manual_usage(details)
    model = details.get("model")
    emit(
        LLMCall(
            integration=INTEGRATION,
            provider=str(details.get("provider") or "custom"),
            operation=str(details.get("operation") or "custom"),
            model_requested=model,
            model=model,
            usage=usage,
            usage_source=USAGE_FROM_RESPONSE if usage is not None else USAGE_UNAVAILABLE,
            response_id=details.get("response_id"),
            attribution=_attribution(details),
            cost_usd=_cost(details),
        )
    )


def _record_response(response: Any, details: Dict[str, Any]) -> None:
    facts = describe(response)
    if facts is None:
        logger.warning("bearlumen: track() does not know a %s; nothing recorded", type(response).__name__)
        return
    _emit(facts, details, USAGE_FROM_RESPONSE, False, _attribution(details))


def _emit(facts: Any, details: Dict[str, Any], source: str, streamed: bool, attribution: Attribution) -> None:
    usage = facts.usage
    model = details.get("model") or facts.model
    emit(
        LLMCall(
            integration=INTEGRATION,
            provider=str(details.get("provider") or facts.provider),
            operation=str(details.get("operation") or facts.operation),
            model_requested=details.get("model"),
            model=model,
            usage=usage,
            usage_source=source if usage is not None else USAGE_UNAVAILABLE,
            streamed=streamed,
            response_id=details.get("response_id") or facts.response_id,
            attribution=attribution,
            extra=dict(facts.extra),
            tier=facts.tier,
            cost_usd=_cost(details),
        )
    )


# -- streams ---------------------------------------------------------------------------------------------


def _is_stream(value: Any) -> bool:
    if isinstance(value, (dict, str, bytes, list, tuple)):
        return False
    return hasattr(value, "__next__") or hasattr(value, "__anext__") or hasattr(value, "_iterator")


class _Tracked(StreamObserver):
    """Accumulates a tracked stream's items; when it ends (once, however), records its call."""

    __slots__ = ("_attribution", "_details", "_state")

    def __init__(self, details: Dict[str, Any]) -> None:
        super().__init__()
        self._details = details
        self._attribution = _attribution(details)  # the scope of the call, not of whoever ends the stream
        self._state = StreamState()

    def on_item(self, item: Any) -> None:
        self._state.add(item)

    def on_end(self, completed: bool) -> None:
        facts = self._state.facts
        if facts is None:
            logger.debug("bearlumen: a tracked stream ended with no call in it; nothing recorded")
            return
        final = self._state.complete or completed
        source = USAGE_FROM_STREAM if final else USAGE_PARTIAL_STREAM
        _emit(facts, self._details, source, True, self._attribution)


def _track_stream(stream: Any, details: Dict[str, Any]) -> Any:
    tracked = _Tracked(details)
    if hasattr(stream, "_iterator"):  # an openai / anthropic Stream: watched in place, same object
        is_async = hasattr(stream, "__aiter__") and not hasattr(stream, "__iter__")
        (observe_async_stream if is_async else observe_sync_stream)(stream, tracked)
        return stream
    if hasattr(stream, "__anext__"):
        return observe_async_iterator(stream, tracked)
    return observe_iterator(stream, tracked)
