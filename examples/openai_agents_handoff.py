"""An OpenAI Agents SDK handoff, billed per agent with no metering code: each agent's calls are its own.

A `triage` agent hands the question off to `billing`, once with `Runner.run_sync` and once streamed
(`Runner.run_streamed`, chat-completions mode). `bearlumen.instrument()` meters every model call (the
openai patch) and bills it to the agent whose span it runs in (through the SDK's tracing hooks), with
the run's trace id in the event's metadata (`openai_agents_trace_id`). The stream goes to an
OpenAI-compatible host, which is asked for usage because `stream_usage_hosts` names it; the SDK's own
view of the stream is unchanged. At the end the example prints the cost per agent.

    BEARLUMEN_API_KEY=... BEARLUMEN_BASE_URL=http://127.0.0.1:8787 python examples/openai_agents_handoff.py
    python examples/openai_agents_handoff.py     # no BEARLUMEN_BASE_URL: the embedded service on SQLite

Model traffic: always a local OpenAI-compatible host started by the example (_compatible_host.py: a
stand-in answering in OpenAI's documented Chat Completions shapes, playing a scripted handoff, since no
recording of a handoff to these agents exists). It is priced with OpenAI's list for the model it names,
through `pricing={"hosts": {"127.0.0.1": "openai"}}`.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone
from typing import Any

import openai
from _compatible_host import CompatibleHost, Turn
from _service import connect, finish

import bearlumen

SCRIPT = [
    Turn(tool="transfer_to_billing", prompt_tokens=120, completion_tokens=14),
    Turn(text="Your last invoice was paid on March 3.", prompt_tokens=180, completion_tokens=12),
]


def agents_for(host: CompatibleHost) -> Any:
    from agents import Agent, OpenAIChatCompletionsModel

    client = openai.AsyncOpenAI(base_url=host.url, api_key="local", max_retries=0)
    model = OpenAIChatCompletionsModel("gpt-4o-mini", client)
    billing = Agent(name="billing", instructions="Answer billing questions.", model=model)
    return Agent(
        name="triage", instructions="Hand billing questions to billing.", handoffs=[billing], model=model
    )


async def streamed(host: CompatibleHost) -> str:
    from agents import Runner

    run = Runner.run_streamed(agents_for(host), "When was my last invoice paid?")
    async for _event in run.stream_events():
        pass
    return str(run.final_output)


def main() -> int:
    import agents

    agents.set_trace_processors([])  # the SDK's default exporter sends traces to OpenAI: not offline
    client = connect()
    started = datetime.now(timezone.utc)
    with CompatibleHost(SCRIPT * 2) as host:
        bearlumen.instrument(
            client, stream_usage_hosts=["127.0.0.1"], pricing={"hosts": {"127.0.0.1": "openai"}}
        )
        result = agents.Runner.run_sync(agents_for(host), "When was my last invoice paid?")
        print("run_sync:", result.final_output, f"(answered by {result.last_agent.name})")
        print("run_streamed:", asyncio.run(streamed(host)))

    return finish(client, started)


if __name__ == "__main__":
    sys.exit(main())
