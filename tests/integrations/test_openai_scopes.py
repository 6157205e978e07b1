"""Attribution of openai calls: nested scopes, decorators, threads, asyncio tasks.

The calls replay real recorded bodies (served by an in-process transport, so that any number of calls
from any number of threads can be answered).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, List, Optional, Tuple

import openai
import pytest

import bearlumen
from bearlumen.metering.record import LLMCall
from bearlumen.scopes import ContextThreadPoolExecutor
from tests.support.clienthttp import openai_httpx
from tests.support.sinks import ListSink

MESSAGES: Any = [{"role": "user", "content": "Say this is a test"}]
CHAT = "otel-python-contrib/openai/test_chat_completion_with_content.yaml"


@pytest.fixture
def client(
    integration: Callable[[str], Any], recorded: Callable[[str], Any], serve: Callable[..., Any]
) -> openai.OpenAI:
    integration("openai")
    interaction = recorded(CHAT)[0]
    transport = serve(
        answer=lambda request: openai_httpx.Response(
            200, headers=interaction.headers, content=interaction.body
        )
    )
    return openai.OpenAI(
        api_key="sk-test", max_retries=0, http_client=openai_httpx.Client(transport=transport)
    )


def ask(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def where(call: LLMCall) -> Tuple[Optional[str], Optional[str]]:
    return call.attribution.workflow_id, call.attribution.agent_id


def test_nested_scopes_inner_wins_outer_restored(client: openai.OpenAI, sink: ListSink) -> None:
    ask(client)
    with bearlumen.workflow("onboarding"):
        with bearlumen.agent("planner"):
            ask(client)
            with bearlumen.agent("critic"):
                ask(client)
            ask(client)
        ask(client)
        with pytest.raises(KeyError), bearlumen.agent("doomed"):
            ask(client)
            raise KeyError("boom")
        ask(client)

    assert [where(c) for c in sink.calls] == [
        (None, None),
        ("onboarding", "planner"),
        ("onboarding", "critic"),
        ("onboarding", "planner"),
        ("onboarding", None),
        ("onboarding", "doomed"),
        ("onboarding", None),
    ]


def test_decorators_end_user_subscription_and_metadata(client: openai.OpenAI, sink: ListSink) -> None:
    @bearlumen.agent("researcher")
    def research() -> None:
        ask(client)

    with (
        bearlumen.workflow("report"),
        bearlumen.attributes(end_user_id="eu_1", subscription_id="sub_1", team="growth"),
    ):
        research()

    attribution = sink.calls[0].attribution
    assert where(sink.calls[0]) == ("report", "researcher")
    assert (attribution.end_user_id, attribution.subscription_id) == ("eu_1", "sub_1")
    assert dict(attribution.metadata) == {"team": "growth"}


def test_thread_pool_through_context_executor(client: openai.OpenAI, sink: ListSink) -> None:
    def work(agent: str) -> None:
        with bearlumen.agent(agent):
            ask(client)

    with bearlumen.workflow("batch"), ContextThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(work, [f"worker-{i}" for i in range(8)]))

    assert sorted(where(c) for c in sink.calls) == sorted(("batch", f"worker-{i}") for i in range(8))


def test_plain_threads_need_the_helper(client: openai.OpenAI, sink: ListSink) -> None:
    with bearlumen.workflow("batch"):
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(ask, client).result()  # a plain pool does not carry the context (Python's rule)
        thread = threading.Thread(target=bearlumen.propagate(ask), args=(client,))
        thread.start()
        thread.join()

    assert [where(c) for c in sink.calls] == [(None, None), ("batch", None)]


def test_each_call_is_attributed_once_across_threads(client: openai.OpenAI, sink: ListSink) -> None:
    barrier = threading.Barrier(6)

    def work(index: int) -> None:
        barrier.wait()
        with bearlumen.agent(f"a{index}"):
            for _ in range(5):
                ask(client)

    with bearlumen.workflow("load"), ContextThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(work, range(6)))

    assert len(sink.calls) == 30
    assert sorted(where(c) for c in sink.calls) == sorted(
        ("load", f"a{i}") for i in range(6) for _ in range(5)
    )


def test_calls_listing(client: openai.OpenAI, sink: ListSink) -> None:
    calls: List[LLMCall] = sink.calls
    with bearlumen.end_user("eu_9"):
        ask(client)
    assert calls[0].attribution.end_user_id == "eu_9"
