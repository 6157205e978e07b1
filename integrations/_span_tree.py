"""The open spans of a framework's tracing, and the agent each belongs to (integrations/openai_agents.py,
integrations/llamaindex.py): the framework's span handler notes each span as it opens and forgets it as it
ends; the framework lookup walks from the current span up to the nearest span with an agent.

Written from the framework's threads and read from the calling code's, without a lock (a garbage collector
may end a span): single dict operations are atomic, and a walk that meets a span just forgotten stops there.
"""

from __future__ import annotations

import logging
from typing import Dict, Optional, Tuple

logger = logging.getLogger("bearlumen")

#: Bound of the open spans held: spans that never end (a framework bug, a dropped run) cannot grow it further.
MAX_OPEN_SPANS = 10_000
_MAX_DEPTH = 64  # a parent chain longer than this is not followed (a cycle would otherwise never end)


class SpanTree:
    def __init__(self, framework: str) -> None:
        self._framework = framework
        # span id -> (parent span id, agent name when the span is an agent's)
        self.spans: Dict[str, Tuple[Optional[str], Optional[str]]] = {}

    def note(self, span_id: str, parent_id: Optional[str], agent: Optional[str]) -> None:
        """A span opened (called from the framework: never raises)."""
        try:
            if len(self.spans) >= MAX_OPEN_SPANS:
                self.spans.pop(next(iter(self.spans)), None)  # the oldest: a span that never ended
            self.spans[span_id] = (parent_id, agent)
        except Exception:  # a concurrent change of the dict, a strange span
            logger.debug("bearlumen: could not note a %s span", self._framework, exc_info=True)

    def forget(self, span_id: str) -> None:
        """A span ended (called from the framework: never raises)."""
        try:
            self.spans.pop(span_id, None)
        except Exception:
            logger.debug("bearlumen: could not forget a %s span", self._framework, exc_info=True)

    def agent_above(self, span_id: Optional[str]) -> Optional[str]:
        """The agent of the nearest noted span from `span_id` (itself included) up (None: no agent)."""
        depth = 0
        while span_id is not None and depth < _MAX_DEPTH:
            entry = self.spans.get(span_id)
            if entry is None:
                return None
            span_id, name = entry
            if name is not None:
                return name
            depth += 1
        return None

    def clear(self) -> None:
        self.spans.clear()
