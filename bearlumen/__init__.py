"""Bear Lumen: meter what your AI product spends on LLM calls, per customer, agent and workflow.

    import bearlumen
    client = bearlumen.Client(api_key="...")
    bearlumen.instrument(client)
    with bearlumen.workflow("onboarding"), bearlumen.agent("support-bot"):
        ...  # every openai / anthropic / LangChain call in here is metered

Only the exceptions and the typed dicts load with `import bearlumen`; everything else (httpx, wrapt, the
integrations) loads the first time it is touched, so importing the package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from bearlumen._exceptions import (
    AuthenticationError,
    BearLumenError,
    DuplicateCustomerError,
    InvalidEmailError,
    InvalidRequestError,
    NetworkError,
    NotFoundError,
    RateLimitError,
)
from bearlumen._version import __version__
from bearlumen.types import (
    CostBreakdownResponse,
    EndUser,
    Subscription,
    UsageRecordInput,
)

if TYPE_CHECKING:
    from bearlumen._client import AsyncClient, Client
    from bearlumen._instrument import flush, instrument, stats, uninstrument
    from bearlumen._track import track
    from bearlumen.scopes import (
        agent,
        attributes,
        current_attribution,
        end_user,
        propagate,
        subscription,
        workflow,
    )

# public name -> module that defines it; resolved on first access (PEP 562).
_LAZY = {
    "Client": "bearlumen._client",
    "AsyncClient": "bearlumen._client",
    "instrument": "bearlumen._instrument",
    "uninstrument": "bearlumen._instrument",
    "flush": "bearlumen._instrument",
    "stats": "bearlumen._instrument",
    "track": "bearlumen._track",
    "workflow": "bearlumen.scopes",
    "agent": "bearlumen.scopes",
    "end_user": "bearlumen.scopes",
    "subscription": "bearlumen.scopes",
    "attributes": "bearlumen.scopes",
    "current_attribution": "bearlumen.scopes",
    "propagate": "bearlumen.scopes",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bearlumen' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AsyncClient",
    "AuthenticationError",
    "BearLumenError",
    "Client",
    "CostBreakdownResponse",
    "DuplicateCustomerError",
    "EndUser",
    "InvalidEmailError",
    "InvalidRequestError",
    "NetworkError",
    "NotFoundError",
    "RateLimitError",
    "Subscription",
    "UsageRecordInput",
    "__version__",
    "agent",
    "attributes",
    "current_attribution",
    "end_user",
    "flush",
    "instrument",
    "propagate",
    "stats",
    "subscription",
    "track",
    "uninstrument",
    "workflow",
]
