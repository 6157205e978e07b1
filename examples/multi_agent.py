"""A small multi-agent workload, metered automatically.

Two workflows run three agents each over OpenAI and Anthropic: plain calls, streams, the Responses API
and Anthropic prompt caching. `bearlumen.instrument()` meters every call; the scopes say which agent
and workflow each one is billed to. At the end the example prints what the service recorded.

    BEARLUMEN_API_KEY=... BEARLUMEN_BASE_URL=http://127.0.0.1:8787 python examples/multi_agent.py
    python examples/multi_agent.py          # no service URL: an embedded service on a fresh SQLite file

With no provider key set it replays recorded real provider traffic (see _offline.py).
"""

from __future__ import annotations

from datetime import datetime, timezone

import anthropic
import openai
from _offline import provider_keys, recorded
from _service import connect, report_since

import bearlumen


def triage(client: openai.OpenAI) -> str:
    answers = []
    for question in ("Which plan fits a 5-person team?", "Do you support SSO?"):
        response = client.chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": question}]
        )
        answers.append(response.choices[0].message.content or "")
    return " ".join(answers)


def research(client: openai.OpenAI) -> str:
    text = []
    with client.responses.stream(model="gpt-4.1-nano", input="Summarise our onboarding guide.") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                text.append(event.delta)
    return "".join(text)


def write_welcome(client: anthropic.Anthropic) -> str:
    # The same long system prompt twice: the first call writes the prompt cache, the second reads it.
    replies = []
    for _ in range(2):
        message = client.messages.create(
            model="claude-3-5-sonnet-20240620",
            max_tokens=1024,
            system=[
                {
                    "type": "text",
                    "text": "You write onboarding emails.",
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            messages=[{"role": "user", "content": "Write a welcome email."}],
        )
        replies.append(message.content[0].text if message.content else "")
    return "\n".join(replies)


def summarise(client: anthropic.Anthropic) -> str:
    with client.messages.stream(
        model="claude-3-5-haiku-20241022",
        max_tokens=1024,
        messages=[{"role": "user", "content": "Summarise."}],
    ) as stream:
        return "".join(stream.text_stream)


def main() -> None:
    provider_keys()
    client = connect()
    started = datetime.now(timezone.utc)
    bearlumen.instrument(client)
    oai = openai.OpenAI(max_retries=0)
    claude = anthropic.Anthropic(max_retries=0)

    with bearlumen.workflow("customer-onboarding"):
        with bearlumen.agent("triage"), recorded("openllmetry/openai/test_chat.yaml"):
            triage(oai)
        with bearlumen.agent("researcher"), recorded("openllmetry/openai/test_responses_streaming.yaml"):
            research(oai)
        with (
            bearlumen.agent("writer"),
            recorded("openllmetry/anthropic/test_anthropic_prompt_caching_legacy.yaml"),
        ):
            write_welcome(claude)

    stream_cassette = "openllmetry/anthropic/test_anthropic_message_stream_manager_legacy.yaml"
    with bearlumen.workflow("support-ticket"), bearlumen.agent("summarizer"), recorded(stream_cassette):
        summarise(claude)

    delivered = bearlumen.flush(timeout=30)
    print(f"events delivered: {delivered}; exporter stats: {bearlumen.stats()}")
    print(report_since(client, started))
    bearlumen.uninstrument()


if __name__ == "__main__":
    main()
