"""OpenAI Agents SDK (`openai-agents`, package `agents`): each agent's model calls are billed to it.

    triage = Agent(name="triage", handoffs=[billing])
    Runner.run_sync(triage, "...")   # triage's calls -> agent_id="triage", billing's -> "billing"

The model calls themselves are metered by the openai patch (Responses and chat-completions models alike),
exactly as without the SDK. This module only tells who made them, through the SDK's public tracing
hooks: a tracing processor (`agents.add_trace_processor`) notes each span's parent and each agent span's
agent name while the span is open, and a framework lookup (`bearlumen.scopes.add_framework_lookup`)
walks from the SDK's current span (`agents.tracing.get_current_span()`, a generation, response or
function span inside an agent span) up to the nearest agent span. So each agent of a handoff chain gets
its own calls, and an agent run as a tool of another (`agent.as_tool()`) gets the calls made inside it.
Metadata: `framework: "openai-agents"`, `openai_agents_trace_id` (one per `Runner.run`, or per
`with trace(...)` block around several) and `openai_agents_group_id` when the trace has one.

Limits, all from the SDK's tracing being the hook:
- with the SDK's tracing disabled (`set_tracing_disabled(True)`, `OPENAI_AGENTS_DISABLE_TRACING`,
  `RunConfig(tracing_disabled=True)`) the SDK opens no spans to read: calls are not attributed;
- `agents.set_trace_processors([...])` called after `instrument()` replaces every processor, ours
  included: call it before `instrument()` (or add ours back with `install()` after `uninstall()`).

Explicit scopes win. The processor never changes spans or traces and never raises; `uninstall()` removes
the lookup and makes the processor inert (the SDK offers no way to remove one processor).
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from types import MappingProxyType
from typing import Any, Dict, Optional

from bearlumen.scopes import Attribution, remove_framework_lookup

from ._framework_hooks import install_lookup
from ._span_tree import MAX_OPEN_SPANS, SpanTree

logger = logging.getLogger("bearlumen")

FRAMEWORK = "openai-agents"
_TRACING_MODULE = "agents.tracing"

_spans = SpanTree(FRAMEWORK)  # the open spans, each with its agent when it is an agent span

_lock = threading.RLock()  # install/uninstall only; the processor and the lookup never take it
_enabled = False
_processor: Any = None
_hook_registered = False


def _agent_name(span: Any, agent_span_type: Any) -> Optional[str]:
    data = getattr(span, "span_data", None)
    if isinstance(data, agent_span_type):
        name = getattr(data, "name", None)
        return name if isinstance(name, str) and name else None
    return None


def lookup() -> Optional[Attribution]:
    """The attribution of the Agents SDK span current here (its agent, its trace), or None."""
    if not _enabled:
        return None
    tracing = sys.modules.get(_TRACING_MODULE)
    if tracing is None:
        return None
    span = tracing.get_current_span()
    if span is None:
        return None
    name = _agent_name(span, tracing.AgentSpanData)
    if name is None:
        name = _spans.agent_above(span.parent_id)
    trace_id = span.trace_id
    if not isinstance(trace_id, str) or not trace_id or trace_id == "no-op":
        return None if name is None else _attribution(name, None, None)
    trace = tracing.get_current_trace()
    group_id = getattr(trace, "group_id", None) if trace is not None else None
    return _attribution(name, trace_id, group_id if isinstance(group_id, str) and group_id else None)


@functools.lru_cache(maxsize=1024)
def _attribution(name: Optional[str], trace_id: Optional[str], group_id: Optional[str]) -> Attribution:
    # Cached: every call of one agent in one trace reads the same (immutable) attribution.
    metadata: Dict[str, Any] = {"framework": FRAMEWORK}
    if trace_id is not None:
        metadata["openai_agents_trace_id"] = trace_id
    if group_id is not None:
        metadata["openai_agents_group_id"] = group_id
    return Attribution(agent_id=name, metadata=MappingProxyType(metadata))


def _processor_class(tracing: Any) -> type:
    class BearLumenAgentsProcessor(tracing.TracingProcessor):  # type: ignore[misc]
        """Notes open spans' parents and agent names (read by `lookup`); exports nothing."""

        def on_trace_start(self, trace: Any) -> None:
            pass

        def on_trace_end(self, trace: Any) -> None:
            pass

        def on_span_start(self, span: Any) -> None:
            if not _enabled:
                return
            try:
                _spans.note(span.span_id, span.parent_id, _agent_name(span, tracing.AgentSpanData))
            except Exception:  # never raise into the SDK (a strange span)
                logger.debug("bearlumen: could not note an Agents SDK span", exc_info=True)

        def on_span_end(self, span: Any) -> None:
            try:
                _spans.forget(span.span_id)
            except Exception:
                logger.debug("bearlumen: could not forget an Agents SDK span", exc_info=True)

        def shutdown(self) -> None:
            pass

        def force_flush(self) -> None:
            pass

    return BearLumenAgentsProcessor


def _on_import(tracing: Any) -> None:
    """Add the processor once `agents.tracing` is imported (runs inside the app's import: never raises)."""
    global _processor
    with _lock:
        if not _enabled or _processor is not None:
            return
        try:
            _processor = _processor_class(tracing)()
            tracing.add_trace_processor(_processor)
        except Exception:
            logger.debug("bearlumen: registering the Agents SDK tracing processor failed", exc_info=True)


def install() -> None:
    """Bill model calls made inside Agents SDK agents to them (now, or when `agents` is imported)."""
    global _enabled, _hook_registered
    with _lock:
        _enabled = True
        _hook_registered = install_lookup(lookup, _TRACING_MODULE, _on_import, _hook_registered)


def uninstall() -> None:
    """Stop attributing Agents SDK calls (the processor stays registered, inert). Idempotent."""
    global _enabled
    with _lock:
        _enabled = False
        remove_framework_lookup(lookup)
        _spans.clear()


__all__ = ["FRAMEWORK", "MAX_OPEN_SPANS", "install", "lookup", "uninstall"]
