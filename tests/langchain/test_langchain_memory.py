"""Per-run state is released on end and on error: memory stays flat over 100,000 runs.

Volume needs a model that answers in microseconds, so this test uses langchain-core's own fake chat
model (`GenericFakeChatModel`), not recorded traffic. To cover the path the provider patches take, the
fake hands each answer to `bearlumen.metering.record.emit` first, exactly as the openai patch does
inside a real ChatOpenAI call, so the handler's collector takes and adopts it.

Measured: the handler's own maps are empty after every run, and the memory traced by `tracemalloc`
over a window of runs that follows the first 100,000 does not grow with the number of runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import tracemalloc
from typing import Any, Iterator, List, Optional

from bearlumen.integrations import langchain as lc
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.runnables import RunnableLambda

import bearlumen
from bearlumen.metering import record
from bearlumen.metering.record import LLMCall, TokenUsage

RUNS = 100_000
WINDOW = 10_000


class CountingSink:
    """Counts what it receives and keeps nothing (a list of 100,000 calls would be the leak)."""

    def __init__(self) -> None:
        self.calls = 0
        self.adopted = 0
        self.last: Optional[LLMCall] = None

    def submit(self, call: LLMCall) -> None:
        self.calls += 1
        self.adopted += call.integration == "openai"
        self.last = call


class PatchedFakeChat(GenericFakeChatModel):
    """A fake chat model that reports its answer through `emit()` first, as the openai patch would."""

    counter: Any = None

    def _generate(
        self,
        messages: List[BaseMessage],
        stop: Optional[List[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        number = next(self.counter)
        record.emit(
            LLMCall(
                integration="openai",
                provider="openai",
                operation="chat.completions",
                model_requested="gpt-4o-mini",
                model="gpt-4o-mini-2024-07-18",
                usage=TokenUsage(input_tokens=3, output_tokens=2),
                response_id=f"chatcmpl-{number}",
            )
        )
        result = super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)
        result.generations[0].message.response_metadata["id"] = f"chatcmpl-{number}"
        return result


class Failing(GenericFakeChatModel):
    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        raise RuntimeError("model down")


def answers() -> Iterator[AIMessage]:
    usage = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    return itertools.repeat(AIMessage("ok", usage_metadata=usage, response_metadata={"model_name": "fake"}))  # type: ignore[arg-type]


def test_memory_is_flat_over_100k_runs() -> None:
    sink = CountingSink()
    previous = record.set_sink(sink)
    handler = lc.BearLumenCallbackHandler()
    config: Any = {"callbacks": [handler], "metadata": {"bearlumen_end_user_id": "cus_1"}}
    model = PatchedFakeChat(messages=answers(), counter=itertools.count())
    streaming = GenericFakeChatModel(messages=answers())
    failing = Failing(messages=answers())
    chain = RunnableLambda(lambda text: model.invoke(text))

    def one_run(number: int) -> None:
        kind = number % 10
        if kind == 0:
            for _ in streaming.stream("hi", config=config):
                pass
        elif kind == 1:
            with contextlib.suppress(RuntimeError):
                failing.invoke("hi", config=config)
        elif kind == 2:
            chain.invoke("hi", config=config)  # a chain run whose scope is tracked, and its model run
        else:
            model.invoke("hi", config=config)
        state = lc.open_runs()
        assert state["model_runs"] == 0 and state["scoped_runs"] == 0

    try:
        with bearlumen.workflow("memory"):
            for number in range(RUNS):
                one_run(number)
            assert lc.open_runs() == {"model_runs": 0, "scoped_runs": 0, "grace": 0}
            assert record.active_collector.get() is None

            gc.collect()
            tracemalloc.start()
            try:
                for number in range(WINDOW // 2):
                    one_run(number)
                gc.collect()
                middle = tracemalloc.get_traced_memory()[0]
                for number in range(WINDOW // 2, WINDOW):
                    one_run(number)
                gc.collect()
                end = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
    finally:
        record.set_sink(previous)

    total = RUNS + WINDOW
    assert sink.calls == total - total // 10  # every run but the failed ones (nothing billable)
    assert sink.adopted == total * 7 // 10 + total // 10  # the invoke and chain runs: the "provider" record
    assert sink.last is not None and sink.last.attribution.workflow_id == "memory"
    assert sink.last.attribution.end_user_id == "cus_1"
    # Flat: 5,000 more runs may not keep more than a few KiB (a leak of even 10 bytes a run is 50 KB).
    assert end - middle < 16 * 1024, f"{end - middle} bytes retained by 5,000 runs"


def test_memory_is_flat_over_async_runs() -> None:
    """Async runs end in another context (LangChain shields `on_llm_end` in a task of its own), so the
    collector cannot be reset where it was set: what is left behind must not pile up either."""
    sink = CountingSink()
    previous = record.set_sink(sink)
    handler = lc.BearLumenCallbackHandler()
    config: Any = {"callbacks": [handler]}
    model = PatchedFakeChat(messages=answers(), counter=itertools.count())
    streaming = GenericFakeChatModel(messages=answers())

    async def runs(count: int) -> None:
        for number in range(count):
            if number % 4 == 0:
                async for _ in streaming.astream("hi", config=config):
                    pass
            else:
                await model.ainvoke("hi", config=config)

    async def main() -> int:
        await runs(8_000)
        gc.collect()
        tracemalloc.start()
        try:
            await runs(1_000)
            gc.collect()
            middle = tracemalloc.get_traced_memory()[0]
            await runs(3_000)
            gc.collect()
            return tracemalloc.get_traced_memory()[0] - middle
        finally:
            tracemalloc.stop()

    try:
        retained = asyncio.run(main())
    finally:
        record.set_sink(previous)

    assert lc.open_runs() == {"model_runs": 0, "scoped_runs": 0, "grace": 0}
    assert sink.calls == 12_000
    assert retained < 16 * 1024, f"{retained} bytes retained by 3,000 async runs"
