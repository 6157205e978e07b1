"""pydantic-ai: a model call made inside an agent run is billed to that agent (when no scope says otherwise).

    agent = Agent("openai:gpt-4o-mini", name="researcher")
    agent.run_sync("...")          # each model request -> one event, agent_id="researcher"

The model requests themselves are metered by the provider patches (openai, anthropic, google-genai...),
exactly as without pydantic-ai. This module only adds a framework lookup to the scopes
(`bearlumen.scopes.add_framework_lookup`): pydantic-ai makes the run's `RunContext` current around each
model request (its documented `get_current_run_context()`), and the lookup reads from it

- `agent_id`: the agent's `name` (pydantic-ai infers it from the variable the agent is bound to when
  none is given),
- metadata `framework: "pydantic-ai"` and `pydantic_ai_run_id` (the run's id: every request of one run
  carries the same), plus `pydantic_ai_conversation_id` when pydantic-ai has one.

Explicit scopes win (`with bearlumen.agent("x"): agent.run_sync(...)` bills "x"). A run started inside
another run's tool is its own run: its requests carry the inner agent. Nothing of pydantic-ai is patched
or changed; the lookup reads `sys.modules` only, so it costs nothing until pydantic-ai is imported.
"""

from __future__ import annotations

import functools
import logging
import sys
from types import MappingProxyType
from typing import Any, Dict, Optional

from bearlumen.scopes import Attribution, add_framework_lookup, remove_framework_lookup

logger = logging.getLogger("bearlumen")

FRAMEWORK = "pydantic-ai"
_MODULE = "pydantic_ai._run_context"  # home of get_current_run_context()


def lookup() -> Optional[Attribution]:
    """The attribution of the pydantic-ai run in progress here, or None outside any run."""
    module = sys.modules.get(_MODULE)
    if module is None:
        return None
    current = getattr(module, "get_current_run_context", None)
    context = current() if current is not None else None
    if context is None:
        return None
    name = getattr(getattr(context, "agent", None), "name", None)
    return _attribution(
        name if isinstance(name, str) and name else None,
        _text(getattr(context, "run_id", None)),
        _text(getattr(context, "conversation_id", None)),
    )


def _text(value: Any) -> Optional[str]:
    return value if isinstance(value, str) and value else None


@functools.lru_cache(maxsize=1024)
def _attribution(name: Optional[str], run_id: Optional[str], conversation_id: Optional[str]) -> Attribution:
    # Cached: every request of one run reads the same (immutable) attribution.
    metadata: Dict[str, Any] = {"framework": FRAMEWORK}
    if run_id is not None:
        metadata["pydantic_ai_run_id"] = run_id
    if conversation_id is not None:
        metadata["pydantic_ai_conversation_id"] = conversation_id
    return Attribution(agent_id=name, metadata=MappingProxyType(metadata))


def install() -> None:
    """Bill model calls made inside pydantic-ai runs to their agent. Idempotent."""
    add_framework_lookup(lookup)


def uninstall() -> None:
    """Stop reading pydantic-ai runs. Idempotent."""
    remove_framework_lookup(lookup)


__all__ = ["FRAMEWORK", "install", "lookup", "uninstall"]
