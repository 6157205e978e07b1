"""Fixtures of the agent frameworks that cannot share the main virtualenv (their pins conflict with
`openai-agents`): each test file here runs in a virtualenv of its own built by `.ci/frameworks`, and is
skipped in the main suite when its framework is not installed.

- `reader`: ``reader(**instrument_options)``, instrument() into a fresh tenant of the real service
  (SQLite), the client reading it back (from tests/frameworks/test_frameworks_e2e.py).
- `host`: the local OpenAI-compatible host of tests/frameworks (a stand-in answering in OpenAI's documented
  Chat Completions shapes, see examples/_compatible_host.py), stopped after the test.
- `metering`: the openai patch (asking the local host for stream usage) and ``metering(framework)``'s
  integration installed, calls collected by `sink`; uninstalled afterwards.
- Every test must leave the attribution as it found it (`_scope_is_left_clean`, autouse).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Iterator, List

import pytest
from bearlumen.integrations import _stream_usage
from bearlumen.integrations import openai as openai_integration

from tests.frameworks.conftest import _scope_is_left_clean, host  # noqa: F401  (the same fixtures)
from tests.frameworks.test_frameworks_e2e import reader  # noqa: F401  (instrument() into the real service)
from tests.support.sinks import ListSink

#: The local host, listed so that the frameworks' streamed chat completions report exact usage.
LOCAL_HOSTS = ["127.0.0.1"]


@pytest.fixture
def metering(sink: ListSink) -> Iterator[Callable[[str], ListSink]]:
    installed: List[Any] = []

    def install(framework: str) -> ListSink:
        openai_integration.install(stream_usage_hosts=LOCAL_HOSTS)
        module = importlib.import_module(f"bearlumen.integrations.{framework}")
        module.install()
        installed.append(module)
        return sink

    try:
        yield install
    finally:
        for module in installed:
            module.uninstall()
        openai_integration.uninstall()
        _stream_usage.forget_rejections()
        _stream_usage.configure(None)
