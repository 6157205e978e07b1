"""The LangGraph graph the LangChain tests and the end-to-end test run: three agents, two providers.

`researcher` is a subgraph whose inner node `agent` calls OpenAI gpt-4o; `writer` calls Anthropic
claude-2.1; `reviewer` calls OpenAI gpt-4o-mini inside an explicit `bearlumen.agent("qa")` scope. The
real responses come from three vendored cassettes, replayed as one (`CASSETTES`, in call order).
"""

from __future__ import annotations

import operator
from decimal import Decimal
from typing import Any, Dict, List

from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph
from typing_extensions import Annotated, TypedDict

import bearlumen

CASSETTES = (
    "openllmetry/langchain/test_langgraph_invoke.yaml",  # OpenAI gpt-4o: prompt=24 completion=11
    "openllmetry/langchain/test_anthropic.yaml",  # Anthropic claude-2.1: prompt=19 completion=22
    "openllmetry/langchain/test_openai.yaml",  # OpenAI gpt-4o-mini: prompt=1497 (1408 cached) completion=1037
)
RESEARCHER_COST = Decimal("0.00017")  # 24 x $2.50 + 11 x $10 per 1M (gpt-4o-2024-08-06)
WRITER_COST = Decimal("0.00068")  # 19 x $8 + 22 x $24 per 1M (claude-2.1)
REVIEWER_COST = Decimal("0.00074115")  # 89 x $0.15 + 1408 x $0.075 + 1037 x $0.60 per 1M (gpt-4o-mini)


class State(TypedDict):
    topic: str
    notes: Annotated[List[str], operator.add]


def researcher_subgraph() -> Any:
    """An agent as a subgraph: its model call runs in the inner node `agent`."""

    def agent(state: State) -> Dict[str, Any]:
        model = ChatOpenAI(model="gpt-4o", api_key="sk-test", max_retries=0)  # type: ignore[arg-type]
        reply = model.invoke([("system", "You are a researcher"), ("user", state["topic"])])
        return {"notes": [str(reply.content)]}

    inner = StateGraph(State)
    inner.add_node("agent", agent)
    inner.add_edge(START, "agent")
    inner.add_edge("agent", END)
    return inner.compile()


def writer(state: State) -> Dict[str, Any]:
    model = ChatAnthropic(model="claude-2.1", api_key="sk-ant-test", max_retries=0)  # type: ignore[call-arg,arg-type]
    reply = model.invoke([("system", "You are a helpful assistant"), ("user", state["topic"])])
    return {"notes": [str(reply.content)]}


def reviewer(state: State) -> Dict[str, Any]:
    with bearlumen.agent("qa"):  # an explicit scope inside a node wins over the node name
        model = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test", max_retries=0)  # type: ignore[arg-type]
        reply = model.invoke(state["topic"])
    return {"notes": [str(reply.content)]}


def sequential_graph() -> Any:
    graph = StateGraph(State)
    graph.add_node("researcher", researcher_subgraph())
    graph.add_node("writer", writer)
    graph.add_node("reviewer", reviewer)
    graph.add_edge(START, "researcher")
    graph.add_edge("researcher", "writer")
    graph.add_edge("writer", "reviewer")
    graph.add_edge("reviewer", END)
    return graph.compile()


def parallel_graph() -> Any:
    """researcher and writer in the same step: LangGraph runs them on its own worker threads."""
    graph = StateGraph(State)
    graph.add_node("researcher", researcher_subgraph())
    graph.add_node("writer", writer)
    graph.add_edge(START, "researcher")
    graph.add_edge(START, "writer")
    graph.add_edge("researcher", END)
    graph.add_edge("writer", END)
    return graph.compile()


GRAPH_METADATA = {"bearlumen_workflow_id": "report", "bearlumen_end_user_id": "cus_42"}
