"""Gemini integration: recorded Gemini API and Vertex AI traffic through the real `google-genai` client.

Each test replays vendored cassettes (figures from tests/cassettes/INDEX.tsv) with the integration
installed and asserts exactly one LLMCall per HTTP request, its exact token buckets and its exact cost
(the price book's `provider_cost_usd` against a figure computed by hand from Google's list prices:
gemini-2.5-flash $0.30 / 1M text-image-video input, $1.00 audio input, $0.03 / $0.10 cached, $2.50 output
including thinking; gemini-2.0-flash $0.10 input, $0.40 output).
"""

from __future__ import annotations

import gc
from decimal import Decimal
from typing import Any, Callable, Dict, Iterator, List, Tuple, cast

import google.oauth2.credentials
import pytest
from google import genai
from google.genai import models, types

import bearlumen
from bearlumen.metering.event import build_event
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall
from tests.support.cassettes import replay
from tests.support.metered import metered
from tests.support.sinks import ListSink

PRICE_BOOK = PriceBook()
ORIGINALS = {
    (owner, name): vars(getattr(models, owner))[name]
    for owner, name in [
        ("Models", "_generate_content"),
        ("Models", "_generate_content_stream"),
        ("AsyncModels", "_generate_content"),
        ("AsyncModels", "_generate_content_stream"),
    ]
}


@pytest.fixture
def calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("gemini")
    return sink.calls


def gemini_api() -> genai.Client:
    return genai.Client(api_key="test", http_options=types.HttpOptions(api_version="v1beta"))


def vertex_ai() -> genai.Client:
    # Project and location from the recorded URI; Vertex needs OAuth credentials (any token replays).
    return genai.Client(
        vertexai=True,
        project="test-project",
        location="test-location",
        credentials=google.oauth2.credentials.Credentials(token="test"),
        http_options=types.HttpOptions(api_version="v1beta1"),
    )


def buckets(call: LLMCall) -> Tuple[int, int, int, int]:
    assert call.usage is not None
    usage = call.usage
    return usage.input_tokens, usage.cache_read_tokens, usage.output_tokens, usage.reasoning_tokens


def cost(call: LLMCall) -> Decimal:
    event = build_event(call, PRICE_BOOK, "key")
    return Decimal(event["metadata"]["provider_cost_usd"])


def test_generate_content_with_tool_use_prompt_and_thoughts(calls: List[LLMCall]) -> None:
    client = gemini_api()
    with bearlumen.agent("researcher"), replay("openinference/google-genai/test_validate_token_counts.yaml"):
        response = client.models.generate_content(model="gemini-2.5-flash", contents="hi")

    assert response.usage_metadata is not None and response.usage_metadata.total_token_count == 1196
    [call] = calls
    assert (call.integration, call.provider, call.operation) == ("gemini", "google", "generate_content")
    assert (call.model, call.model_requested, call.response_id) == (
        "gemini-2.5-flash",
        "gemini-2.5-flash",
        "mtcEaq-wLtaIqtsPkaPb-Qw",
    )
    assert call.extra == {"platform": "gemini_api"}
    assert call.attribution.agent_id == "researcher"
    assert buckets(call) == (752, 0, 444, 103)  # 32 prompt + 720 tool-use prompt; 341 + 103 thoughts
    assert call.usage is not None and call.usage.total_tokens == 1196
    assert cost(call) == Decimal("0.0013356")  # 752x0.30 + 444x2.50 /1M


def test_cached_audio_and_video_each_request_once(calls: List[LLMCall]) -> None:
    client = gemini_api()
    path = "crewai/google-genai/TestAgentMultimodalGemini.test_video_file[gemini-gemini-2.5-flash].yaml"
    with replay(path):
        client.models.generate_content(model="gemini-2.5-flash", contents="describe")
        client.models.generate_content(model="gemini-2.5-flash", contents="describe")

    first, second = calls
    assert buckets(first) == (1518, 0, 269, 197)
    assert cost(first) == Decimal("0.0012399")  # 1358x0.30 + 160 audio x1.00 + 269x2.50 /1M
    assert buckets(second) == (396, 1122, 387, 185)
    assert second.usage is not None
    assert (second.usage.input_audio_tokens, second.usage.cache_audio_read_tokens) == (160, 118)
    # uncached: 354x0.30 + 42 audio x1.00; cached: 1004x0.03 + 118 audio x0.10; output 387x2.50 /1M
    assert cost(second) == Decimal("0.00115762")


def get_weather(location: str, unit: str = "fahrenheit") -> Dict[str, Any]:
    """Recorded as the tool of the automatic function calling cassette."""
    return {"location": location, "temperature": 65, "unit": unit}


def test_automatic_function_calling_records_each_round(calls: List[LLMCall]) -> None:
    client = gemini_api()
    path = "openinference/google-genai/test_generate_content_with_automatic_tool_calling.yaml"
    with replay(path):
        response = client.models.generate_content(
            model="gemini-2.0-flash",
            contents="What's the weather like in San Francisco?",
            config=types.GenerateContentConfig(tools=[get_weather]),
        )

    assert response.text
    first, second = calls  # two billed requests behind one generate_content()
    assert (buckets(first), buckets(second)) == ((64, 0, 6, 0), (89, 0, 23, 0))
    assert cost(first) + cost(second) == Decimal("0.0000269")  # (64+89)x0.10 + (6+23)x0.40 /1M


def test_chat_send_message(calls: List[LLMCall]) -> None:
    client = gemini_api()
    with replay("openinference/google-genai/test_generate_content.yaml"):
        chat = client.chats.create(model="gemini-2.0-flash")
        chat.send_message("hi")

    [call] = calls
    assert buckets(call) == (45, 0, 23, 0)
    assert cost(call) == Decimal("0.0000137")  # 45x0.10 + 23x0.40 /1M


def test_stream_exhausted_records_the_last_running_total(calls: List[LLMCall]) -> None:
    client = gemini_api()
    with replay("openinference/google-genai/test_streaming_text_content.yaml"):
        stream = client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
        assert calls == []
        chunks = list(stream)

    assert len(chunks) == 12
    [call] = calls
    assert (call.streamed, call.usage_source) == (True, "stream")
    assert buckets(call) == (9, 0, 527, 0)  # prompt 10 in chunks 1-11, 9 in the last
    assert cost(call) == Decimal("0.0002117")  # 9x0.10 + 527x0.40 /1M


def test_stream_broken_off_records_once_what_it_saw(calls: List[LLMCall]) -> None:
    client = gemini_api()
    with replay("openinference/google-genai/test_streaming_text_content.yaml"):
        stream = client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
        for _chunk in stream:
            break
        del stream
        gc.collect()

    [call] = calls
    assert call.usage_source == "stream_partial"
    assert call.usage is not None and call.usage.input_tokens == 10


def test_stream_never_iterated_sends_nothing_and_records_nothing(calls: List[LLMCall]) -> None:
    client = gemini_api()
    with replay("openinference/google-genai/test_streaming_text_content.yaml") as cassette:
        stream = client.models.generate_content_stream(model="gemini-2.0-flash", contents="hi")
        del stream
        gc.collect()
        assert cassette.play_count == 0

    assert calls == []


def test_vertex_generate_and_stream(calls: List[LLMCall]) -> None:
    client = vertex_ai()
    folder = "otel-python-contrib/google-genai"
    case = "[logcontent-gemini-2.5-flash-vertexaiapi-sync-default]"
    sync, streamed = f"{folder}/test_non_streaming{case}.yaml", f"{folder}/test_streaming{case}.yaml"
    with replay(sync):
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    with replay(streamed):
        list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi"))

    one, two = calls
    assert one.extra == {"platform": "vertex_ai"} and one.provider == "google"
    assert buckets(one) == (8, 0, 1910, 1477)  # 433 candidates + 1477 thoughts
    assert cost(one) == Decimal("0.0047774")  # 8x0.30 + 1910x2.50 /1M
    assert buckets(two) == (8, 0, 2581, 2193)  # usage on the last chunk only
    assert two.usage_source == "stream"


async def test_async_generate_and_stream(calls: List[LLMCall]) -> None:
    client = gemini_api()
    with replay("openinference/google-genai/test_generate_content.yaml"):
        await client.aio.models.generate_content(model="gemini-2.0-flash", contents="hi")
    with replay("crewai/google-genai/test_google_async_streaming_returns_usage_metrics.yaml"):
        stream = await client.aio.models.generate_content_stream(model="gemini-2.0-flash-exp", contents="hi")
        async for _chunk in stream:
            pass

    one, two = calls
    assert (one.streamed, buckets(one)) == (False, (45, 0, 23, 0))
    assert (two.streamed, two.usage_source, buckets(two)) == (True, "stream", (163, 0, 13, 0))
    assert two.model == "gemini-2.0-flash-exp"


def test_failed_request_records_nothing_and_raises_unchanged(calls: List[LLMCall]) -> None:
    # Not a recording: nothing listens on port 9 of localhost, so the request fails for real.
    client = genai.Client(api_key="test", http_options=types.HttpOptions(base_url="http://127.0.0.1:9"))
    with pytest.raises(Exception) as raised:
        client.models.generate_content(model="gemini-2.0-flash", contents="hi")

    assert "bearlumen" not in type(raised.value).__module__
    assert calls == []


def test_uninstall_restores_the_very_methods(integration: Callable[[str], Any]) -> None:
    module = integration("gemini")
    assert all(vars(getattr(models, owner))[name] is not ORIGINALS[owner, name] for owner, name in ORIGINALS)
    module.install()  # idempotent
    module.uninstall()
    module.uninstall()
    assert all(vars(getattr(models, owner))[name] is ORIGINALS[owner, name] for owner, name in ORIGINALS)


# -- end to end --------------------------------------------------------------------------------------


@pytest.fixture
def instrumented(deployment: Tuple[str, str]) -> Iterator[bearlumen.Client]:
    with metered(deployment, "gemini") as reader:
        yield reader


def test_instrumented_gemini_calls_land_in_the_service(instrumented: bearlumen.Client) -> None:
    client = gemini_api()
    path = "crewai/google-genai/TestAgentMultimodalGemini.test_video_file[gemini-gemini-2.5-flash].yaml"
    with bearlumen.workflow("video"), bearlumen.agent("watcher"), replay(path):
        first = client.models.generate_content(model="gemini-2.5-flash", contents="describe")
        client.models.generate_content(model="gemini-2.5-flash", contents="describe")
    bearlumen.track(first)  # tracked by hand as well: the same response id, recorded once

    assert bearlumen.flush(timeout=60) is True
    events = cast(List[Dict[str, Any]], instrumented.usage.query(limit=100)["events"])
    by_id = {event["metadata"]["response_id"]: event for event in events}
    assert len(events) == 2
    one, two = by_id["RkqOaceVIpG9_uMPiqjg8As"], by_id["SkqOadVVrN7-4w_FvcPwDg"]
    assert (one["quantity"], Decimal(one["providerCostUsd"])) == (1787, Decimal("0.0012399"))
    assert (two["quantity"], Decimal(two["providerCostUsd"])) == (1905, Decimal("0.00115762"))
    assert (two["workflowId"], two["agentId"]) == ("video", "watcher")
    assert two["metadata"]["cache_read_tokens"] == 1122
