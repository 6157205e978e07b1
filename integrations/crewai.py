"""CrewAI: a model call an agent of a crew makes is billed to that agent's role.

    researcher = Agent(role="researcher", goal=..., backstory=..., llm=LLM(...))
    Crew(agents=[researcher], tasks=[...]).kickoff()  # each model request: one event, agent "researcher"

The model requests themselves are metered by the provider patches (CrewAI's native OpenAI provider goes
through the patched openai client), exactly as without CrewAI. This module only tells who made them,
through CrewAI's public LLM call hooks: a `before_llm_call` hook (`register_before_llm_call_hook`, run in
the calling code's context right before each model call) notes the calling agent's role, crew and task in
a context variable, and a framework lookup (`bearlumen.scopes.add_framework_lookup`) reads it while
CrewAI dispatches that model call (`model_call_hooks_already_dispatched()`), and never outside it: a note
left by a call that failed cannot reach a later call. Metadata: `framework: "crewai"`, `crewai_crew_id`
(the crew's id: every kickoff of one crew object carries the same) and `crewai_task_id`.

Not CrewAI's event bus: its handlers run on a thread pool, after the fact, not in the calling context.
Explicit scopes win. The hook returns None (never blocks or changes a call) and never raises;
`uninstall()` unregisters it.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import sys
import threading
from types import MappingProxyType
from typing import Any, Dict, Optional

from bearlumen.scopes import Attribution, remove_framework_lookup

from ._framework_hooks import install_lookup

logger = logging.getLogger("bearlumen")

FRAMEWORK = "crewai"
_HOOKS = "crewai.hooks.llm_hooks"

_current: contextvars.ContextVar[Optional[Attribution]] = contextvars.ContextVar(
    "bearlumen_crewai_agent", default=None
)
_lock = threading.RLock()  # install/uninstall only; the hook and the lookup never take it
_enabled = False
_registered: Any = None  # the hooks module our hook is registered with
_hook_registered = False


def _text(value: Any) -> Optional[str]:
    text = str(value) if value is not None else None
    return text if text else None


def _before_llm_call(context: Any) -> None:
    """CrewAI's before_llm_call hook: note who is calling (returns None: the call goes on unchanged)."""
    try:
        if not _enabled:
            return None
        role = getattr(getattr(context, "agent", None), "role", None)
        if not isinstance(role, str) or not role:
            _current.set(None)  # a direct LLM call: no agent, and no older note either
            return None
        crew_id = _text(getattr(getattr(context, "crew", None), "id", None))
        task_id = _text(getattr(getattr(context, "task", None), "id", None))
        _current.set(_attribution(role, crew_id, task_id))
    except Exception:  # never raise into CrewAI
        logger.debug("bearlumen: could not note a CrewAI agent", exc_info=True)
    return None


def lookup() -> Optional[Attribution]:
    """The attribution of the CrewAI agent whose model call is being dispatched here, or None."""
    if not _enabled:
        return None
    found = _current.get()
    if found is None:
        return None
    hooks = sys.modules.get(_HOOKS)
    if hooks is None or not hooks.model_call_hooks_already_dispatched():
        return None  # not inside a model call CrewAI dispatches: the note is an older call's
    return found


@functools.lru_cache(maxsize=1024)
def _attribution(role: str, crew_id: Optional[str], task_id: Optional[str]) -> Attribution:
    # Cached: every call of one agent on one task reads the same (immutable) attribution.
    metadata: Dict[str, Any] = {"framework": FRAMEWORK}
    if crew_id is not None:
        metadata["crewai_crew_id"] = crew_id
    if task_id is not None:
        metadata["crewai_task_id"] = task_id
    return Attribution(agent_id=role, metadata=MappingProxyType(metadata))


def _on_import(_crewai: Any) -> None:
    """Register the hook once CrewAI is imported (inside the app's import: never raises)."""
    global _registered
    with _lock:
        if not _enabled or _registered is not None:
            return
        try:
            import importlib

            hooks = importlib.import_module(_HOOKS)
            hooks.register_before_llm_call_hook(_before_llm_call)
            _registered = hooks
        except Exception:
            logger.debug("bearlumen: registering the CrewAI LLM call hook failed", exc_info=True)


def install() -> None:
    """Bill model calls made by CrewAI agents to their role (now, or when `crewai` is imported)."""
    global _enabled, _hook_registered
    with _lock:
        _enabled = True
        _hook_registered = install_lookup(lookup, "crewai", _on_import, _hook_registered)


def uninstall() -> None:
    """Stop attributing CrewAI calls and unregister the hook. Idempotent."""
    global _enabled, _registered
    with _lock:
        _enabled = False
        remove_framework_lookup(lookup)
        if _registered is not None:
            try:
                _registered.unregister_before_llm_call_hook(_before_llm_call)
            except Exception:
                logger.debug("bearlumen: unregistering the CrewAI LLM call hook failed", exc_info=True)
        _registered = None


__all__ = ["FRAMEWORK", "install", "lookup", "uninstall"]
