"""How runs start, end and fail: abandoned streams, cache hits, batches, dedupe between handlers and
layers, scopes across threads and tasks, and a handler that never breaks the chain.

Real recorded traffic through the real clients, except where a test says it uses a fake model (only to
drive shapes no recording has, and says why).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from decimal import Decimal
from typing import Any, Dict, List, Optional
from uuid import uuid4

import pytest
from bearlumen.integrations import langchain as lc
from langchain_core.caches import InMemoryCache
from langchain_core.callbacks import CallbackManager, CallbackManagerForLLMRun
from langchain_core.globals import set_llm_cache
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult, LLMResult
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_openai import ChatOpenAI

import bearlumen
from bearlumen.metering import record
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import (
    USAGE_FROM_RESPONSE,
    USAGE_UNAVAILABLE,
    LLMCall,
    TokenUsage,
)
from tests.support.cassettes import replay
from tests.support.sinks import ListSink

PRICES = PriceBook()
JOKE = "openllmetry/langchain/test_openai.yaml"  # gpt-4o-mini: prompt=1497 (1408 cached) completion=1037
JOKE_USAGE = TokenUsage(input_tokens=89, cache_read_tokens=1408, output_tokens=1037)
STREAM = "openinference/langchain/test_records_token_counts_for_streaming_openai_llm.yaml"  # 18 / 15


def openai_chat(model: str = "gpt-4o-mini", **options: Any) -> ChatOpenAI:
    return ChatOpenAI(model=model, api_key="sk-test", max_retries=0, **options)  # type: ignore[arg-type]


def cost(call: LLMCall) -> Optional[Decimal]:
    return PRICES.price(call.provider, call.model, call.usage, call.timestamp).cost_usd


# -- streams that end early ----------------------------------------------------------------------


def test_abandoned_stream_is_recorded_once(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    """`break` out of a LangChain stream: LangChain reports an error; the provider billed what it sent.

    Alone, the handler records LangChain's partial result (no usage yet: `unavailable`) when the grace
    period ends. With the openai patch installed, the patch records the closed HTTP stream itself, just
    after LangChain's error, and the handler lays its attribution on that record: one event either way.
    """
    with replay(STREAM), bearlumen.agent("streamer"):
        for _chunk in openai_chat("gpt-3.5-turbo").stream("Hi", config=config):
            break
        lc.flush_pending()

    (call,) = sink.calls
    assert call.streamed is True
    assert call.attribution.agent_id == "streamer"
    assert "langchain_run_id" in call.extra
    if mode == "callback":
        assert (call.integration, call.usage, call.usage_source) == ("langchain", None, USAGE_UNAVAILABLE)
    else:
        assert call.integration == "openai"
        assert call.usage_source in ("stream_partial", "unavailable")


def test_grace_period_records_the_partial_result_without_a_provider_record(
    sink: ListSink, handler: Any
) -> None:
    with replay(STREAM):
        stream = openai_chat("gpt-3.5-turbo").stream("Hi", config={"callbacks": [handler]})
        next(stream)
        stream.close()
    assert sink.calls == []  # waiting for a provider record that will not come
    assert lc.open_runs()["grace"] == 1
    lc.flush_pending()
    (call,) = sink.calls
    assert (call.integration, call.usage_source, call.model) == (
        "langchain",
        USAGE_UNAVAILABLE,
        "gpt-3.5-turbo",
    )


def test_grace_timer_expires_by_itself(sink: ListSink, handler: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lc, "GRACE_SECONDS", 0.05)
    with replay(STREAM):
        stream = openai_chat("gpt-3.5-turbo").stream("Hi", config={"callbacks": [handler]})
        next(stream)
        stream.close()
    for _ in range(200):
        if sink.calls:
            break
        threading.Event().wait(0.01)
    assert len(sink.calls) == 1
    assert lc.open_runs()["grace"] == 0


def test_stream_consumed_to_its_last_chunk_then_closed(
    mode: str, config: Dict[str, Any], sink: ListSink
) -> None:
    """The usage chunk arrived before the caller stopped: recorded with the full usage."""
    with replay(STREAM):
        stream = openai_chat("gpt-3.5-turbo").stream("Hi", config=config)
        chunks = []
        for chunk in stream:
            chunks.append(chunk)
            if chunk.usage_metadata:
                break
        stream.close()
        lc.flush_pending()

    (call,) = sink.calls
    assert call.usage == TokenUsage(input_tokens=18, output_tokens=15)


# -- LangChain's own cache -------------------------------------------------------------------------


@pytest.fixture
def llm_cache() -> Any:
    set_llm_cache(InMemoryCache())
    try:
        yield
    finally:
        set_llm_cache(None)


def test_cache_hit_records_nothing(
    mode: str, config: Dict[str, Any], sink: ListSink, llm_cache: None
) -> None:
    model = openai_chat()
    with replay(JOKE):
        first = model.invoke("Tell me a joke", config=config)
        second = model.invoke("Tell me a joke", config=config)  # served by LangChain's cache: no API call

    assert first.content == second.content
    (call,) = sink.calls
    assert call.usage == JOKE_USAGE


# -- several handlers, several layers --------------------------------------------------------------


def test_user_handler_and_automatic_handler_record_once(
    sink: ListSink, instrumented: None, handler: Any
) -> None:
    with replay(JOKE):
        openai_chat().invoke("Tell me a joke", config={"callbacks": [handler]})
    (call,) = sink.calls
    assert call.usage == JOKE_USAGE


def test_two_user_handlers_record_once(sink: ListSink) -> None:
    first, second = lc.BearLumenCallbackHandler(), lc.BearLumenCallbackHandler()
    with replay(JOKE):
        openai_chat(callbacks=[second]).invoke("Tell me a joke", config={"callbacks": [first]})
    (call,) = sink.calls
    assert call.usage == JOKE_USAGE


def test_model_created_and_used_before_instrumentation(sink: ListSink) -> None:
    """An instance that already made a call before `install()` (its raw-response helper is cached)."""
    from bearlumen.integrations import anthropic as anthropic_integration
    from bearlumen.integrations import openai as openai_integration

    with replay("openllmetry/openai/test_chat.yaml"):  # four calls: completion 19 / 31 / 22 / 19
        early = openai_chat("gpt-3.5-turbo")
        early.invoke("first")  # not instrumented yet: not recorded
        openai_integration.install()
        anthropic_integration.install()
        lc.install()
        try:
            early.invoke("second")
            openai_chat("gpt-3.5-turbo").invoke("third")  # a new instance
            early.invoke("fourth")
        finally:
            lc.uninstall()
            anthropic_integration.uninstall()
            openai_integration.uninstall()

    assert [call.usage for call in sink.calls] == [
        TokenUsage(input_tokens=15, output_tokens=31),
        TokenUsage(input_tokens=15, output_tokens=22),
        TokenUsage(input_tokens=15, output_tokens=19),
    ]
    assert all("langchain_run_id" in call.extra for call in sink.calls)
    assert len({call.response_id for call in sink.calls}) == 3


def test_anthropic_model_created_and_used_before_instrumentation(sink: ListSink) -> None:
    from bearlumen.integrations import anthropic as anthropic_integration
    from bearlumen.integrations import openai as openai_integration
    from langchain_anthropic import ChatAnthropic

    # INDEX.tsv: #1 prompt=4 completion=187 cache_creation=1163; #2 prompt=4 completion=202 cache_read=1163
    with replay("openllmetry/anthropic/test_anthropic_prompt_caching_legacy.yaml"):
        early = ChatAnthropic(model="claude-3-5-sonnet-20240620", api_key="sk-ant-test", max_retries=0)  # type: ignore[call-arg,arg-type]
        early.invoke("first")  # not instrumented yet: not recorded
        openai_integration.install()
        anthropic_integration.install()
        lc.install()
        try:
            early.invoke("second")
        finally:
            lc.uninstall()
            anthropic_integration.uninstall()
            openai_integration.uninstall()

    (call,) = sink.calls
    assert call.usage == TokenUsage(input_tokens=4, cache_read_tokens=1163, output_tokens=202)
    assert call.response_id == "msg_01YGB3PuEANUSkLuzemhtNVF"
    assert "langchain_run_id" in call.extra


def test_provider_call_outside_any_run_is_untouched(sink: ListSink, instrumented: None) -> None:
    """A direct openai call after a LangChain run: recorded by the openai patch alone, as before."""
    import openai

    with replay("openllmetry/openai/test_chat.yaml"):
        openai_chat("gpt-3.5-turbo").invoke("a")
        openai.OpenAI(api_key="sk-test", max_retries=0).chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "b"}]
        )

    first, second = sink.calls
    assert "langchain_run_id" in first.extra
    assert "framework" not in second.extra and second.integration == "openai"
    assert second.usage == TokenUsage(input_tokens=15, output_tokens=31)


def test_batch_of_prompts_in_one_generate_call(sink: ListSink, handler: Any) -> None:
    """`generate()` with two message lists opens two runs before either model call (one batch)."""
    from bearlumen.integrations import openai as openai_integration
    from langchain_core.messages import HumanMessage

    openai_integration.install()
    try:
        with replay("openllmetry/openai/test_chat.yaml"):
            result = openai_chat("gpt-3.5-turbo").generate(
                [[HumanMessage("a")], [HumanMessage("b")]], callbacks=[handler]
            )
    finally:
        openai_integration.uninstall()

    assert len(result.generations) == 2
    assert [call.usage for call in sink.calls] == [
        TokenUsage(input_tokens=15, output_tokens=19),
        TokenUsage(input_tokens=15, output_tokens=31),
    ]
    assert len({call.extra["langchain_run_id"] for call in sink.calls}) == 2
    assert all(call.integration == "openai" for call in sink.calls)


# -- attribution -----------------------------------------------------------------------------------


def test_scopes_win_over_run_metadata(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    metadata = {
        "bearlumen_agent_id": "from-metadata",
        "bearlumen_workflow_id": "wf-metadata",
        "bearlumen_subscription_id": "sub_1",
    }
    with replay(JOKE), bearlumen.agent("from-scope"), bearlumen.attributes(team="search"):
        openai_chat().invoke("joke", config={**config, "metadata": metadata})

    (call,) = sink.calls
    assert call.attribution.agent_id == "from-scope"
    assert call.attribution.workflow_id == "wf-metadata"
    assert call.attribution.subscription_id == "sub_1"
    assert call.attribution.metadata == {"team": "search"}


def test_scope_reaches_a_model_run_in_a_plain_thread(
    mode: str, config: Dict[str, Any], sink: ListSink
) -> None:
    """A chain step hands the model call to a plain thread (no context): the run's parent carries it."""

    def in_a_thread(text: str, config: RunnableConfig) -> str:
        result: List[Any] = []
        worker = threading.Thread(target=lambda: result.append(openai_chat().invoke(text, config=config)))
        worker.start()
        worker.join()
        return str(result[0].content)

    chain = RunnableLambda(in_a_thread)
    with replay(JOKE), bearlumen.workflow("threads"), bearlumen.end_user("cus_9"):
        chain.invoke("joke", config=config)

    (call,) = sink.calls
    assert (call.attribution.workflow_id, call.attribution.end_user_id) == ("threads", "cus_9")
    assert call.usage == JOKE_USAGE


def test_scopes_follow_batch_threads_and_async_tasks(
    mode: str, config: Dict[str, Any], sink: ListSink
) -> None:
    model = openai_chat("gpt-3.5-turbo")
    with replay("openllmetry/openai/test_chat.yaml"), bearlumen.workflow("wf-batch"):
        model.batch(["a", "b"], config=config)

        async def in_tasks() -> None:
            with bearlumen.agent("async-agent"):
                await asyncio.gather(model.ainvoke("c", config=config), model.ainvoke("d", config=config))

        asyncio.run(in_tasks())

    assert len(sink.calls) == 4
    assert {call.attribution.workflow_id for call in sink.calls} == {"wf-batch"}
    assert [call.attribution.agent_id for call in sink.calls].count("async-agent") == 2


# -- a model bearlumen does not patch --------------------------------------------------------------


class FakeProviderChat(GenericFakeChatModel):
    """A fake chat model reporting LangChain's standard usage as a given provider would.

    Fake on purpose: no recording of Bedrock / Google / Ollama traffic is vendored, and what this checks is
    the handler's reading of LangChain's standard fields, which is the same for every provider.
    """

    ls_provider: str = "amazon_bedrock"
    ls_model: str = "anthropic.claude-3-5-sonnet-20240620-v1:0"

    def _get_ls_params(self, stop: Optional[List[str]] = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = self.ls_provider
        params["ls_model_name"] = self.ls_model
        return params


def fake(provider: str, model: str, message: AIMessage) -> FakeProviderChat:
    return FakeProviderChat(messages=iter([message]), ls_provider=provider, ls_model=model)


def test_unpatched_providers_are_metered_and_priced(sink: ListSink, handler: Any) -> None:
    bedrock = fake(
        "amazon_bedrock",
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        AIMessage(
            "hi",
            usage_metadata={
                "input_tokens": 1200,
                "output_tokens": 300,
                "total_tokens": 1500,
                "input_token_details": {"cache_read": 1000},
            },
            response_metadata={"model_name": "anthropic.claude-3-5-sonnet-20240620-v1:0"},
        ),
    )
    gemini = fake(
        "google_genai",
        "gemini-2.0-flash",
        AIMessage(
            "hi",
            usage_metadata={"input_tokens": 100, "output_tokens": 40, "total_tokens": 140},
            response_metadata={"model_name": "gemini-2.0-flash"},
        ),
    )
    local = fake(
        "ollama",
        "llama3.2",
        AIMessage("hi", usage_metadata={"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}),
    )
    for model in (bedrock, gemini, local):
        model.invoke("hi", config={"callbacks": [handler]})

    aws, google, ollama = sink.calls
    assert (aws.provider, aws.usage) == (
        "aws",
        TokenUsage(input_tokens=200, cache_read_tokens=1000, output_tokens=300),
    )
    # Bedrock claude-3.5-sonnet: $3 input, $0.30 cache read, $15 output per 1M tokens
    assert cost(aws) == Decimal("0.0054") == (200 * Decimal(3) + 1000 * Decimal("0.3") + 300 * 15) / 1_000_000
    assert aws.extra["langchain_provider"] == "amazon_bedrock"
    assert (google.provider, google.model, cost(google)) == (
        "google",
        "gemini-2.0-flash",
        Decimal("0.000026"),
    )
    assert (ollama.provider, ollama.model) == ("ollama", "llama3.2")
    price = PRICES.price(ollama.provider, ollama.model, ollama.usage, ollama.timestamp)
    assert (price.cost_usd, price.status) == (None, "unpriced")  # a local model has no list price
    assert all(call.usage_source == USAGE_FROM_RESPONSE for call in sink.calls)


# -- never break the chain -------------------------------------------------------------------------


class ExplodingSink:
    def submit(self, call: LLMCall) -> None:
        raise RuntimeError("sink down")


def test_a_failing_sink_never_reaches_the_chain(handler: Any) -> None:
    previous = record.set_sink(ExplodingSink())
    try:
        with replay(JOKE):
            reply = openai_chat().invoke("joke", config={"callbacks": [handler]})
    finally:
        record.set_sink(previous)
    assert reply.content


@pytest.mark.parametrize(
    "response",
    [
        None,
        object(),
        LLMResult(generations=[]),
        LLMResult(generations=[[ChatGeneration(message=AIMessage("x", response_metadata={"id": 42}))]]),
        LLMResult(generations=[[]], llm_output={"token_usage": "garbage", "usage": [1, 2]}),
        LLMResult(
            generations=[[]], llm_output={"token_usage": {"prompt_tokens": None, "completion_tokens": "7"}}
        ),
    ],
)
def test_malformed_results_never_raise(sink: ListSink, handler: Any, response: Any) -> None:
    run_id = uuid4()
    handler.on_chat_model_start({"id": None}, [[]], run_id=run_id, metadata={"ls_provider": 7})
    handler.on_llm_new_token("x", run_id=run_id)
    handler.on_llm_end(response, run_id=run_id)
    (call,) = sink.calls
    assert call.provider == "unknown"
    assert call.usage_source in (USAGE_UNAVAILABLE, USAGE_FROM_RESPONSE, "stream")


def test_events_for_unknown_runs_and_garbage_arguments_never_raise(handler: Any) -> None:
    handler.on_llm_end(LLMResult(generations=[]), run_id=uuid4())
    handler.on_llm_error(RuntimeError("x"), run_id=uuid4())
    handler.on_llm_new_token("x", run_id=uuid4())
    handler.on_chain_end({}, run_id=uuid4())
    handler.on_tool_error(RuntimeError("x"), run_id=uuid4())
    handler.on_chat_model_start(None, None, run_id=uuid4(), metadata="not a dict")  # type: ignore[arg-type]
    handler.on_llm_start("serialized", None, run_id=uuid4(), invocation_params=[1])  # type: ignore[arg-type]
    # two starts that were never ended are open runs; end them as LangChain would
    for run_id in list(lc._llm_runs):
        handler.on_llm_error(RuntimeError("x"), run_id=run_id)


def test_model_error_before_output_records_nothing(sink: ListSink, handler: Any) -> None:
    run_id = uuid4()
    handler.on_chat_model_start({}, [[]], run_id=run_id, metadata={"ls_provider": "openai"})
    handler.on_llm_error(TimeoutError(), run_id=run_id, response=LLMResult(generations=[]))
    assert sink.calls == []


def test_provider_call_taken_during_a_run_that_then_fails_is_recorded(sink: ListSink, handler: Any) -> None:
    """The provider answered (and billed) but LangChain failed afterwards: the provider's call is kept."""
    run_id = uuid4()
    context = contextvars.copy_context()
    provider_call = LLMCall(
        integration="openai",
        provider="openai",
        operation="chat.completions",
        model_requested="gpt-4o-mini",
        model="gpt-4o-mini-2024-07-18",
        usage=TokenUsage(input_tokens=3, output_tokens=2),
        response_id="chatcmpl-x",
    )

    def run() -> None:
        handler.on_chat_model_start({}, [[]], run_id=run_id, metadata={"ls_provider": "openai"})
        record.emit(provider_call)  # what the openai patch does inside the model call
        handler.on_llm_error(ValueError("bad output"), run_id=run_id)

    context.run(run)
    (call,) = sink.calls
    assert call.response_id == "chatcmpl-x" and call.extra["langchain_run_id"] == str(run_id)


def test_collector_is_released_when_the_run_ends_in_another_context(sink: ListSink, handler: Any) -> None:
    """An async callback may end a run in another context: the collector left behind accepts nothing."""
    run_id = uuid4()
    started = contextvars.copy_context()
    started.run(handler.on_chat_model_start, {}, [[]], run_id=run_id, metadata={"ls_provider": "openai"})
    contextvars.copy_context().run(handler.on_llm_end, LLMResult(generations=[]), run_id=run_id)

    stray = LLMCall("openai", "openai", "chat.completions", "gpt-4o-mini", None, TokenUsage(input_tokens=1))
    started.run(record.emit, stray)  # a later, unrelated call in the context the run started in
    assert sink.calls[-1] is stray  # not taken by the ended run's collector
    assert lc._live_ancestor(started.run(record.active_collector.get)) is None


class DelegatingChat(BaseChatModel):
    """A chat model that answers by calling another LangChain chat model (a router, a fallback wrapper).

    Its own result repeats the inner model's usage: only the inner call is a provider call.
    """

    inner: Any = None

    @property
    def _llm_type(self) -> str:
        return "delegating"

    def _generate(
        self,
        messages: List[BaseMessage],
        stop: Optional[List[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        callbacks = None
        if run_manager is not None:  # the inner run as a child of this one
            handlers = list(run_manager.inheritable_handlers)
            callbacks = CallbackManager(handlers, handlers, parent_run_id=run_manager.run_id)
        reply = self.inner.invoke(messages, config={"callbacks": callbacks})
        return ChatResult(generations=[ChatGeneration(message=reply)])


def test_a_model_delegating_to_another_is_recorded_once(
    mode: str, config: Dict[str, Any], sink: ListSink
) -> None:
    with replay(JOKE):
        reply = DelegatingChat(inner=openai_chat()).invoke("joke", config=config)

    assert reply.usage_metadata is not None  # the outer result carries the inner usage again
    (call,) = sink.calls
    assert call.usage == JOKE_USAGE
    assert call.extra["langchain_model"] == "ChatOpenAI"


def test_abandoned_async_stream_is_recorded_once(mode: str, config: Dict[str, Any], sink: ListSink) -> None:
    """`break` out of `astream()`: the async generator is closed later, by the event loop, in a task of
    its own (another context than the one the run started in)."""

    async def main() -> None:
        with bearlumen.agent("async-streamer"):
            async for _chunk in openai_chat("gpt-3.5-turbo").astream("Hi", config=config):
                break
        for _ in range(20):  # the loop runs the generator's aclose() task
            await asyncio.sleep(0)

    with replay(STREAM):
        asyncio.run(main())
        lc.flush_pending()

    (call,) = sink.calls
    assert call.streamed is True
    assert call.attribution.agent_id == "async-streamer"
    assert "langchain_run_id" in call.extra
    assert call.integration == ("langchain" if mode == "callback" else "openai")


def test_runs_that_never_end_are_bounded(
    sink: ListSink, handler: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond MAX_OPEN_RUNS open runs the oldest is dropped; a provider call it had taken is still kept."""
    monkeypatch.setattr(lc, "MAX_OPEN_RUNS", 2)
    run_ids = [uuid4() for _ in range(3)]
    taken = LLMCall("openai", "openai", "chat.completions", "gpt-4o-mini", None, TokenUsage(input_tokens=1))

    def start_three() -> None:
        handler.on_chat_model_start({}, [[]], run_id=run_ids[0], metadata={"ls_provider": "openai"})
        record.emit(taken)  # taken by the first run's collector
        for run_id in run_ids[1:]:
            handler.on_chat_model_start({}, [[]], run_id=run_id, metadata={"ls_provider": "openai"})

    contextvars.copy_context().run(start_three)
    assert sink.calls == [taken]
    assert set(lc._llm_runs) == set(run_ids[1:])
    for run_id in run_ids[1:]:
        handler.on_llm_error(RuntimeError("never ended"), run_id=run_id)
