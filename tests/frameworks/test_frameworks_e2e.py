"""End to end: `bearlumen.instrument()` -> pydantic-ai and Agents SDK runs -> the real service (HTTP,
SQLite): the service's events carry the frameworks' agent names, and `framework_agents=False` turns it off.
Model traffic: a local host answering in OpenAI's documented shapes (see conftest.py)."""

from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, List, cast

import pytest

import bearlumen
from examples._compatible_host import CompatibleHost
from tests.support.agent_frameworks import HANDOFF, WEATHER, researcher, triage
from tests.support.service import ServiceHandle


@pytest.fixture
def reader(sqlite_service: ServiceHandle) -> Iterator[Callable[..., bearlumen.Client]]:
    """``reader(**instrument_options)``: instrument() into a fresh tenant; the client reading it back."""
    clients: List[bearlumen.Client] = []

    def start(**options: Any) -> bearlumen.Client:
        key = sqlite_service.create_key(f"t_frameworks_{len(clients)}_{id(clients)}")
        bearlumen.instrument(api_key=key, base_url=sqlite_service.base_url, spool=False, **options)
        clients.append(bearlumen.Client(api_key=key, base_url=sqlite_service.base_url))
        return clients[-1]

    try:
        yield start
    finally:
        bearlumen.uninstrument()
        for client in clients:
            client.close()


def events(client: bearlumen.Client) -> List[Dict[str, Any]]:
    assert bearlumen.flush(timeout=60) is True
    found = cast(List[Dict[str, Any]], client.usage.query(limit=100)["events"])
    return sorted(found, key=lambda event: event["metadata"]["response_id"])


def run_both(server: CompatibleHost) -> None:
    from agents import Runner

    researcher(server).run_sync("What is the weather in Paris?")
    Runner.run_sync(triage(server), "Is my invoice paid?")


def test_framework_agents_reach_the_service(
    reader: Callable[..., bearlumen.Client], host: Callable[..., CompatibleHost]
) -> None:
    client = reader()
    run_both(host([*WEATHER, *HANDOFF]))

    recorded = [(e["agentId"], e["quantity"], e["metadata"]["framework"]) for e in events(client)]
    assert recorded == [  # response ids <host prefix>-1..4: the order of the script
        ("researcher", 38, "pydantic-ai"),
        ("researcher", 56, "pydantic-ai"),
        ("triage", 37, "openai-agents"),
        ("billing", 54, "openai-agents"),
    ]


def test_framework_agents_false_turns_it_off(
    reader: Callable[..., bearlumen.Client], host: Callable[..., CompatibleHost]
) -> None:
    client = reader(framework_agents=False)
    run_both(host([*WEATHER, *HANDOFF]))

    recorded = [(e["agentId"], e["quantity"], "framework" in e["metadata"]) for e in events(client)]
    assert recorded == [(None, 38, False), (None, 56, False), (None, 37, False), (None, 54, False)]
