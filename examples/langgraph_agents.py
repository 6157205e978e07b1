"""A LangGraph multi-agent graph, metered per agent with no metering code in the agents.

`bearlumen.instrument()` registers a LangChain callback handler for every run. Inside a LangGraph graph
the node a model call runs in becomes its agent (for an agent built as a subgraph, the node of the outer
graph), and the run's config metadata names the workflow and the end user. Each model call is recorded
once, even though the openai/anthropic patches see it too. At the end the example prints the cost per
agent and per workflow, as the service computed it from the events it received.

    BEARLUMEN_API_KEY=... BEARLUMEN_BASE_URL=http://127.0.0.1:8787 python examples/langgraph_agents.py
    python examples/langgraph_agents.py        # no BEARLUMEN_BASE_URL: the embedded service on SQLite

With no provider key set it replays recorded real provider traffic (see _offline.py).
"""

from __future__ import annotations

import operator
import sys
from datetime import datetime, timezone
from typing import Any, Dict, List

from _offline import provider_keys, recorded
from _service import connect, report_since
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import BaseMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from typing_extensions import Annotated, TypedDict

import bearlumen


class Report(TypedDict):
    topic: str
    notes: Annotated[List[str], operator.add]


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a given location."""
    return f"Sunny and 21 degrees in {location}"


def research_agent() -> Any:
    """The researcher is a graph of its own (a subgraph): its calls are billed to `researcher`."""

    def think(state: Report) -> Dict[str, Any]:
        with recorded("openllmetry/langchain/test_langgraph_invoke.yaml"):
            reply = ChatOpenAI(model="gpt-4o", max_retries=0).invoke(
                [("system", "You are a researcher. Be brief."), ("user", state["topic"])]
            )
        return {"notes": [f"research: {reply.content}"]}

    graph = StateGraph(Report)
    graph.add_node("think", think)
    graph.add_edge(START, "think")
    graph.add_edge("think", END)
    return graph.compile()


def weather_agent(state: Report) -> Dict[str, Any]:
    """A tool-calling loop: the model asks for the tool, gets its answer, then replies (two calls)."""
    model = ChatOpenAI(model="gpt-4o-mini", max_retries=0).bind_tools([get_weather])
    messages: List[Any] = [("user", "What's the weather in Seattle and San Francisco today?")]
    with recorded("otel-python-contrib/openai/test_chat_completion_tool_calls_with_content.yaml"):
        reply: BaseMessage = model.invoke(messages)
        while getattr(reply, "tool_calls", None):
            messages.append(reply)
            messages += [get_weather.invoke(call) for call in reply.tool_calls]  # type: ignore[attr-defined]
            reply = model.invoke(messages)
    return {"notes": [f"weather: {reply.content}"]}


def writer(state: Report) -> Dict[str, Any]:
    with recorded("openllmetry/langchain/test_anthropic.yaml"):
        reply = ChatAnthropic(model="claude-2.1", max_retries=0).invoke(  # type: ignore[call-arg]
            [("system", "You are a helpful assistant"), ("user", "\n".join(state["notes"]))]
        )
    return {"notes": [f"draft: {reply.content}"]}


def reviewer(state: Report) -> Dict[str, Any]:
    with recorded("openllmetry/langchain/test_openai.yaml"):
        reply = ChatOpenAI(model="gpt-4o-mini", max_retries=0).invoke(f"Review: {state['notes'][-1]}")
    return {"notes": [f"review: {str(reply.content)[:60]}..."]}


def build_graph() -> Any:
    graph = StateGraph(Report)
    graph.add_node("researcher", research_agent())
    graph.add_node("weather_agent", weather_agent)
    graph.add_node("writer", writer)
    graph.add_node("reviewer", reviewer)
    graph.add_edge(START, "researcher")
    graph.add_edge("researcher", "weather_agent")
    graph.add_edge("weather_agent", "writer")
    graph.add_edge("writer", "reviewer")
    graph.add_edge("reviewer", END)
    return graph.compile()


def main() -> int:
    provider_keys()
    client = connect()
    started = datetime.now(timezone.utc)
    bearlumen.instrument(client)

    metadata = {"bearlumen_workflow_id": "weekly-report"}  # LangChain passes run metadata to every call
    result = build_graph().invoke({"topic": "What is LangGraph?", "notes": []}, config={"metadata": metadata})
    for note in result["notes"]:
        print(" ", note.replace("\n", " ")[:100])

    delivered = bearlumen.flush(timeout=30)
    stats = bearlumen.stats()
    print(f"\nmodel calls recorded: {stats.get('emitted')}, delivered: {stats.get('delivered')}")
    # Only this run's events (a shared service may hold other examples' events too).
    print(report_since(client, started))
    bearlumen.uninstrument()
    client.close()
    return 0 if delivered else 1


if __name__ == "__main__":
    sys.exit(main())
