"""End to end: `bearlumen.instrument()` -> a LangGraph graph and LangChain calls on recorded real traffic
-> delivery -> the real service, over HTTP on SQLite and on PostgreSQL (tests/conftest.py:
`sqlite_service`, `postgres_service`: `.base_url`, `.create_key(tenant)`) and embedded (a database URL as
`base_url`).

`instrument()` installs the openai and anthropic patches *and* the LangChain handler, so every model call
below is seen by two layers. The exporter's own count (`emitted`) proves each was emitted once, before the
service's idempotency could hide a duplicate; the service's cost by agent proves the numbers billed.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest
from langchain_openai import ChatOpenAI

import bearlumen
from tests.langchain.report_graph import (
    CASSETTES,
    GRAPH_METADATA,
    RESEARCHER_COST,
    REVIEWER_COST,
    WRITER_COST,
    sequential_graph,
)
from tests.support.cassettes import replay

STREAM = "openinference/langchain/test_records_token_counts_for_streaming_openai_llm.yaml"  # 18 / 15
STREAM_COST = Decimal("0.0000315")  # 18 x $0.50 + 15 x $1.50 per 1M (gpt-3.5-turbo-0125)


@pytest.fixture
def reader(deployment: Tuple[str, str]) -> Iterator[bearlumen.Client]:
    base_url, key = deployment
    bearlumen.instrument(api_key=key, base_url=base_url, spool=False)  # openai, anthropic and langchain
    client = bearlumen.Client(api_key=key, base_url=base_url)
    try:
        yield client
    finally:
        bearlumen.uninstrument()
        client.close()


def window() -> Tuple[str, str]:
    now = datetime.now(timezone.utc)
    return (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()


def test_graph_and_stream_costs_per_agent(reader: bearlumen.Client, combined: Callable[..., str]) -> None:
    end_user = reader.end_users.create(external_id="cus_42")["endUser"]["id"]  # events name existing users
    metadata = {**GRAPH_METADATA, "bearlumen_end_user_id": end_user}
    with replay(combined(*CASSETTES)):
        sequential_graph().invoke({"topic": "What is LangGraph?", "notes": []}, config={"metadata": metadata})
    with replay(STREAM), bearlumen.workflow("chat"), bearlumen.agent("streamer"):
        for _chunk in ChatOpenAI(model="gpt-3.5-turbo", api_key="sk-test", max_retries=0).stream("Hi"):  # type: ignore[arg-type]
            pass

    assert bearlumen.flush(timeout=60) is True
    stats = bearlumen.stats()
    assert stats["emitted"] == 4 and stats["delivered"] == 4 and stats["duplicates"] == 0

    events: List[Dict[str, Any]] = reader.usage.query(limit=100)["events"]
    assert len(events) == 4
    by_agent = {event["agentId"]: event for event in events}
    assert set(by_agent) == {"researcher", "writer", "qa", "streamer"}
    for agent in ("researcher", "writer", "qa"):
        assert by_agent[agent]["workflowId"] == "report"
        assert by_agent[agent]["endUserId"] == end_user
    assert by_agent["streamer"]["workflowId"] == "chat"
    assert by_agent["qa"]["quantity"] == 2534
    assert by_agent["qa"]["metadata"]["cache_read_tokens"] == 1408
    assert by_agent["researcher"]["metadata"]["langgraph_namespace"] == "researcher/agent"
    assert by_agent["streamer"]["metadata"]["streamed"] is True
    for event in events:
        assert event["metadata"]["framework"] == "langchain"
        assert event["metadata"]["response_id"]  # the provider's id: the idempotency key derives from it

    start, end = window()
    breakdown = reader.cost_attribution.by_agent(start_date=start, end_date=end)
    costs = {
        item["attributionValue"]: (Decimal(item["totalCost"]), item["eventCount"])
        for item in breakdown["items"]
    }
    assert costs == {
        "researcher": (RESEARCHER_COST, 1),
        "writer": (WRITER_COST, 1),
        "qa": (REVIEWER_COST, 1),
        "streamer": (STREAM_COST, 1),
    }
    assert Decimal(breakdown["totalCost"]) == RESEARCHER_COST + WRITER_COST + REVIEWER_COST + STREAM_COST
    workflows = reader.cost_attribution.by_workflow(start_date=start, end_date=end)
    assert {item["attributionValue"]: Decimal(item["totalCost"]) for item in workflows["items"]} == {
        "report": RESEARCHER_COST + WRITER_COST + REVIEWER_COST,
        "chat": STREAM_COST,
    }
