"""Bedrock integration (Converse, ConverseStream): recorded traffic through the real boto3 client.

Costs computed by hand from the AWS list prices (USD / 1M tokens): Nova Micro 0.035 in / 0.14 out, Nova
Lite 0.06 / 0.24, Claude 3 Haiku 0.25 / 1.25. SigV4 signatures are not matched: dummy credentials replay.
"""

from __future__ import annotations

import gc
from decimal import Decimal
from typing import Any, Callable, List, Tuple

import boto3
import botocore.client
import pytest

import bearlumen
from bearlumen.metering.event import build_event
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall
from tests.support.cassettes import replay
from tests.support.sinks import ListSink

ORIGINAL = vars(botocore.client.BaseClient)["_make_api_call"]
MESSAGES: Any = [{"role": "user", "content": [{"text": "Tell me a joke"}]}]


@pytest.fixture
def calls(integration: Callable[[str], Any], sink: ListSink) -> List[LLMCall]:
    integration("bedrock")
    return sink.calls


def runtime() -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def figures(call: LLMCall) -> Tuple[str, str, int, int]:
    assert call.usage is not None
    return call.operation, str(call.model), call.usage.input_tokens, call.usage.output_tokens


def cost(call: LLMCall) -> Decimal:
    return Decimal(build_event(call, PriceBook(), "key")["metadata"]["provider_cost_usd"])


def test_converse_each_call_once(calls: List[LLMCall]) -> None:
    client = runtime()
    with (
        bearlumen.agent("planner"),
        replay("otel-python-contrib/bedrock/test_converse_tool_call_with_content.yaml"),
    ):
        first = client.converse(modelId="amazon.nova-micro-v1:0", messages=MESSAGES)
        client.converse(modelId="amazon.nova-micro-v1:0", messages=MESSAGES)

    one, two = calls
    assert (one.integration, one.provider) == ("bedrock", "aws")
    assert one.response_id == first["ResponseMetadata"]["RequestId"]
    assert figures(one) == ("converse", "amazon.nova-micro-v1:0", 415, 190)
    assert figures(two) == ("converse", "amazon.nova-micro-v1:0", 553, 59)
    assert one.attribution.agent_id == "planner"
    assert cost(one) == Decimal("0.000041125")  # 415x0.035 + 190x0.14 /1M


def test_converse_stream_is_the_same_object_and_records_at_its_end(calls: List[LLMCall]) -> None:
    client = runtime()
    with replay("openinference/bedrock/TestConverseStream.test_invoke_text_message.yaml"):
        response = client.converse_stream(modelId="anthropic.claude-3-haiku-20240307-v1:0", messages=MESSAGES)
        stream = response["stream"]
        assert isinstance(stream, botocore.eventstream.EventStream)
        assert calls == []
        events = list(stream)

    assert any("metadata" in event for event in events)
    [call] = calls
    assert (call.streamed, call.usage_source) == (True, "stream")
    assert figures(call) == ("converse_stream", "anthropic.claude-3-haiku-20240307-v1:0", 18, 181)
    assert cost(call) == Decimal("0.00023075")  # 18x0.25 + 181x1.25 /1M


def test_converse_stream_dropped_unread_records_once(calls: List[LLMCall]) -> None:
    client = runtime()
    with replay("openllmetry/bedrock/test_nova_converse_stream.yaml"):
        response = client.converse_stream(modelId="amazon.nova-lite-v1:0", messages=MESSAGES)
        del response
        gc.collect()

    [call] = calls
    assert (call.usage_source, call.usage) == ("unavailable", None)


def test_other_services_and_failures_are_not_recorded(calls: List[LLMCall]) -> None:
    client = runtime()
    # Not a recording: nothing listens on port 9, so the request fails for real.
    broken = boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=botocore.client.Config(retries={"max_attempts": 0}, connect_timeout=1),
    )
    with pytest.raises(Exception) as raised:
        broken.converse(modelId="amazon.nova-micro-v1:0", messages=MESSAGES)
    assert "bearlumen" not in type(raised.value).__module__
    assert client.meta.service_model.service_name == "bedrock-runtime"
    assert calls == []


def test_uninstall_restores_the_very_method(integration: Callable[[str], Any]) -> None:
    module = integration("bedrock")
    assert vars(botocore.client.BaseClient)["_make_api_call"] is not ORIGINAL
    module.uninstall()
    module.uninstall()
    assert vars(botocore.client.BaseClient)["_make_api_call"] is ORIGINAL
