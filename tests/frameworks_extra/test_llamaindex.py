"""LlamaIndex agents: each model request of an agent run is one event billed to the agent (real LlamaIndex
workflow agents, its OpenAI LLM, through the real openai client to a local host answering in OpenAI's
documented shapes, see examples/_compatible_host.py). Runs in its own virtualenv (.ci/frameworks)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, List, Tuple

import pytest

pytest.importorskip(
    "llama_index.llms.openai",
    reason="LlamaIndex pins openai<3 (the main virtualenv has openai-agents, openai>=3): "
    "this file runs in its own virtualenv, .ci/frameworks",
)

from bearlumen.integrations import llamaindex

import bearlumen
from bearlumen.metering.record import LLMCall
from examples._compatible_host import CompatibleHost, Turn
from tests.frameworks.test_frameworks_e2e import events
from tests.support.sinks import ListSink

#: A `researcher` run: a call of its `lookup` tool, then the answer.
WEATHER = [
    Turn(tool="lookup", arguments='{"city": "Paris"}', prompt_tokens=31, completion_tokens=7),
    Turn(text="Sunny in Paris", prompt_tokens=52, completion_tokens=4),
]
#: An AgentWorkflow run: `triage` hands off to `billing` (LlamaIndex's `handoff` tool), which answers.
HANDOFF = [
    Turn(tool="handoff", arguments='{"to_agent": "billing", "reason": "invoice"}', prompt_tokens=30),
    Turn(text="Your invoice is paid", prompt_tokens=50, completion_tokens=4),
]


def lookup(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def function_agent(server: CompatibleHost, name: str = "researcher", **options: Any) -> Any:
    from llama_index.core.agent.workflow import FunctionAgent
    from llama_index.llms.openai import OpenAI

    llm = OpenAI(model="gpt-4o-mini", api_base=server.url, api_key="local")
    return FunctionAgent(name=name, description=f"the {name}", llm=llm, system_prompt="Be brief.", **options)


def run(workflow: Any, message: str) -> Tuple[str, str]:
    """Run an agent or agent workflow to its end: (its answer, its run id)."""

    async def go() -> Tuple[str, str]:
        handler = workflow.run(user_msg=message)
        result = await handler
        return str(result), handler.run_id

    return asyncio.run(go())


def who(calls: List[LLMCall]) -> List[Tuple[Any, ...]]:
    return [
        (c.attribution.agent_id, c.usage.input_tokens, c.usage.output_tokens)
        for c in calls
        if c.usage is not None
    ]


def run_ids(calls: List[LLMCall]) -> List[Any]:
    return [c.attribution.metadata.get("llamaindex_run_id") for c in calls]


def test_each_request_of_a_run_is_billed_to_the_agent(
    metering: Callable[[str], ListSink], host: Callable[..., CompatibleHost]
) -> None:
    sink = metering("llamaindex")
    server = host(WEATHER)
    answer, run_id = run(function_agent(server, tools=[lookup]), "What is the weather in Paris?")

    assert answer == "Sunny in Paris"
    assert len(sink.calls) == 2 == len(server.requests)  # one event per model request (tool call + answer)
    assert who(sink.calls) == [("researcher", 31, 7), ("researcher", 52, 4)]
    assert run_ids(sink.calls) == [run_id, run_id]
    assert {c.attribution.metadata["framework"] for c in sink.calls} == {"llamaindex"}


def test_each_agent_of_a_handoff_gets_its_own_calls(
    metering: Callable[[str], ListSink], host: Callable[..., CompatibleHost]
) -> None:
    from llama_index.core.agent.workflow import AgentWorkflow

    sink = metering("llamaindex")
    server = host(HANDOFF)
    triage = function_agent(server, "triage", can_handoff_to=["billing"])
    workflow = AgentWorkflow(agents=[triage, function_agent(server, "billing")], root_agent="triage")
    answer, run_id = run(workflow, "Is my invoice paid?")

    assert answer == "Your invoice is paid"
    assert who(sink.calls) == [("triage", 30, 5), ("billing", 50, 4)]
    assert run_ids(sink.calls) == [run_id, run_id]


def test_concurrent_runs_keep_their_own_agent_and_run_id(
    metering: Callable[[str], ListSink], host: Callable[..., CompatibleHost]
) -> None:
    sink = metering("llamaindex")
    first = function_agent(host([Turn(text="one", prompt_tokens=11, completion_tokens=1)]), "first")
    second = function_agent(host([Turn(text="two", prompt_tokens=22, completion_tokens=2)]), "second")

    async def both() -> List[str]:
        handlers = [first.run(user_msg="1"), second.run(user_msg="2")]
        await asyncio.gather(*handlers)
        return [handler.run_id for handler in handlers]

    first_run, second_run = asyncio.run(both())

    by_agent = {c.attribution.agent_id: c for c in sink.calls}
    assert sorted(who(sink.calls)) == [("first", 11, 1), ("second", 22, 2)]
    assert run_ids([by_agent["first"], by_agent["second"]]) == [first_run, second_run]
    assert first_run != second_run


def test_explicit_scope_wins_and_keeps_the_run_id(
    metering: Callable[[str], ListSink], host: Callable[..., CompatibleHost]
) -> None:
    sink = metering("llamaindex")
    server = host(WEATHER)
    with bearlumen.agent("planner"), bearlumen.workflow("trips"):
        _, run_id = run(function_agent(server, tools=[lookup]), "What is the weather in Paris?")

    scopes = [(c.attribution.agent_id, c.attribution.workflow_id) for c in sink.calls]
    assert scopes == [("planner", "trips")] * 2
    assert run_ids(sink.calls) == [run_id, run_id]


def test_calls_outside_an_agent_and_after_uninstall_are_not_attributed(
    metering: Callable[[str], ListSink], host: Callable[..., CompatibleHost]
) -> None:
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.llms import ChatMessage

    sink = metering("llamaindex")
    server = host([Turn(text="plain", prompt_tokens=9, completion_tokens=1), *WEATHER])
    agent = function_agent(server, tools=[lookup])
    agent.llm.chat([ChatMessage(role="user", content="hi")])  # the LLM alone: a LlamaIndex span, no agent
    llamaindex.uninstall()
    run(agent, "What is the weather in Paris?")

    assert who(sink.calls) == [(None, 9, 1), (None, 31, 7), (None, 52, 4)]
    assert ["framework" in c.attribution.metadata for c in sink.calls] == [False] * 3
    assert [type(h).__name__ for h in get_dispatcher().span_handlers if "BearLumen" in type(h).__name__] == []
    assert llamaindex._spans.spans == {}


def test_framework_agents_reach_the_service_and_false_turns_it_off(
    reader: Callable[..., bearlumen.Client], host: Callable[..., CompatibleHost]
) -> None:
    client = reader(stream_usage_hosts=["127.0.0.1"])
    run(function_agent(host(WEATHER), tools=[lookup]), "What is the weather in Paris?")
    recorded = [(e["agentId"], e["quantity"], e["metadata"]["framework"]) for e in events(client)]
    assert recorded == [("researcher", 38, "llamaindex"), ("researcher", 56, "llamaindex")]
    bearlumen.uninstrument()

    client = reader(stream_usage_hosts=["127.0.0.1"], framework_agents=False)
    run(function_agent(host(WEATHER), tools=[lookup]), "What is the weather in Paris?")
    recorded = [(e["agentId"], e["quantity"], "framework" in e["metadata"]) for e in events(client)]
    assert recorded == [(None, 38, False), (None, 56, False)]


def test_a_model_call_inside_a_tool_is_the_agents_alone_but_no_ones_in_an_agent_workflow(
    metering: Callable[[str], ListSink], host: Callable[..., CompatibleHost]
) -> None:
    """The documented limit: in an AgentWorkflow, the step that runs a tool names no agent."""
    from llama_index.core.agent.workflow import AgentWorkflow
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai import OpenAI

    sink = metering("llamaindex")
    inner = host([Turn(text="sunny", prompt_tokens=7, completion_tokens=1)] * 2)

    def ask_model(city: str) -> str:
        """Ask a model about a city."""
        llm = OpenAI(model="gpt-4o-mini", api_base=inner.url, api_key="local")
        return str(llm.chat([ChatMessage(role="user", content=city)]).message.content)

    script = [Turn(tool="ask_model", arguments='{"city": "Paris"}', prompt_tokens=31, completion_tokens=7)]
    alone = function_agent(
        host([*script, Turn(text="done", prompt_tokens=52, completion_tokens=4)]), tools=[ask_model]
    )
    run(alone, "Paris?")
    in_workflow = function_agent(
        host([*script, Turn(text="done", prompt_tokens=52, completion_tokens=4)]), tools=[ask_model]
    )
    run(AgentWorkflow(agents=[in_workflow], root_agent="researcher"), "Paris?")

    assert who(sink.calls) == [
        ("researcher", 31, 7),
        ("researcher", 7, 1),  # the tool's call, in the agent's own run
        ("researcher", 52, 4),
        ("researcher", 31, 7),
        (None, 7, 1),  # the tool's call, in the AgentWorkflow's call_tool step
        ("researcher", 52, 4),
    ]
