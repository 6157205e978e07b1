"""pydantic-ai: each model request of an agent run is one event billed to the agent (real pydantic-ai, its
OpenAI chat model, through the real openai client to a local host answering in OpenAI's documented shapes)."""

from __future__ import annotations

import asyncio
from typing import Callable, List

import bearlumen
from bearlumen.metering.record import LLMCall
from examples._compatible_host import CompatibleHost, Turn
from tests.support.agent_frameworks import WEATHER, researcher
from tests.support.sinks import ListSink


def tokens(calls: List[LLMCall]) -> List[tuple[int, int]]:
    return [(c.usage.input_tokens, c.usage.output_tokens) for c in calls if c.usage is not None]


def test_each_request_of_a_run_is_billed_to_the_agent(
    metering: Callable[..., ListSink], host: Callable[..., CompatibleHost]
) -> None:
    sink = metering()
    server = host(WEATHER)
    result = researcher(server).run_sync("What is the weather in Paris?")

    assert result.output == "Sunny in Paris"
    assert len(sink.calls) == 2 == len(server.requests)  # one event per model request (tool call + answer)
    assert tokens(sink.calls) == [(31, 7), (52, 4)]
    assert [c.attribution.agent_id for c in sink.calls] == ["researcher", "researcher"]
    run_ids = {c.attribution.metadata["pydantic_ai_run_id"] for c in sink.calls}
    assert run_ids == {result.run_id}
    assert {c.attribution.metadata["framework"] for c in sink.calls} == {"pydantic-ai"}


def test_async_and_streamed_runs_and_separate_runs_get_their_own_run_id(
    metering: Callable[..., ListSink], host: Callable[..., CompatibleHost]
) -> None:
    sink = metering()
    server = host([*WEATHER, Turn(text="Rain in Oslo today", prompt_tokens=40, completion_tokens=5)])
    agent = researcher(server)

    async def both() -> str:
        await agent.run("Weather in Paris?")
        async with agent.run_stream("Weather in Oslo?") as streamed:
            return "".join([part async for part in streamed.stream_text(delta=True)])

    assert asyncio.run(both()) == "Rain in Oslo today"
    assert tokens(sink.calls) == [(31, 7), (52, 4), (40, 5)]
    assert [c.attribution.agent_id for c in sink.calls] == ["researcher"] * 3
    first, second, third = (c.attribution.metadata["pydantic_ai_run_id"] for c in sink.calls)
    assert first == second != third


def test_explicit_scope_wins_and_keeps_the_run_id(
    metering: Callable[..., ListSink], host: Callable[..., CompatibleHost]
) -> None:
    sink = metering()
    server = host(WEATHER)
    with bearlumen.agent("planner"), bearlumen.workflow("trips"):
        result = researcher(server).run_sync("What is the weather in Paris?")

    assert [(c.attribution.agent_id, c.attribution.workflow_id) for c in sink.calls] == [
        ("planner", "trips")
    ] * 2
    assert {c.attribution.metadata["pydantic_ai_run_id"] for c in sink.calls} == {result.run_id}


def test_an_agent_run_inside_another_agents_tool_is_billed_to_the_inner_agent(
    metering: Callable[..., ListSink], host: Callable[..., CompatibleHost]
) -> None:
    sink = metering()
    server = host(
        [
            Turn(
                tool="ask_expert", arguments='{"question": "Paris?"}', prompt_tokens=20, completion_tokens=6
            ),
            Turn(tool="lookup", arguments='{"city": "Paris"}', prompt_tokens=31, completion_tokens=7),
            Turn(text="Sunny in Paris", prompt_tokens=52, completion_tokens=4),
            Turn(text="The expert says sunny", prompt_tokens=60, completion_tokens=5),
        ]
    )
    from pydantic_ai import Agent

    expert = researcher(server, name="expert")
    lead = Agent(expert.model, name="lead")

    @lead.tool_plain
    async def ask_expert(question: str) -> str:
        return str((await expert.run(question)).output)

    assert lead.run_sync("Weather?").output == "The expert says sunny"
    assert [c.attribution.agent_id for c in sink.calls] == ["lead", "expert", "expert", "lead"]
    assert tokens(sink.calls) == [(20, 6), (31, 7), (52, 4), (60, 5)]


def test_uninstalled_nothing_is_attributed(
    metering: Callable[..., ListSink], host: Callable[..., CompatibleHost]
) -> None:
    from bearlumen.integrations import pydantic_ai

    sink = metering()
    pydantic_ai.uninstall()
    researcher(host(WEATHER)).run_sync("What is the weather in Paris?")

    assert tokens(sink.calls) == [(31, 7), (52, 4)]
    assert [c.attribution for c in sink.calls] == [bearlumen.current_attribution()] * 2


def test_an_anthropic_model_on_recorded_traffic(
    metering: Callable[..., ListSink], integration_anthropic: None
) -> None:
    """pydantic-ai's Anthropic model through the real anthropic client, replaying a recorded real
    response (INDEX.tsv: input 17, output 189): metered by the anthropic patch, billed to the agent."""
    import anthropic
    from pydantic_ai import Agent
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.providers.anthropic import AnthropicProvider

    from tests.support.cassettes import replay

    sink = metering()
    client = anthropic.AsyncAnthropic(api_key="test", max_retries=0)
    model = AnthropicModel("claude-3-opus-20240229", provider=AnthropicProvider(anthropic_client=client))
    poet = Agent(model, name="poet")
    with replay("openllmetry/anthropic/test_async_anthropic_message_create_legacy.yaml"):
        result = poet.run_sync("Tell me a joke about OpenTelemetry")

    assert result.output
    (call,) = sink.calls
    assert (call.provider, call.attribution.agent_id) == ("anthropic", "poet")
    assert (call.usage.input_tokens, call.usage.output_tokens) == (17, 189)  # type: ignore[union-attr]
    assert call.attribution.metadata["pydantic_ai_run_id"] == result.run_id


def test_a_responses_model_on_recorded_traffic(metering: Callable[..., ListSink]) -> None:
    """pydantic-ai's OpenAI Responses model, replaying a recorded real response (INDEX.tsv: input 22,
    output 6)."""
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    from tests.support.cassettes import replay

    sink = metering()
    model = OpenAIResponsesModel("gpt-4o-mini", provider=OpenAIProvider(api_key="test"))
    summarizer = Agent(model, name="summarizer")
    with replay("otel-python-contrib/openai/test_responses_create_basic[content_mode0].yaml"):
        result = summarizer.run_sync("Say this is a test")

    (call,) = sink.calls
    assert (call.operation, call.attribution.agent_id) == ("responses", "summarizer")
    assert (call.usage.input_tokens, call.usage.output_tokens) == (22, 6)  # type: ignore[union-attr]
    assert call.attribution.metadata["pydantic_ai_run_id"] == result.run_id
