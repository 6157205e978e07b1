"""What the agent-framework integrations share (openai_agents.py, llamaindex.py, crewai.py): adding their
framework lookup, and attaching their listener to the framework when, and only when, it is imported."""

from __future__ import annotations

import sys
from typing import Any, Callable

from bearlumen.scopes import FrameworkLookup, add_framework_lookup


def install_lookup(
    lookup: FrameworkLookup, module: str, on_import: Callable[[Any], None], hook_registered: bool
) -> bool:
    """Add `lookup` and run `on_import(module)` once `module` is imported (at once when it already is).

    The post-import hook is registered once (`hook_registered`: whether an earlier install did; wrapt
    offers no way to remove one); a later install calls `on_import` itself. Returns True (registered).
    """
    import wrapt

    add_framework_lookup(lookup)
    if not hook_registered:  # wrapt runs the hook at once when the module is already imported
        wrapt.register_post_import_hook(on_import, module)
    elif module in sys.modules:
        on_import(sys.modules[module])
    return True
