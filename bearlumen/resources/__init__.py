"""The API resources hanging off ``Client`` / ``AsyncClient`` (sync and async twins side by side)."""

from bearlumen.resources.cost_attribution import AsyncCostAttribution, CostAttribution
from bearlumen.resources.end_users import AsyncEndUsers, EndUsers
from bearlumen.resources.subscriptions import AsyncSubscriptions, Subscriptions
from bearlumen.resources.usage import AsyncUsage, Usage

__all__ = [
    "AsyncCostAttribution",
    "AsyncEndUsers",
    "AsyncSubscriptions",
    "AsyncUsage",
    "CostAttribution",
    "EndUsers",
    "Subscriptions",
    "Usage",
]
