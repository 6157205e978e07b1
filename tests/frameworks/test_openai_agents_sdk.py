"""OpenAI Agents SDK: each agent of a handoff chain gets its own model calls (real `agents`, its chat
completions model, through the real openai client to a local host answering in OpenAI's documented
shapes: a handoff is a tool call named `transfer_to_<agent>`, which no recording has)."""

from __future__ import annotations

import asyncio
from typing import Any, Callable, List, Optional

import openai

import bearlumen
from bearlumen.metering.record import LLMCall
from examples._compatible_host import CompatibleHost
from tests.support.agent_frameworks import HANDOFF, triage
from tests.support.sinks import ListSink


def tokens(calls: List[LLMCall]) -> List[tuple[int, int]]:
    return [(c.usage.input_tokens, c.usage.output_tokens) for c in calls if c.usage is not None]


def agents_and_traces(calls: List[LLMCall]) -> List[tuple[Optional[str], Any]]:
    return [(c.attribution.agent_id, c.attribution.metadata.get("openai_agents_trace_id")) for c in calls]


def test_both_agents_of_a_handoff_get_their_own_calls(
    metering: Callable[..., ListSink], host: Callable[..., CompatibleHost]
) -> None:
    from agents import Runner

    sink = metering()
    server = host(HANDOFF)
    result = Runner.run_sync(triage(server), "Is my invoice paid?")

    assert result.final_output == "Your invoice is paid"
    assert len(sink.calls) == 2 == len(server.requests)
    assert tokens(sink.calls) == [(30, 7), (50, 4)]
    seen = agents_and_traces(sink.calls)
    assert [agent for agent, _ in seen] == ["triage", "billing"]
    trace_ids = {trace for _, trace in seen}
    assert len(trace_ids) == 1 and str(trace_ids.pop()).startswith("trace_")  # one run, one trace
    assert {c.attribution.metadata["framework"] for c in sink.calls} == {"openai-agents"}


def test_streamed_run_through_a_listed_host_reports_exact_tokens_and_leaves_the_sdk_view_unchanged(
    metering: Callable[..., ListSink], host: Callable[..., CompatibleHost]
) -> None:
    from agents import Runner

    server = host(HANDOFF * 2)

    async def run() -> Any:
        streamed = Runner.run_streamed(triage(server), "Is my invoice paid?")
        async for _event in streamed.stream_events():
            pass
        return streamed

    plain = asyncio.run(run())  # not instrumented: what the SDK sees on its own
    sink = metering(stream_usage_hosts=["127.0.0.1"])
    metered = asyncio.run(run())

    assert [r.get("stream_options") for r in server.requests] == [None, None] + [{"include_usage": True}] * 2
    assert tokens(sink.calls) == [(30, 7), (50, 4)]
    assert [c.attribution.agent_id for c in sink.calls] == ["triage", "billing"]
    assert all(c.streamed and c.extra.get("include_usage_added") for c in sink.calls)
    # The SDK never saw the usage chunk it did not ask for: its own usage is what it is without us.
    assert metered.final_output == plain.final_output == "Your invoice is paid"
    assert metered.context_wrapper.usage.total_tokens == plain.context_wrapper.usage.total_tokens == 0
    assert metered.context_wrapper.usage.requests == plain.context_wrapper.usage.requests == 2


def test_explicit_scope_wins(metering: Callable[..., ListSink], host: Callable[..., CompatibleHost]) -> None:
    from agents import Runner

    sink = metering()
    server = host(HANDOFF)
    with bearlumen.agent("support-desk"):
        Runner.run_sync(triage(server), "Is my invoice paid?")

    assert [c.attribution.agent_id for c in sink.calls] == ["support-desk", "support-desk"]
    assert len({c.attribution.metadata["openai_agents_trace_id"] for c in sink.calls}) == 1


def test_uninstalled_nothing_is_attributed(
    metering: Callable[..., ListSink], host: Callable[..., CompatibleHost]
) -> None:
    from agents import Runner
    from bearlumen.integrations import openai_agents

    sink = metering()
    openai_agents.uninstall()
    Runner.run_sync(triage(host(HANDOFF)), "Is my invoice paid?")

    assert tokens(sink.calls) == [(30, 7), (50, 4)]
    assert [c.attribution.agent_id for c in sink.calls] == [None, None]
    assert all("framework" not in c.attribution.metadata for c in sink.calls)


def test_with_the_sdks_tracing_disabled_calls_are_metered_unattributed(
    metering: Callable[..., ListSink], host: Callable[..., CompatibleHost]
) -> None:
    from agents import RunConfig, Runner

    sink = metering()
    config = RunConfig(tracing_disabled=True)
    Runner.run_sync(triage(host(HANDOFF)), "Is my invoice paid?", run_config=config)

    assert tokens(sink.calls) == [(30, 7), (50, 4)]  # metered all the same
    assert [c.attribution.agent_id for c in sink.calls] == [None, None]  # the documented limit


def test_responses_model_on_recorded_openai_traffic(metering: Callable[..., ListSink]) -> None:
    """The SDK's default model (the Responses API) against api.openai.com, replaying a recorded real
    response (INDEX.tsv: input 22, output 6)."""
    from agents import Agent, OpenAIResponsesModel, Runner

    from tests.support.cassettes import replay

    sink = metering()
    client = openai.AsyncOpenAI(api_key="test", max_retries=0)
    writer = Agent(name="writer", model=OpenAIResponsesModel("gpt-4o-mini", client))
    with replay("otel-python-contrib/openai/test_responses_create_basic[content_mode0].yaml"):
        result = Runner.run_sync(writer, "Say this is a test")

    assert result.final_output
    (call,) = sink.calls
    assert call.operation == "responses" and call.attribution.agent_id == "writer"
    assert (call.usage.input_tokens, call.usage.output_tokens) == (22, 6)  # type: ignore[union-attr]
    assert call.attribution.metadata["openai_agents_trace_id"].startswith("trace_")
