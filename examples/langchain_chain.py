"""LangChain chains, metered per agent: LCEL, streaming, async, structured output, tools, a completions LLM.

`bearlumen.instrument()` registers a LangChain callback handler for every run, so nothing is passed to the
chains. Attribution comes from bearlumen scopes (`bearlumen.agent(...)`, `bearlumen.workflow(...)`) or
from the run's config metadata (`bearlumen_agent_id`, `bearlumen_workflow_id`, ...); a scope wins when
both are set. Each model call is recorded once, even though the openai/anthropic patches see it too.
At the end the example prints the cost per agent and per workflow, as the service computed it.

    BEARLUMEN_API_KEY=... BEARLUMEN_BASE_URL=http://127.0.0.1:8787 python examples/langchain_chain.py
    python examples/langchain_chain.py        # no BEARLUMEN_BASE_URL: the embedded service on SQLite

With no provider key set it replays recorded real provider traffic (see _offline.py).
"""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime, timezone

from _offline import provider_keys, recorded
from _service import connect, report_since
from langchain_anthropic import ChatAnthropic
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAI
from pydantic import BaseModel, Field

import bearlumen


class Food(BaseModel):
    name: str = Field(description="The name of the food item")
    healthy: bool = Field(description="Whether the food is good for you")
    calories: int = Field(description="Estimated calories per serving")


@tool
def food_analysis(food: str) -> str:
    """Analyze the nutritional value of a food."""
    return f"{food}: rich in fibre"


@tool
def get_weather(location: str) -> str:
    """Get the current weather in a given location."""
    return f"Sunny in {location}"


def classify() -> Food:
    """Structured output (chat.completions.parse underneath)."""
    classifier = ChatOpenAI(model="gpt-4o-mini", max_retries=0).with_structured_output(Food)
    with bearlumen.agent("classifier"), recorded("openllmetry/langchain/test_structured_output.yaml"):
        food = classifier.invoke("Tell me about avocados")
    assert isinstance(food, Food)
    return food


async def tell_joke() -> str:
    """An async LCEL chain; its agent comes from the run's config metadata."""
    chain = PromptTemplate.from_template("Tell me a short joke about {topic}") | ChatOpenAI(
        model="gpt-4", temperature=0, max_retries=0
    )
    with recorded("openllmetry/langchain/test_async_lcel.yaml"):
        reply = await (chain | StrOutputParser()).ainvoke(
            {"topic": "chickens"}, config={"metadata": {"bearlumen_agent_id": "joker"}}
        )
    return reply


def narrate() -> str:
    """A streamed answer: recorded from the stream's final usage chunk."""
    cassette = "openinference/langchain/test_records_token_counts_for_streaming_openai_llm.yaml"
    with bearlumen.agent("narrator"), recorded(cassette):
        return "".join(str(chunk.content) for chunk in ChatOpenAI(model="gpt-3.5-turbo").stream("Say hi"))


def nutritionist() -> str:
    """Anthropic with tools bound: the model answers with tool calls."""
    model = ChatAnthropic(model="claude-3-5-haiku-latest", max_retries=0).bind_tools(  # type: ignore[call-arg]
        [food_analysis, get_weather]
    )
    cassette = "openllmetry/langchain/test_tool_calls_anthropic_text_block.yaml"
    with bearlumen.agent("nutritionist"), recorded(cassette):
        reply = model.invoke("Analyze an apple, then tell me the weather in San Francisco")
    return ", ".join(call["name"] for call in reply.tool_calls)


def playwright() -> str:
    """Two completions-API LLM calls in a sequential chain (`langchain_openai.OpenAI`)."""
    llm = OpenAI(model="gpt-3.5-turbo-instruct", max_retries=0)
    synopsis = PromptTemplate.from_template("Write a synopsis of the play {title}.") | llm | StrOutputParser()
    review = PromptTemplate.from_template("Review this play: {synopsis}") | llm | StrOutputParser()
    with bearlumen.agent("playwright"), recorded("openllmetry/langchain/test_sequential_chain.yaml"):
        return ({"synopsis": synopsis} | review).invoke({"title": "Tragedy at sunset on the beach"})


def main() -> int:
    provider_keys()
    client = connect()
    started = datetime.now(timezone.utc)
    bearlumen.instrument(client)

    with bearlumen.workflow("menu-assistant"):
        food = classify()
        print(f"  classifier:   {food.name}, healthy={food.healthy}, {food.calories} kcal")
        print(f"  joker:        {asyncio.run(tell_joke())[:70]!r}...")
        print(f"  narrator:     {narrate()[:70]!r}")
        print(f"  nutritionist: asked for tools {nutritionist()}")
    with bearlumen.workflow("theatre"):
        print(f"  playwright:   {playwright().strip()[:70]!r}...")

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
