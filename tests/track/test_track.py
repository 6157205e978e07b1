"""`bearlumen.track()`: responses and streams of each provider, read from recorded real traffic.

Responses come from the real client libraries replaying vendored cassettes, with no integration
installed (track() is for code paths no patch sees). The `sink` fixture keeps the exact calls; the
end-to-end test sends the same responses through `bearlumen.instrument()` to the real service.
"""

from __future__ import annotations

import gc
from decimal import Decimal
from typing import Any, Dict, List, Tuple, cast

import anthropic
import ollama
import openai
import pytest
from google import genai
from mistralai.client import Mistral

import bearlumen
from bearlumen.metering.record import LLMCall
from tests.integrations.conftest import load_interactions
from tests.support.cassettes import replay
from tests.support.sinks import ListSink

MESSAGES: Any = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]


def gemini_client() -> genai.Client:
    # The Gemini API cassettes were recorded against v1beta.
    return genai.Client(api_key="test", http_options=genai.types.HttpOptions(api_version="v1beta"))


def buckets(call: LLMCall) -> Tuple[int, int, int, int, int]:
    usage = call.usage
    assert usage is not None
    return (
        usage.input_tokens,
        usage.cache_read_tokens,
        usage.cache_write_tokens,
        usage.output_tokens,
        usage.reasoning_tokens,
    )


def test_openai_chat_response_is_returned_unchanged_and_recorded(sink: ListSink) -> None:
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    with replay("openllmetry/openai/test_openai_prompt_caching.yaml"):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        response = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    with bearlumen.workflow("jokes"):
        returned = bearlumen.track(response, agent_id="writer", customer_tier="gold")

    assert returned is response
    [call] = sink.calls
    assert (call.integration, call.provider, call.operation) == ("track", "openai", "chat.completions")
    assert call.model == "gpt-4o-mini-2024-07-18"
    assert call.response_id == "chatcmpl-BNi420iFNtIOHzy8Gq2fVS5utTus7"
    assert buckets(call) == (125, 1024, 0, 353, 0)  # INDEX.tsv #2: 1149 prompt, 1024 cached
    assert (call.attribution.workflow_id, call.attribution.agent_id) == ("jokes", "writer")
    assert call.attribution.metadata["customer_tier"] == "gold"


def test_openai_responses_and_embeddings(sink: ListSink) -> None:
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    with replay("openllmetry/openai/test_responses_reasoning.yaml"):
        response = client.responses.create(model="gpt-5-nano", input="hi")
    with replay("otel-python-contrib/openai/test_embeddings_with_content.yaml"):
        embedding = client.embeddings.create(model="text-embedding-3-small", input="hi")

    bearlumen.track(response)
    bearlumen.track(embedding.model_dump())  # a JSON body works as well as the object

    reasoning, embedded = sink.calls
    assert (reasoning.operation, reasoning.model) == ("responses", "gpt-5-nano-2025-08-07")
    assert buckets(reasoning) == (11, 0, 0, 327, 320)
    assert (embedded.operation, embedded.model) == ("embeddings", "text-embedding-3-small")
    assert buckets(embedded) == (6, 0, 0, 0, 0)


def test_anthropic_message(sink: ListSink) -> None:
    client = anthropic.Anthropic(api_key="test", max_retries=0)
    with replay("openllmetry/anthropic/test_anthropic_prompt_caching_legacy.yaml"):
        message = client.messages.create(
            model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES
        )

    assert bearlumen.track(message) is message

    [call] = sink.calls
    assert (call.provider, call.operation, call.model) == (
        "anthropic",
        "messages",
        "claude-3-5-sonnet-20240620",
    )
    assert buckets(call) == (4, 0, 1163, 187, 0)
    assert call.response_id == message.id


def test_gemini_response_with_tool_use_and_thoughts(sink: ListSink) -> None:
    with replay("openinference/google-genai/test_validate_token_counts.yaml"):
        client = gemini_client()
        response = client.models.generate_content(model="gemini-2.5-flash", contents="hi")

    assert bearlumen.track(response) is response

    [call] = sink.calls
    assert (call.provider, call.operation, call.model) == ("google", "generate_content", "gemini-2.5-flash")
    # prompt 32 + tool-use prompt 720 are input; candidates 341 + thoughts 103 are output.
    assert buckets(call) == (752, 0, 0, 444, 103)
    assert call.response_id == "mtcEaq-wLtaIqtsPkaPb-Qw"


def test_gemini_cached_audio_and_video(sink: ListSink) -> None:
    path = "crewai/google-genai/TestAgentMultimodalGemini.test_video_file[gemini-gemini-2.5-flash].yaml"
    with replay(path):
        client = gemini_client()
        first = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
        second = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    bearlumen.track(first)
    bearlumen.track(second.model_dump(mode="json", by_alias=True))  # the camelCase REST body

    one, two = sink.calls
    assert buckets(one) == (1518, 0, 0, 269, 197)
    assert one.usage is not None and one.usage.input_audio_tokens == 160
    # 1518 prompt of which 1122 cached (118 of them audio); 202 candidates + 185 thoughts.
    assert buckets(two) == (396, 1122, 0, 387, 185)
    assert two.usage is not None
    assert (two.usage.input_audio_tokens, two.usage.cache_audio_read_tokens) == (160, 118)


def test_openai_stream_keeps_its_identity_and_records_at_its_end(sink: ListSink) -> None:
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    with replay("otel-python-contrib/openai/test_chat_completion_streaming.yaml"):
        stream = client.chat.completions.create(
            model="gpt-4", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        with bearlumen.agent("critic"):
            tracked = bearlumen.track(stream)
        assert tracked is stream
        assert sink.calls == []
        chunks = list(tracked)

    assert chunks and sink.calls
    [call] = sink.calls
    assert call.streamed is True and call.usage_source == "stream"
    assert buckets(call) == (12, 0, 0, 5, 0)
    assert call.attribution.agent_id == "critic"  # the scope of track(), not of whoever ends the stream


def test_anthropic_stream_broken_off_records_the_usage_seen(sink: ListSink) -> None:
    client = anthropic.Anthropic(api_key="test", max_retries=0)
    with replay("openllmetry/anthropic/test_anthropic_message_streaming_legacy.yaml"):
        stream = client.messages.create(
            model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES, stream=True
        )
        for event in bearlumen.track(stream):
            if event.type == "content_block_delta":
                break
        stream.close()

    [call] = sink.calls
    assert call.usage_source == "stream_partial"
    assert call.usage is not None and call.usage.input_tokens == 17


def test_gemini_stream_generator(sink: ListSink) -> None:
    with replay("openinference/google-genai/test_streaming_text_content.yaml"):
        client = gemini_client()
        stream = client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
        texts = [chunk.text for chunk in bearlumen.track(stream, workflow_id="poems")]

    assert len(texts) == 12
    [call] = sink.calls
    # Running totals on every chunk: the last one counts (prompt 9 there, 10 before).
    assert buckets(call) == (9, 0, 0, 527, 0)
    assert (call.usage_source, call.streamed, call.attribution.workflow_id) == ("stream", True, "poems")


async def test_gemini_async_stream_dropped_early_records_once(sink: ListSink) -> None:
    with replay("openinference/google-genai/test_streaming_text_content.yaml", allow_playback_repeats=True):
        client = gemini_client()
        stream = await client.aio.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
        tracked = bearlumen.track(stream)
        async for _chunk in tracked:
            break
        await tracked.aclose()  # type: ignore[attr-defined]
    gc.collect()

    [call] = sink.calls
    assert call.usage_source == "stream_partial"
    assert call.usage is not None and call.usage.input_tokens == 10


def test_mistral_chat_stream_and_embeddings(sink: ListSink) -> None:
    client = Mistral(api_key="test")
    with replay("openllmetry/mistral/test_mistralai_chat_with_cache_tokens.yaml"):
        chat = client.chat.complete(model="mistral-tiny", messages=MESSAGES)
    with replay("openllmetry/mistral/test_mistral_embeddings_legacy.yaml"):
        embedded = client.embeddings.create(model="mistral-embed", inputs=["hi"])
    with replay("openllmetry/mistral/test_mistralai_streaming_chat_legacy.yaml"):
        events = list(bearlumen.track(client.chat.stream(model="mistral-tiny", messages=MESSAGES)))
    bearlumen.track(chat)
    bearlumen.track(embedded)

    streamed, completed, embedding = sink.calls
    assert len(events) == 81
    assert (streamed.provider, streamed.model, streamed.streamed) == ("mistral", "mistral-tiny", True)
    assert buckets(streamed) == (11, 0, 0, 80, 0)
    # 20 prompt of which 10 cached (in `prompt_tokens_details`, an extra field in mistralai).
    assert (completed.provider, completed.response_id) == ("mistral", "abc123cached456")
    assert buckets(completed) == (10, 10, 0, 18, 0)
    assert (embedding.provider, embedding.operation) == ("mistral", "embeddings")
    assert buckets(embedding) == (10, 0, 0, 0, 0)


def test_ollama_chat_generate_and_stream(sink: ListSink) -> None:
    # Ollama serves on localhost, which the shared replay lets through for the Bear Lumen service.
    client = ollama.Client()
    with replay("openllmetry/ollama/test_ollama_chat_legacy.yaml", ignore_localhost=False):
        chat = client.chat(model="llama3", messages=MESSAGES)
    with replay("openllmetry/ollama/test_ollama_generation_legacy.yaml", ignore_localhost=False):
        generated = client.generate(model="llama3", prompt="hi")
    with replay("openllmetry/ollama/test_ollama_streaming_chat_legacy.yaml", ignore_localhost=False):
        for _part in bearlumen.track(client.chat(model="llama3", messages=MESSAGES, stream=True)):
            pass
    bearlumen.track(chat)
    bearlumen.track(generated)

    streamed, chatted, generation = sink.calls
    assert (streamed.provider, streamed.operation, streamed.usage_source) == ("ollama", "chat", "stream")
    assert buckets(streamed) == (17, 0, 0, 50, 0)
    assert (chatted.operation, buckets(chatted)) == ("chat", (17, 0, 0, 66, 0))
    assert (generation.operation, buckets(generation)) == ("generate", (17, 0, 0, 63, 0))
    assert chatted.response_id is None  # Ollama gives no id: each report is its own call


def test_bedrock_converse_body(sink: ListSink) -> None:
    # The body boto3 returns from `converse` (the recorded one; boto3 is not a test dependency yet).
    [interaction] = load_interactions("openllmetry/bedrock/test_anthropic_cross_region.yaml")
    body = dict(interaction.json, ResponseMetadata={"RequestId": "req-1"})
    profile = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"

    bearlumen.track(body, model=profile)

    [call] = sink.calls
    assert (call.provider, call.operation, call.model, call.response_id) == (
        "aws",
        "converse",
        profile,
        "req-1",
    )
    assert buckets(call) == (20, 0, 0, 72, 0)


def test_manual_form_records_a_stated_cost(sink: ListSink) -> None:
    assert (
        bearlumen.track(None, provider="openai", model="whisper-1", cost_usd="0.006", agent_id="scribe")
        is None
    )
    bearlumen.track(
        None, provider="ollama", model="llama3", input_tokens=17, output_tokens=66, response_id="run-1"
    )

    stated, counted = sink.calls
    assert (stated.provider, stated.model, stated.cost_usd, stated.usage) == (
        "openai",
        "whisper-1",
        Decimal("0.006"),
        None,
    )
    assert stated.attribution.agent_id == "scribe"
    assert buckets(counted) == (17, 0, 0, 66, 0)
    assert counted.response_id == "run-1"


@pytest.mark.parametrize(
    "value", [object(), {"unrelated": True}, {"object": "chat.completion", "usage": "garbage"}, 42]
)
def test_never_raises_and_returns_what_it_was_given(sink: ListSink, value: Any) -> None:
    assert bearlumen.track(value) is value
    assert all(call.usage is None for call in sink.calls)


def test_bad_manual_figures_record_nothing_and_do_not_raise(sink: ListSink) -> None:
    assert bearlumen.track(None, model="m", input_tokens=-1) is None
    assert bearlumen.track(None, model="m", cost_usd="lots") is None
    assert sink.calls == []


# -- end to end ----------------------------------------------------------------------------------------


def test_tracked_responses_land_in_the_service_priced_and_once(deployment: Tuple[str, str]) -> None:
    base_url, key = deployment
    bearlumen.instrument(api_key=key, base_url=base_url, integrations=[], spool=False)
    reader = bearlumen.Client(api_key=key, base_url=base_url)
    try:
        with replay("openinference/google-genai/test_validate_token_counts.yaml"):
            google = gemini_client()
            gemini = google.models.generate_content(model="gemini-2.5-flash", contents="hi")
        client = openai.OpenAI(api_key="sk-test", max_retries=0)
        with replay("openllmetry/openai/test_openai_prompt_caching.yaml"):
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            chat = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with bearlumen.workflow("e2e"):
            bearlumen.track(gemini, agent_id="researcher")
            bearlumen.track(gemini, agent_id="researcher")  # the same response again: recorded once
            bearlumen.track(chat, agent_id="writer")
            bearlumen.track(None, provider="openai", model="whisper-1", cost_usd="0.006", agent_id="scribe")
        assert bearlumen.flush(timeout=60) is True
        events = cast(List[Dict[str, Any]], reader.usage.query(limit=100)["events"])
    finally:
        bearlumen.uninstrument()
        reader.close()

    by_agent = {event["agentId"]: event for event in events}
    assert len(events) == 3
    researcher = by_agent["researcher"]
    assert researcher["quantity"] == 1196  # Google's totalTokenCount
    assert Decimal(researcher["providerCostUsd"]) == Decimal("0.0013356")  # 752x0.30 + 444x2.50 /1M
    assert researcher["workflowId"] == "e2e"
    writer = by_agent["writer"]
    assert Decimal(writer["providerCostUsd"]) == Decimal("0.00030735")  # 125x0.15 + 1024x0.075 + 353x0.60 /1M
    scribe = by_agent["scribe"]
    assert Decimal(scribe["providerCostUsd"]) == Decimal("0.006")
    assert scribe["metadata"]["pricing_status"] == "caller_price"
