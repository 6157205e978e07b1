"""CrewAI: each model request an agent of a crew makes is one event billed to the agent's role (real
CrewAI, its native OpenAI provider, through the real openai client to a local host answering in OpenAI's
documented shapes, see examples/_compatible_host.py). Runs in its own virtualenv (.ci/frameworks)."""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable, List, Tuple

import pytest

if importlib.util.find_spec("crewai") is not None:  # (never in the main suite: OTEL_SDK_DISABLED is global)
    # No telemetry or trace upload from CrewAI in tests; read when crewai is imported.
    os.environ.setdefault("CREWAI_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("OTEL_SDK_DISABLED", "true")
    os.environ.setdefault("CREWAI_TRACING_ENABLED", "false")

pytest.importorskip(
    "crewai",
    reason="CrewAI pins openai and pydantic versions the main virtualenv cannot hold with openai-agents: "
    "this file runs in its own virtualenv, .ci/frameworks",
)

from bearlumen.integrations import crewai as crewai_integration

import bearlumen
from bearlumen.metering.record import LLMCall
from examples._compatible_host import CompatibleHost, Turn
from tests.frameworks.test_frameworks_e2e import events
from tests.support.sinks import ListSink

#: A crew of two agents, one task each: the researcher answers, then the writer.
CREW = [
    Turn(text="Thought: done\nFinal Answer: Sunny in Paris", prompt_tokens=31, completion_tokens=7),
    Turn(text="Thought: done\nFinal Answer: Paris is sunny today", prompt_tokens=52, completion_tokens=6),
]


def crew(server: CompatibleHost) -> Any:
    from crewai import LLM, Agent, Crew, Task

    llm = LLM(model="openai/gpt-4o-mini", base_url=server.url, api_key="local")
    researcher = Agent(role="researcher", goal="Find the weather", backstory="A meteorologist", llm=llm)
    writer = Agent(role="writer", goal="Write it up", backstory="A journalist", llm=llm)
    tasks = [
        Task(description="Weather in Paris?", expected_output="a sentence", agent=researcher),
        Task(description="Write one line about it", expected_output="a line", agent=writer),
    ]
    return Crew(agents=[researcher, writer], tasks=tasks)


def who(calls: List[LLMCall]) -> List[Tuple[Any, ...]]:
    return [
        (c.attribution.agent_id, c.usage.input_tokens, c.usage.output_tokens)
        for c in calls
        if c.usage is not None
    ]


def test_each_agents_requests_are_billed_to_its_role(
    metering: Callable[[str], ListSink], host: Callable[..., CompatibleHost]
) -> None:
    sink = metering("crewai")
    server = host(CREW)
    team = crew(server)
    result = team.kickoff()

    assert str(result) == "Paris is sunny today"
    assert len(sink.calls) == 2 == len(server.requests)  # one event per model request
    assert who(sink.calls) == [("researcher", 31, 7), ("writer", 52, 6)]
    assert [c.attribution.metadata["crewai_crew_id"] for c in sink.calls] == [str(team.id)] * 2
    assert [c.attribution.metadata["crewai_task_id"] for c in sink.calls] == [str(t.id) for t in team.tasks]
    assert {c.attribution.metadata["framework"] for c in sink.calls} == {"crewai"}


def test_explicit_scope_wins_and_a_direct_llm_call_afterwards_has_no_agent(
    metering: Callable[[str], ListSink], host: Callable[..., CompatibleHost]
) -> None:
    from crewai import LLM

    sink = metering("crewai")
    server = host([*CREW, Turn(text="plain", prompt_tokens=9, completion_tokens=1)])
    with bearlumen.agent("planner"), bearlumen.workflow("trips"):
        team = crew(server)
        team.kickoff()
    LLM(model="openai/gpt-4o-mini", base_url=server.url, api_key="local").call("hi")  # no agent: none noted

    scopes = [(c.attribution.agent_id, c.attribution.workflow_id) for c in sink.calls]
    assert scopes == [("planner", "trips"), ("planner", "trips"), (None, None)]
    assert [c.attribution.metadata.get("crewai_crew_id") for c in sink.calls] == [str(team.id)] * 2 + [None]


def test_after_uninstall_calls_are_not_attributed(
    metering: Callable[[str], ListSink], host: Callable[..., CompatibleHost]
) -> None:
    from crewai.hooks.llm_hooks import get_before_llm_call_hooks

    sink = metering("crewai")
    crewai_integration.uninstall()
    crew(host(CREW)).kickoff()

    assert who(sink.calls) == [(None, 31, 7), (None, 52, 6)]
    assert crewai_integration._before_llm_call not in get_before_llm_call_hooks()


def test_framework_agents_reach_the_service_and_false_turns_it_off(
    reader: Callable[..., bearlumen.Client], host: Callable[..., CompatibleHost]
) -> None:
    client = reader(stream_usage_hosts=["127.0.0.1"])
    crew(host(CREW)).kickoff()
    recorded = [(e["agentId"], e["quantity"], e["metadata"]["framework"]) for e in events(client)]
    assert recorded == [("researcher", 38, "crewai"), ("writer", 58, "crewai")]
    bearlumen.uninstrument()

    client = reader(stream_usage_hosts=["127.0.0.1"], framework_agents=False)
    crew(host(CREW)).kickoff()
    recorded = [(e["agentId"], e["quantity"], "framework" in e["metadata"]) for e in events(client)]
    assert recorded == [(None, 38, False), (None, 58, False)]
