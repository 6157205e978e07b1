"""LangChain's usage shapes -> non-overlapping token buckets, and `ls_provider` -> provider.

The dicts below are the shapes langchain-openai / langchain-anthropic build (see
llm-client-api-surface.md §3.3) and the raw provider dicts some models leave in `llm_output`.
"""

from __future__ import annotations

from typing import Any, Dict

import pytest
from bearlumen.integrations.langchain import provider_of, usage_from_raw, usage_from_usage_metadata

from bearlumen.metering.record import TokenUsage


@pytest.mark.parametrize(
    ("usage_metadata", "expected"),
    [
        # langchain-anthropic: 12 uncached + 50 read + 100 written (5m) = input_tokens 162
        (
            {
                "input_tokens": 162,
                "output_tokens": 6,
                "total_tokens": 168,
                "input_token_details": {
                    "cache_read": 50,
                    "cache_creation": 0,
                    "ephemeral_5m_input_tokens": 100,
                    "ephemeral_1h_input_tokens": 0,
                },
            },
            TokenUsage(input_tokens=12, cache_read_tokens=50, cache_write_tokens=100, output_tokens=6),
        ),
        # the 5m / 1h split of the writes
        (
            {
                "input_tokens": 112,
                "output_tokens": 6,
                "total_tokens": 118,
                "input_token_details": {"ephemeral_5m_input_tokens": 60, "ephemeral_1h_input_tokens": 40},
            },
            TokenUsage(input_tokens=12, cache_write_tokens=60, cache_write_1h_tokens=40, output_tokens=6),
        ),
        # a total and its breakdown both given (not zeroed): counted once
        (
            {
                "input_tokens": 112,
                "output_tokens": 6,
                "total_tokens": 118,
                "input_token_details": {
                    "cache_creation": 100,
                    "ephemeral_5m_input_tokens": 60,
                    "ephemeral_1h_input_tokens": 40,
                },
            },
            TokenUsage(input_tokens=12, cache_write_tokens=60, cache_write_1h_tokens=40, output_tokens=6),
        ),
        # langchain-openai: prompt includes cached; reasoning is part of output
        (
            {
                "input_tokens": 11,
                "output_tokens": 7,
                "total_tokens": 18,
                "input_token_details": {"audio": 0, "cache_read": 3},
                "output_token_details": {"audio": 0, "reasoning": 2},
            },
            TokenUsage(input_tokens=8, cache_read_tokens=3, output_tokens=7, reasoning_tokens=2),
        ),
        # no details at all
        (
            {"input_tokens": 5, "output_tokens": 1, "total_tokens": 6},
            TokenUsage(input_tokens=5, output_tokens=1),
        ),
        # an integration reporting uncached input (cache larger than the input): not subtracted
        (
            {
                "input_tokens": 4,
                "output_tokens": 1,
                "total_tokens": 5,
                "input_token_details": {"cache_read": 1163},
            },
            TokenUsage(input_tokens=4, cache_read_tokens=1163, output_tokens=1),
        ),
        # output reported without its reasoning: reasoning is added back
        (
            {"input_tokens": 5, "output_tokens": 10, "output_token_details": {"reasoning": 30}},
            TokenUsage(input_tokens=5, output_tokens=40, reasoning_tokens=30),
        ),
        # garbage never raises and never goes negative
        (
            {
                "input_tokens": None,
                "output_tokens": "7",
                "input_token_details": "x",
                "output_token_details": None,
            },
            TokenUsage(),
        ),
    ],
)
def test_usage_metadata(usage_metadata: Dict[str, Any], expected: TokenUsage) -> None:
    assert usage_from_usage_metadata(usage_metadata) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (  # OpenAI chat completions `token_usage`
            {
                "prompt_tokens": 1497,
                "completion_tokens": 1037,
                "total_tokens": 2534,
                "prompt_tokens_details": {"cached_tokens": 1408, "cache_write_tokens": None},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
            TokenUsage(input_tokens=89, cache_read_tokens=1408, output_tokens=1037),
        ),
        (  # OpenAI completions (legacy) `token_usage`
            {"completion_tokens": 145, "total_tokens": 206, "prompt_tokens": 61},
            TokenUsage(input_tokens=61, output_tokens=145),
        ),
        (  # raw Anthropic `usage`: input excludes cache
            {
                "input_tokens": 4,
                "output_tokens": 187,
                "cache_creation_input_tokens": 1163,
                "cache_read_input_tokens": 0,
                "cache_creation": None,
            },
            TokenUsage(input_tokens=4, cache_write_tokens=1163, output_tokens=187),
        ),
        (  # raw Anthropic with the 1h split and thinking tokens
            {
                "input_tokens": 12,
                "output_tokens": 50,
                "cache_read_input_tokens": 50,
                "cache_creation_input_tokens": 100,
                "cache_creation": {"ephemeral_5m_input_tokens": 70, "ephemeral_1h_input_tokens": 30},
                "output_tokens_details": {"thinking_tokens": 20},
            },
            TokenUsage(
                input_tokens=12,
                cache_read_tokens=50,
                cache_write_tokens=70,
                cache_write_1h_tokens=30,
                output_tokens=50,
                reasoning_tokens=20,
            ),
        ),
        (
            {"prompt_eval_count": 26, "eval_count": 298},
            TokenUsage(input_tokens=26, output_tokens=298),
        ),  # Ollama
        ({"something": "else"}, None),
    ],
)
def test_raw_usage(raw: Dict[str, Any], expected: TokenUsage) -> None:
    assert usage_from_raw(raw) == expected


@pytest.mark.parametrize(
    ("ls_provider", "provider"),
    [
        ("openai", "openai"),
        ("azure", "azure"),
        ("anthropic", "anthropic"),
        ("amazon_bedrock", "aws"),
        ("google_genai", "google"),
        ("google_vertexai", "google"),
        ("mistralai", "mistral"),
        ("ollama", "ollama"),
        ("xai", "x-ai"),
        ("Some-New-Provider", "some-new-provider"),
        (None, "unknown"),
        (42, "unknown"),
    ],
)
def test_provider_of(ls_provider: Any, provider: str) -> None:
    assert provider_of(ls_provider) == provider
