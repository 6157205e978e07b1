"""LangGraph graphs: several model calls, each recorded once and attributed to its node.

The graphs call the real ChatOpenAI / ChatAnthropic clients, which replay real recorded responses (one
cassette made of three vendored ones, see `combined`). Every test runs with the handler alone and with
the provider patches installed as well (conftest `mode`).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest
from bearlumen.integrations import langchain as lc
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.prebuilt import create_react_agent

import bearlumen
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall, TokenUsage
from tests.langchain.report_graph import (
    CASSETTES,
    GRAPH_METADATA,
    RESEARCHER_COST,
    REVIEWER_COST,
    WRITER_COST,
    parallel_graph,
    sequential_graph,
)
from tests.support.cassettes import replay
from tests.support.sinks import ListSink

PRICES = PriceBook()


def cost(call: LLMCall) -> Optional[Decimal]:
    return PRICES.price(call.provider, call.model, call.usage, call.timestamp).cost_usd


def by_agent(calls: List[LLMCall]) -> Dict[Optional[str], LLMCall]:
    agents = {call.attribution.agent_id: call for call in calls}
    assert len(agents) == len(calls), "two calls with one agent"
    return agents


def check_report(calls: List[LLMCall]) -> None:
    assert len(calls) == 3  # three model calls, three events, whatever layer saw them
    agents = by_agent(calls)
    assert set(agents) == {"researcher", "writer", "qa"}
    researcher, writer_call, qa = agents["researcher"], agents["writer"], agents["qa"]
    assert researcher.usage == TokenUsage(input_tokens=24, output_tokens=11)
    assert (researcher.model, cost(researcher)) == ("gpt-4o-2024-08-06", RESEARCHER_COST)
    assert writer_call.usage == TokenUsage(input_tokens=19, output_tokens=22)
    assert (writer_call.model, cost(writer_call)) == ("claude-2.1", WRITER_COST)
    assert qa.usage == TokenUsage(input_tokens=89, cache_read_tokens=1408, output_tokens=1037)
    assert (qa.model, cost(qa)) == ("gpt-4o-mini-2024-07-18", REVIEWER_COST)
    for call in calls:
        assert call.attribution.workflow_id == "report"
        assert call.attribution.end_user_id == "cus_42"
    # the node the call ran in, innermost, and the path through the subgraph
    assert researcher.extra["langgraph_node"] == "agent"
    assert researcher.extra["langgraph_namespace"] == "researcher/agent"
    assert writer_call.extra["langgraph_node"] == "writer"
    assert "langgraph_namespace" not in writer_call.extra
    assert qa.extra["langgraph_node"] == "reviewer"


@pytest.fixture
def report_cassette(combined: Callable[..., str]) -> str:
    return combined(*CASSETTES)


def test_graph_calls_attributed_per_node(
    mode: str, config: Dict[str, Any], sink: ListSink, report_cassette: str
) -> None:
    with replay(report_cassette):
        result = sequential_graph().invoke(
            {"topic": "What is LangGraph?", "notes": []}, config={**config, "metadata": GRAPH_METADATA}
        )

    assert len(result["notes"]) == 3
    check_report(sink.calls)
    costs = {call.attribution.agent_id: cost(call) for call in sink.calls}
    assert costs == {"researcher": RESEARCHER_COST, "writer": WRITER_COST, "qa": REVIEWER_COST}


def test_graph_stream(mode: str, config: Dict[str, Any], sink: ListSink, report_cassette: str) -> None:
    with replay(report_cassette):
        updates = list(
            sequential_graph().stream(
                {"topic": "What is LangGraph?", "notes": []}, config={**config, "metadata": GRAPH_METADATA}
            )
        )

    assert [next(iter(update)) for update in updates] == ["researcher", "writer", "reviewer"]
    check_report(sink.calls)


def test_async_graph(mode: str, config: Dict[str, Any], sink: ListSink, report_cassette: str) -> None:
    async def main() -> Any:
        return await sequential_graph().ainvoke(
            {"topic": "What is LangGraph?", "notes": []}, config={**config, "metadata": GRAPH_METADATA}
        )

    with replay(report_cassette):
        result = asyncio.run(main())

    assert len(result["notes"]) == 3
    check_report(sink.calls)


def test_parallel_nodes_keep_the_callers_scope(
    mode: str, config: Dict[str, Any], sink: ListSink, combined: Callable[..., str]
) -> None:
    cassette = combined(CASSETTES[0], CASSETTES[1])

    with replay(cassette), bearlumen.workflow("research-flow"), bearlumen.end_user("cus_7"):
        parallel_graph().invoke({"topic": "What is LangGraph?", "notes": []}, config=config)

    agents = by_agent(sink.calls)
    assert set(agents) == {"researcher", "writer"}
    assert cost(agents["researcher"]) == RESEARCHER_COST
    assert cost(agents["writer"]) == WRITER_COST
    for call in sink.calls:
        assert (call.attribution.workflow_id, call.attribution.end_user_id) == ("research-flow", "cus_7")


async def test_async_parallel_nodes(
    mode: str, config: Dict[str, Any], sink: ListSink, combined: Callable[..., str]
) -> None:
    with replay(combined(CASSETTES[0], CASSETTES[1])), bearlumen.workflow("async-flow"):
        await parallel_graph().ainvoke({"topic": "What is LangGraph?", "notes": []}, config=config)

    agents = by_agent(sink.calls)
    assert set(agents) == {"researcher", "writer"}
    assert {call.attribution.workflow_id for call in sink.calls} == {"async-flow"}
    assert cost(agents["researcher"]) == RESEARCHER_COST and cost(agents["writer"]) == WRITER_COST


@pytest.fixture
def node_as_agent_off() -> Iterator[None]:
    lc.configure(node_as_agent=False)
    try:
        yield
    finally:
        lc.configure(node_as_agent=True)


def test_node_as_agent_can_be_switched_off(
    mode: str, config: Dict[str, Any], sink: ListSink, report_cassette: str, node_as_agent_off: None
) -> None:
    with replay(report_cassette):
        sequential_graph().invoke({"topic": "What is LangGraph?", "notes": []}, config=config)

    assert sorted(str(call.attribution.agent_id) for call in sink.calls) == ["None", "None", "qa"]
    assert {call.extra["langgraph_node"] for call in sink.calls} == {"agent", "writer", "reviewer"}


def test_node_as_agent_per_handler(sink: ListSink, report_cassette: str) -> None:
    handler = lc.BearLumenCallbackHandler(node_as_agent=False)
    with replay(report_cassette):
        sequential_graph().invoke(
            {"topic": "What is LangGraph?", "notes": []}, config={"callbacks": [handler]}
        )

    assert sorted(str(call.attribution.agent_id) for call in sink.calls) == ["None", "None", "qa"]


def test_agent_scope_around_the_graph_wins_over_nodes(
    mode: str, config: Dict[str, Any], sink: ListSink, report_cassette: str
) -> None:
    with replay(report_cassette), bearlumen.agent("orchestrator"):
        sequential_graph().invoke({"topic": "What is LangGraph?", "notes": []}, config=config)

    # the reviewer's own inner scope ("qa") is the innermost scope, so it wins for that call
    assert sorted(str(call.attribution.agent_id) for call in sink.calls) == [
        "orchestrator",
        "orchestrator",
        "qa",
    ]


def test_agent_in_metadata_wins_over_nodes(
    mode: str, config: Dict[str, Any], sink: ListSink, report_cassette: str
) -> None:
    with replay(report_cassette):
        sequential_graph().invoke(
            {"topic": "What is LangGraph?", "notes": []},
            config={**config, "metadata": {"bearlumen_agent_id": "reporter"}},
        )

    assert sorted(str(call.attribution.agent_id) for call in sink.calls) == ["qa", "reporter", "reporter"]


@tool
def tavily_search_results_json(query: str) -> str:
    """A search engine optimized for comprehensive, accurate, and trusted results."""
    return '[{"title": "What is OpenLLMetry?", "content": "An open source observability project."}]'


# create_agent lives in the `langchain` package, which this project does not install.
@pytest.mark.filterwarnings("ignore:create_react_agent has been moved")
def test_react_agent_with_streamed_tool_calls(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    """LangGraph's prebuilt ReAct agent over the recorded run of an OpenAI tools agent (test_agents.yaml:
    its model calls are streamed, without usage; the search API's recorded calls are not replayed here,
    the tool answers locally). Two model calls, two events, no invented numbers."""
    model = ChatOpenAI(model="gpt-3.5-turbo", api_key="sk-test", max_retries=0, streaming=True)  # type: ignore[arg-type]
    agent = create_react_agent(model, [tavily_search_results_json])
    with replay("openllmetry/langchain/test_agents.yaml"), bearlumen.workflow("research"):
        result = agent.invoke({"messages": [("user", "What is OpenLLMetry?")]}, config=config)

    assert "OpenLLMetry" in str(result["messages"][-1].content)
    assert len(sink.calls) == 2
    for call in sink.calls:
        assert (call.provider, call.model, call.usage) == ("openai", "gpt-3.5-turbo-0125", None)
        assert call.streamed is True and call.usage_source == "unavailable"
        assert (call.attribution.agent_id, call.attribution.workflow_id) == ("agent", "research")
    assert len({call.extra["langchain_run_id"] for call in sink.calls}) == 2
