"""Two pydantic-ai agents, billed per agent with no metering code: the agents' names are the agents.

`bearlumen.instrument()` meters each model request (through the openai patch) and, inside a pydantic-ai
run with no `bearlumen.agent(...)` scope, bills it to the running agent's name, with the run's id in the
event's metadata (`pydantic_ai_run_id`). The analyst runs twice, the writer once (one model request
each; tool-calling runs make one request per step, see tests/frameworks). At the end the example prints
the cost per agent as the service computed it.

    BEARLUMEN_API_KEY=... BEARLUMEN_BASE_URL=http://127.0.0.1:8787 python examples/pydantic_ai_agents.py
    python examples/pydantic_ai_agents.py        # no BEARLUMEN_BASE_URL: the embedded service on SQLite

With no provider key set it replays recorded real OpenAI traffic (see _offline.py), recordings no other
example uses (the service records a response id once).
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone

from _offline import provider_keys, recorded
from _service import connect, finish

import bearlumen


def main() -> int:
    provider_keys()
    client = connect()
    started = datetime.now(timezone.utc)
    bearlumen.instrument(client)

    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel

    model = OpenAIChatModel("gpt-4o-mini")  # the Chat Completions API (the recordings' API)
    analyst = Agent(model, name="analyst", instructions="Write short poems.")
    writer = Agent(model, name="writer")

    # Two runs of the analyst (the second hits OpenAI's prompt cache: cached tokens priced as such),
    # one of the writer: one event per model request, each billed to its agent.
    with recorded("openinference/openai/test_cached_tokens.yaml"):
        for question in ("A haiku about autumn.", "Four lines about the morning."):
            answer = analyst.run_sync(question)
            print("analyst:", str(answer.output).replace("\n", " ")[:80])
    with recorded("otel-python-contrib/openai/test_async_chat_completion_with_content.yaml"):
        line = writer.run_sync("Say this is a test")
    print("writer:", str(line.output)[:80])

    return finish(client, started)


if __name__ == "__main__":
    sys.exit(main())
