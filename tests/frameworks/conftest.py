"""Fixtures of the agent-framework tests.

- `host`: ``host(turns, rejects_stream_options=False)`` starts a local OpenAI-compatible host (a stand-in
  answering in OpenAI's documented Chat Completions shapes, see examples/_compatible_host.py) that is
  stopped after the test. Frameworks need scripted answers (a tool call named after the test's tool, a
  handoff to the test's agent) that no recording has.
- `metering`: the openai patch and both framework integrations installed, calls collected by `sink`;
  ``metering(stream_usage_hosts=[...])`` passes options to the openai patch. Uninstalled afterwards.
- Every test must leave the attribution as it found it.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Sequence

import pytest
from bearlumen.integrations import _stream_usage, openai_agents, pydantic_ai
from bearlumen.integrations import openai as openai_integration

from bearlumen.scopes import EMPTY, current_attribution
from examples._compatible_host import CompatibleHost, Turn
from tests.support.sinks import ListSink


@pytest.fixture
def host() -> Iterator[Callable[..., CompatibleHost]]:
    started: List[CompatibleHost] = []

    def start(turns: Sequence[Turn], **options: Any) -> CompatibleHost:
        server = CompatibleHost(turns, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def _quiet_agents_tracing() -> None:
    # The Agents SDK's default processor exports traces to OpenAI: none of that in tests (ours is added
    # by install(), after this).
    import agents

    agents.set_trace_processors([])
    openai_agents._processor = None


@pytest.fixture
def metering(sink: ListSink) -> Iterator[Callable[..., ListSink]]:
    def install(**openai_options: Any) -> ListSink:
        openai_integration.install(**openai_options)
        pydantic_ai.install()
        openai_agents.install()
        return sink

    try:
        yield install
    finally:
        openai_agents.uninstall()
        pydantic_ai.uninstall()
        openai_integration.uninstall()
        _stream_usage.forget_rejections()
        _stream_usage.configure(None)


@pytest.fixture(autouse=True)
def _scope_is_left_clean() -> Iterator[None]:
    yield
    assert current_attribution() == EMPTY, "a test leaked an attribution scope"


@pytest.fixture
def integration_anthropic() -> Iterator[None]:
    """The anthropic patch installed for the test."""
    from bearlumen.integrations import anthropic

    anthropic.install()
    try:
        yield
    finally:
        anthropic.uninstall()
