"""LangChain chat models over the clients the new integrations patch: one event per call, LangChain's facts.

With the provider integration and the automatic LangChain handler both installed (what `instrument()`
does), each model call is seen by both layers and must be recorded once: the provider patch's exact
record, taken by LangChain's collector, with the run's facts laid over it.

- langchain-google-genai (4.x) calls `google-genai`'s `models.generate_content`;
- langchain-aws `ChatBedrockConverse` calls boto3's `converse`;
- langchain-ollama calls `ollama.Client.chat`;
- langchain-litellm `ChatLiteLLM` calls `litellm.completion`.
langchain-mistralai is not covered: it posts to Mistral over its own httpx client, not through
`mistralai`, so only the LangChain handler sees its calls (one event, as for any unpatched provider).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Tuple

import pytest
from bearlumen.integrations import langchain as lc

import bearlumen
from bearlumen.metering.record import LLMCall
from tests.integrations.conftest import integration  # noqa: F401  (the fixture, shared)
from tests.support.cassettes import replay
from tests.support.sinks import ListSink


@pytest.fixture
def patched(request: pytest.FixtureRequest) -> Iterator[Callable[[str], Any]]:
    install: Callable[[str], Any] = request.getfixturevalue("integration")
    lc.install()
    try:
        yield install
    finally:
        lc.uninstall()


def figures(call: LLMCall) -> Tuple[int, int]:
    assert call.usage is not None
    return call.usage.total_input_tokens, call.usage.output_tokens


def taken_by_langchain(call: LLMCall, name: str) -> None:
    assert call.integration == name  # the provider patch's exact record ...
    assert call.extra["framework"] == "langchain"  # ... with the LangChain run's facts over it
    assert "langchain_run_id" in call.extra
    assert call.attribution.agent_id == "lc-agent"


def test_gemini(patched: Callable[[str], Any], sink: ListSink) -> None:
    from langchain_google_genai import ChatGoogleGenerativeAI

    patched("gemini")
    model = ChatGoogleGenerativeAI(
        model="gemini-2.5-flash", google_api_key="test", api_version="v1beta", max_retries=0
    )
    with bearlumen.agent("lc-agent"), replay("openinference/google-genai/test_validate_token_counts.yaml"):
        model.invoke("hi")
    [call] = sink.calls
    taken_by_langchain(call, "gemini")


def test_bedrock_converse(patched: Callable[[str], Any], sink: ListSink) -> None:
    import boto3
    from langchain_aws import ChatBedrockConverse

    patched("bedrock")
    client = boto3.client(
        "bedrock-runtime", region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    model = ChatBedrockConverse(model="amazon.nova-micro-v1:0", client=client, region_name="us-east-1")
    with (
        bearlumen.agent("lc-agent"),
        replay("otel-python-contrib/bedrock/test_converse_tool_call_with_content.yaml"),
    ):
        model.invoke("Tell me a joke")
    [call] = sink.calls
    taken_by_langchain(call, "bedrock")
    assert figures(call) == (415, 190)


def test_ollama(patched: Callable[[str], Any], sink: ListSink) -> None:
    from langchain_ollama import ChatOllama

    patched("ollama")
    model = ChatOllama(model="llama3", base_url="http://127.0.0.1:11434")
    with (
        bearlumen.agent("lc-agent"),
        replay("openllmetry/ollama/test_ollama_chat_legacy.yaml", ignore_localhost=False),
    ):
        model.invoke("Tell me a joke")
    [call] = sink.calls
    taken_by_langchain(call, "ollama")


def test_litellm(patched: Callable[[str], Any], sink: ListSink) -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from langchain_litellm import ChatLiteLLM

    patched("litellm")
    model = ChatLiteLLM(model="anthropic/claude-3-5-haiku-20241022", api_key="test", max_retries=0)
    with bearlumen.agent("lc-agent"), replay("openinference/litellm/TestTokenCounts.test_anthropic.yaml"):
        model.invoke("Hello")
    [call] = sink.calls
    taken_by_langchain(call, "litellm")
    assert figures(call) == (107, 21)
