"""Bedrock InvokeModel / InvokeModelWithResponseStream: recorded traffic through the real boto3 client.

Costs computed by hand from the AWS list prices (USD / 1M tokens): Claude 3.5 Haiku 0.80 in / 4.00 out /
1.00 cache write, Nova Lite 0.06 / 0.24, Llama 3 70B 2.65 / 3.50, Mistral 7B 0.15 / 0.20, Titan Text
Express 0.20 / 0.60, Claude 3 Sonnet and Claude 3.5 Sonnet 3.00 / 15.00. Cohere Command and a SageMaker
imported model have no list price: unpriced, never 0.
"""

from __future__ import annotations

import asyncio
import gc
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import anthropic
import boto3
import botocore.eventstream
import botocore.response
import pytest
import yaml  # type: ignore[import-untyped,unused-ignore]

import bearlumen
from bearlumen.metering.record import LLMCall
from tests.support.cassettes import CASSETTES, replay
from tests.support.figures import buckets, cost
from tests.support.metered import metered
from tests.support.sinks import ListSink

STREAM_CLAUDE = "openinference/bedrock/TestInvokeModelWithStreamResponse.test_invoke.yaml"


@pytest.fixture
def calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("bedrock")
    return sink.calls


def runtime() -> Any:
    return boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )


INVOKE = [
    # cassette, modelId, (input, cache read, cache write, output), cost
    (
        "openllmetry/bedrock/test_prompt_cache.yaml",  # Anthropic body, cache write 18131
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        (4, 0, 18131, 50),
        Decimal("0.0183342"),  # 4x0.8 + 18131x1.0 + 50x4 /1M
    ),
    (
        "openllmetry/bedrock/test_nova_completion.yaml",  # body usage has inputTokens only (guardrail)
        "amazon.nova-lite-v1:0",
        (30, 0, 0, 51),
        Decimal("0.00001404"),  # 30x0.06 + 51x0.24 /1M
    ),
    (
        "openllmetry/bedrock/test_meta_llama3_completion.yaml",
        "meta.llama3-70b-instruct-v1:0",
        (8, 0, 0, 35),
        Decimal("0.0001437"),  # 8x2.65 + 35x3.5 /1M
    ),
    (
        "otel-python-contrib/bedrock/test_invoke_model_with_content[mistral.mistral].yaml",  # headers only
        "mistral.mistral-7b-instruct-v0:2",
        (6, 0, 0, 10),
        Decimal("0.0000029"),  # 6x0.15 + 10x0.2 /1M
    ),
    ("openllmetry/bedrock/test_cohere_completion.yaml", "cohere.command-text-v14", (9, 0, 0, 112), None),
    (
        "openllmetry/bedrock/test_imported_model_completion.yaml",
        "arn:aws:sagemaker:us-east-1:767398002385:endpoint/endpoint-quick-start-idr7y",
        (6, 0, 0, 100),
        None,
    ),
]


@pytest.mark.parametrize("cassette, model, expected, price", INVOKE, ids=[c[1] for c in INVOKE])
def test_invoke_model_each_family_once_from_the_billed_headers(
    calls: List[LLMCall], cassette: str, model: str, expected: Tuple[int, int, int, int], price: Any
) -> None:
    recorded = _recorded_bodies(cassette)[0]
    with bearlumen.agent("writer"), replay(cassette):
        response = runtime().invoke_model(modelId=model, body=json.dumps({"prompt": "hi"}))

    [call] = calls
    assert (call.integration, call.provider, call.operation) == ("bedrock", "aws", "invoke_model")
    assert (call.model, call.streamed, call.usage_source) == (model, False, "response")
    assert call.response_id == response["ResponseMetadata"]["RequestId"]
    assert call.attribution.agent_id == "writer"
    assert buckets(call) == expected
    assert cost(call) == price
    # the body was left for the user, unread and whole
    assert isinstance(response["body"], botocore.response.StreamingBody)
    assert response["body"].read() == recorded


STREAMS = [
    # Anthropic: message_delta says 130 output tokens, invocationMetrics (what Bedrock bills) 98
    (STREAM_CLAUDE, "anthropic.claude-3-5-sonnet-20240620-v1:0", (702, 0, 0, 98), Decimal("0.003576")),
    (
        "openllmetry/bedrock/test_anthropic_3_completion_streaming.yaml",
        "anthropic.claude-3-sonnet-20240229-v1:0",
        (16, 0, 0, 21),
        Decimal("0.000363"),  # 16x3 + 21x15 /1M
    ),
    (
        "openllmetry/bedrock/test_nova_invoke_stream.yaml",
        "amazon.nova-lite-v1:0",
        (30, 0, 0, 55),
        Decimal("0.000015"),  # 30x0.06 + 55x0.24 /1M
    ),
    (
        "openllmetry/bedrock/test_titan_invoke_stream.yaml",  # counts sent as floats (28.0)
        "amazon.titan-text-express-v1",
        (28, 0, 0, 188),
        Decimal("0.0001184"),  # 28x0.2 + 188x0.6 /1M
    ),
]


@pytest.mark.parametrize("cassette, model, expected, price", STREAMS, ids=[c[1] for c in STREAMS])
def test_invoke_stream_is_the_same_event_stream_and_records_at_its_end(
    calls: List[LLMCall], cassette: str, model: str, expected: Tuple[int, int, int, int], price: Decimal
) -> None:
    with replay(cassette):
        plain = list(runtime().invoke_model_with_response_stream(modelId=model, body="{}")["body"])
    assert len(calls) == 1
    calls.clear()

    with replay(cassette):
        response = runtime().invoke_model_with_response_stream(modelId=model, body="{}")
        stream = response["body"]
        assert isinstance(stream, botocore.eventstream.EventStream)
        assert calls == []
        events = list(stream)

    assert events == plain  # the caller sees every event unchanged
    [call] = calls
    assert (call.operation, call.model, call.streamed) == ("invoke_model_with_response_stream", model, True)
    assert call.usage_source == "stream"
    assert call.response_id == response["ResponseMetadata"]["RequestId"]
    assert buckets(call) == expected
    assert cost(call) == price


def test_inference_profile_stream_priced_as_billed(calls: List[LLMCall]) -> None:
    cassette = (
        "otel-python-contrib/bedrock/"
        "test_invoke_model_with_response_stream_with_content_tool_call[anthropic.claude].yaml"
    )
    model = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
    with replay(cassette):
        client = runtime()
        for _ in range(2):
            for _event in client.invoke_model_with_response_stream(modelId=model, body="{}")["body"]:
                pass

    one, two = calls
    assert (one.model, buckets(one), buckets(two)) == (model, (392, 0, 0, 90), (603, 0, 0, 146))
    assert cost(one) == Decimal("0.002526")  # 392x3 + 90x15 /1M (message_delta said 134)
    assert cost(two) == Decimal("0.003999")  # 603x3 + 146x15 /1M


def test_invoke_stream_closed_early_records_what_it_saw(calls: List[LLMCall]) -> None:
    with replay(STREAM_CLAUDE):
        stream = runtime().invoke_model_with_response_stream(
            modelId="anthropic.claude-3-5-sonnet-20240620-v1:0", body="{}"
        )["body"]
        first = next(iter(stream))
        assert b"message_start" in first["chunk"]["bytes"]
        stream.close()
        stream.close()

    [call] = calls
    # message_start's own counts: input 702, output 1 so far
    assert (call.usage_source, buckets(call)) == ("stream_partial", (702, 0, 0, 1))


def test_invoke_stream_abandoned_mid_way_records_once(calls: List[LLMCall]) -> None:
    with replay(STREAM_CLAUDE):
        response = runtime().invoke_model_with_response_stream(
            modelId="anthropic.claude-3-5-sonnet-20240620-v1:0", body="{}"
        )
        for _event in response["body"]:
            break
        del response, _event
        gc.collect()

    [call] = calls
    assert (call.usage_source, buckets(call)) == ("stream_partial", (702, 0, 0, 1))


def test_invoke_stream_failing_mid_way_raises_unchanged_and_records_once(
    calls: List[LLMCall], tmp_path: Path
) -> None:
    # A fault no recording has: the recorded stream with one byte of its last event's payload flipped, so
    # botocore's CRC check fails on it as it would on a corrupted connection.
    cassette = yaml.safe_load((CASSETTES / STREAM_CLAUDE).read_text())
    body = bytearray(cassette["interactions"][0]["response"]["body"]["string"])
    body[-10] ^= 0xFF
    cassette["interactions"][0]["response"]["body"]["string"] = bytes(body)
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump(cassette))

    seen = []
    with replay(str(broken)), pytest.raises(botocore.eventstream.ChecksumMismatch) as raised:
        for event in runtime().invoke_model_with_response_stream(
            modelId="anthropic.claude-3-5-sonnet-20240620-v1:0", body="{}"
        )["body"]:
            seen.append(event)
    assert "bearlumen" not in type(raised.value).__module__
    assert len(seen) > 1
    [call] = calls
    assert (call.usage_source, buckets(call)) == ("stream_partial", (702, 0, 0, 130))


def test_anthropic_bedrock_client_is_metered_once_by_the_anthropic_integration(
    integration: Callable[[str], Any], sink: ListSink
) -> None:
    integration("bedrock")
    integration("anthropic")
    client = anthropic.AsyncAnthropicBedrock(
        aws_region="us-east-1", aws_access_key="test", aws_secret_key="test", max_retries=0
    )
    with replay("openllmetry/bedrock/test_async_anthropic_bedrock_regular_create.yaml"):
        asyncio.run(
            client.messages.create(
                model="anthropic.claude-3-haiku-20240307-v1:0",
                max_tokens=100,
                messages=[{"role": "user", "content": "Tell me a joke"}],
            )
        )

    [call] = sink.calls
    assert call.integration == "anthropic"
    assert buckets(call) == (17, 0, 0, 50)


def _recorded_bodies(cassette: str) -> List[bytes]:
    data = yaml.safe_load((CASSETTES / cassette).read_text())
    bodies = []
    for interaction in data["interactions"]:
        raw = interaction["response"]["body"]["string"]
        bodies.append(raw.encode() if isinstance(raw, str) else raw)
    return bodies


def test_instrumented_invoke_model_lands_in_the_service(deployment: Tuple[str, str]) -> None:
    with metered(deployment, "bedrock") as reader:
        client = runtime()
        with bearlumen.agent("analyst"), replay("openllmetry/bedrock/test_prompt_cache.yaml"):
            response = client.invoke_model(modelId="anthropic.claude-3-5-haiku-20241022-v1:0", body="{}")
        with replay(STREAM_CLAUDE):
            for _event in client.invoke_model_with_response_stream(
                modelId="anthropic.claude-3-5-sonnet-20240620-v1:0", body="{}"
            )["body"]:
                pass
        assert bearlumen.flush(timeout=60) is True
        events: List[Dict[str, Any]] = reader.usage.query(limit=100)["events"]  # type: ignore[assignment]

    by_quantity = {event["quantity"]: event for event in events}
    assert sorted(by_quantity) == [800, 18185]  # 702 + 98; 4 + 18131 + 50
    assert Decimal(by_quantity[18185]["providerCostUsd"]) == Decimal("0.0183342")
    assert by_quantity[18185]["agentId"] == "analyst"
    assert by_quantity[18185]["metadata"]["response_id"] == response["ResponseMetadata"]["RequestId"]
    assert Decimal(by_quantity[800]["providerCostUsd"]) == Decimal("0.003576")
