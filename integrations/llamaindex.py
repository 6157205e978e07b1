"""LlamaIndex agents: a model call made inside an agent's step is billed to that agent.

    agent = FunctionAgent(name="researcher", llm=OpenAI(...), tools=[...])
    await agent.run("...")           # each model request -> one event, agent_id="researcher"
    AgentWorkflow(agents=[triage, billing], root_agent="triage")   # each agent of a handoff: its own calls

The model requests themselves are metered by the provider patches (openai, anthropic...), exactly as
without LlamaIndex. This module only tells who made them, through LlamaIndex's public instrumentation:
a span handler added to the root dispatcher (`llama_index.core.instrumentation.get_dispatcher()`) notes
each open span's parent and, for an agent's spans, the agent's name: the spans of a workflow agent
(`FunctionAgent`, `ReActAgent`, `CodeActAgent`, any `BaseWorkflowAgent`: the span's instance is the agent)
and, inside an `AgentWorkflow`, the steps that receive an event naming the current agent (`AgentInput`,
`AgentSetup`: their `current_agent_name`). A framework lookup (`bearlumen.scopes.add_framework_lookup`)
walks from LlamaIndex's active span (`active_span_id`, the LLM's own span inside the step) up to the
nearest span with an agent. Metadata: `framework: "llamaindex"` and `llamaindex_run_id`, the workflow
run's id (`handler.run_id`), read from the instrumentation tags LlamaIndex sets for the run.

Limit: inside an `AgentWorkflow`, the step that runs a tool (`call_tool`) names no agent: a model call made
inside a tool there carries no agent (an agent run alone bills every call of its run to it).

Explicit scopes win. The handler never changes spans and never raises; `uninstall()` removes it from the
dispatcher. Costs nothing until LlamaIndex is imported (a post-import hook adds the handler then).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import sys
import threading
from types import MappingProxyType
from typing import Any, Dict, Optional

from bearlumen.scopes import Attribution, remove_framework_lookup

from ._framework_hooks import install_lookup
from ._span_tree import MAX_OPEN_SPANS, SpanTree

logger = logging.getLogger("bearlumen")

FRAMEWORK = "llamaindex"
_INSTRUMENTATION = "llama_index.core.instrumentation"  # get_dispatcher(), the root dispatcher
_SPAN_MODULE = "llama_index.core.instrumentation.span"  # active_span_id
_TAGS_MODULE = "llama_index_instrumentation.dispatcher"  # active_instrument_tags (the run id tag)
_AGENT_MODULE = "llama_index.core.agent.workflow"  # BaseWorkflowAgent
_RUN_ID_TAG = "llamaindex.run_id"

_spans = SpanTree(FRAMEWORK)  # the open spans, each with its agent when it is an agent's

_lock = threading.RLock()  # install/uninstall only; the handler and the lookup never take it
_enabled = False
_handler: Any = None
_dispatcher: Any = None
_hook_registered = False


def _name(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


def _agent_name(bound_args: Any, instance: Any) -> Optional[str]:
    """The agent a span belongs to: a step's event naming the current agent, or the agent itself."""
    arguments = getattr(bound_args, "arguments", None)
    if isinstance(arguments, dict):
        for value in arguments.values():
            name = _name(getattr(value, "current_agent_name", None))
            if name is not None:
                return name
    agents = sys.modules.get(_AGENT_MODULE)
    base = getattr(agents, "BaseWorkflowAgent", None) if agents is not None else None
    if base is not None and isinstance(instance, base):
        return _name(getattr(instance, "name", None))
    return None


def lookup() -> Optional[Attribution]:
    """The attribution of the LlamaIndex agent whose span is active here (its name, its run), or None."""
    if not _enabled:
        return None
    span_module = sys.modules.get(_SPAN_MODULE)
    if span_module is None:
        return None
    name = _spans.agent_above(span_module.active_span_id.get())
    if name is None:
        return None
    tags_module = sys.modules.get(_TAGS_MODULE)
    tags = tags_module.active_instrument_tags.get() if tags_module is not None else None
    run_id = tags.get(_RUN_ID_TAG) if isinstance(tags, dict) else None
    return _attribution(name, _name(run_id))


@functools.lru_cache(maxsize=1024)
def _attribution(name: str, run_id: Optional[str]) -> Attribution:
    # Cached: every call of one agent in one run reads the same (immutable) attribution.
    metadata: Dict[str, Any] = {"framework": FRAMEWORK}
    if run_id is not None:
        metadata["llamaindex_run_id"] = run_id
    return Attribution(agent_id=name, metadata=MappingProxyType(metadata))


def _handler_class(base: type) -> type:
    class BearLumenSpanHandler(base):  # type: ignore[misc]
        """Notes open spans' parents and agents (read by `lookup`); keeps no span objects, exports nothing."""

        @classmethod
        def class_name(cls) -> str:
            return "BearLumenSpanHandler"

        def new_span(
            self,
            id_: str,
            bound_args: inspect.BoundArguments,
            instance: Optional[Any] = None,
            parent_span_id: Optional[str] = None,
            tags: Optional[Dict[str, Any]] = None,
            **kwargs: Any,
        ) -> None:
            if _enabled:
                try:
                    _spans.note(id_, parent_span_id, _agent_name(bound_args, instance))
                except Exception:  # never raise into LlamaIndex (a strange span)
                    logger.debug("bearlumen: could not note a LlamaIndex span", exc_info=True)
            return None  # no span object: the base handler keeps nothing for us

        def prepare_to_exit_span(self, id_: str, *args: Any, **kwargs: Any) -> None:
            _spans.forget(id_)
            return None

        def prepare_to_drop_span(self, id_: str, *args: Any, **kwargs: Any) -> None:
            _spans.forget(id_)
            return None

    return BearLumenSpanHandler


def _on_import(instrumentation: Any) -> None:
    """Add the span handler once LlamaIndex's instrumentation is imported (inside the app's import: never
    raises)."""
    global _handler, _dispatcher
    with _lock:
        if not _enabled or _handler is not None:
            return
        try:
            base = importlib.import_module(f"{_INSTRUMENTATION}.span_handlers").BaseSpanHandler
            handler = _handler_class(base)()
            dispatcher = instrumentation.get_dispatcher()  # the root: every dispatcher propagates to it
            dispatcher.add_span_handler(handler)
            _handler, _dispatcher = handler, dispatcher
        except Exception:
            logger.debug("bearlumen: adding the LlamaIndex span handler failed", exc_info=True)


def install() -> None:
    """Bill model calls made inside LlamaIndex agents to them (now, or when LlamaIndex is imported)."""
    global _enabled, _hook_registered
    with _lock:
        _enabled = True
        _hook_registered = install_lookup(lookup, _INSTRUMENTATION, _on_import, _hook_registered)


def uninstall() -> None:
    """Stop attributing LlamaIndex calls and take the span handler off the dispatcher. Idempotent."""
    global _enabled, _handler, _dispatcher
    with _lock:
        _enabled = False
        remove_framework_lookup(lookup)
        if _dispatcher is not None:
            try:  # a new list, never a change of the one a span in progress may be iterating
                _dispatcher.span_handlers = [h for h in _dispatcher.span_handlers if h is not _handler]
            except Exception:
                logger.debug("bearlumen: removing the LlamaIndex span handler failed", exc_info=True)
        _handler = _dispatcher = None
        _spans.clear()


__all__ = ["FRAMEWORK", "MAX_OPEN_SPANS", "install", "lookup", "uninstall"]
