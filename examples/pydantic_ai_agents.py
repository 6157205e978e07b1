"""Two pydantic-ai agents, billed per agent with no metering code: the agents' names are the agents.

`bearlumen.instrument()` meters each model request (through the openai patch) and, inside a pydantic-ai
run with no `bearlumen.agent(...)` scope, bills it to the running agent's name, with the run's id in the
event's metadata (`pydantic_ai_run_id`). The weather agent calls its tool (two model requests), the
writer answers in one. At the end the example prints the cost per agent as the service computed it.

    BEARLUMEN_API_KEY=... BEARLUMEN_BASE_URL=http://127.0.0.1:8787 python examples/pydantic_ai_agents.py
    python examples/pydantic_ai_agents.py        # no BEARLUMEN_BASE_URL: the embedded service on SQLite

With no provider key set it replays recorded real OpenAI traffic (see _offline.py): the weather agent's
tool is named as in the recording (`get_current_weather`), so the recorded tool calls drive it.
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
    weather = Agent(model, name="weather-agent", instructions="Use the tool, be brief.")

    @weather.tool_plain
    def get_current_weather(location: str) -> str:
        """Get the current weather in a given location."""
        return f"Sunny and 21 degrees in {location}"

    writer = Agent(model, name="writer")

    with recorded("otel-python-contrib/openai/test_chat_completion_tool_calls_with_content.yaml"):
        forecast = weather.run_sync("What's the weather in Seattle and San Francisco today?")
    print("weather-agent:", str(forecast.output).replace("\n", " ")[:100])
    with recorded("otel-python-contrib/openai/test_chat_completion_with_content.yaml"):
        line = writer.run_sync("Say this is a test")
    print("writer:", str(line.output)[:100])

    return finish(client, started)


if __name__ == "__main__":
    sys.exit(main())
