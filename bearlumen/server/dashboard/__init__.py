"""The web dashboard served by ``bearlumen serve`` at ``/dashboard``: spend over time and by agent,
workflow, model, end user and subscription for the signed-in tenant, from the same exact totals as the API.
Server-rendered (Jinja2, inline SVG charts), no JavaScript, nothing loaded from another origin."""

from bearlumen.server.dashboard.routes import router

__all__ = ["router"]
