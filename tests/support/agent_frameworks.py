"""Agents of the framework tests, and the scripts the local OpenAI-compatible host plays for them
(examples/_compatible_host.py: a stand-in answering in OpenAI's documented Chat Completions shapes)."""

from __future__ import annotations

from typing import Any

import openai

from examples._compatible_host import CompatibleHost, Turn

#: A pydantic-ai `researcher` run: a call of its `lookup` tool, then the answer.
WEATHER = [
    Turn(tool="lookup", arguments='{"city": "Paris"}', prompt_tokens=31, completion_tokens=7),
    Turn(text="Sunny in Paris", prompt_tokens=52, completion_tokens=4),
]

#: An Agents SDK run: `triage` hands off to `billing` (a tool call named transfer_to_billing), which answers.
HANDOFF = [
    Turn(tool="transfer_to_billing", prompt_tokens=30, completion_tokens=7),
    Turn(text="Your invoice is paid", prompt_tokens=50, completion_tokens=4),
]


def researcher(server: CompatibleHost, name: str = "researcher") -> Any:
    """A pydantic-ai agent on the OpenAI chat model, with a `lookup` tool."""
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel("gpt-4o-mini", provider=OpenAIProvider(base_url=server.url, api_key="local"))
    agent = Agent(model, name=name)

    @agent.tool_plain
    def lookup(city: str) -> str:
        return f"sunny in {city}"

    return agent


def triage(server: CompatibleHost) -> Any:
    """An Agents SDK triage agent that hands off to a billing agent (build one per event loop: the async
    client is bound to the loop it first runs in)."""
    from agents import Agent, OpenAIChatCompletionsModel

    client = openai.AsyncOpenAI(base_url=server.url, api_key="local", max_retries=0)
    model = OpenAIChatCompletionsModel("gpt-4o-mini", client)
    billing = Agent(name="billing", instructions="Answer billing questions.", model=model)
    return Agent(name="triage", instructions="Route the question.", handoffs=[billing], model=model)
