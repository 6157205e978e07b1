"""Attribution scopes: nesting, decorators of every function kind, tasks and threads."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, AsyncIterator, Iterator, List, Optional

import pytest

import bearlumen
from bearlumen.scopes import ContextThreadPoolExecutor, current_attribution


def agent_and_workflow() -> tuple[Optional[str], Optional[str]]:
    current = current_attribution()
    return current.agent_id, current.workflow_id


def test_nested_scopes_inner_wins_and_outer_is_restored() -> None:
    with bearlumen.workflow("onboarding"):
        with bearlumen.agent("planner"):
            assert agent_and_workflow() == ("planner", "onboarding")
            with bearlumen.agent("writer"), bearlumen.workflow("drafting"):
                assert agent_and_workflow() == ("writer", "drafting")
            assert agent_and_workflow() == ("planner", "onboarding")
        assert agent_and_workflow() == (None, "onboarding")
    assert agent_and_workflow() == (None, None)


def test_scope_is_restored_when_the_body_raises() -> None:
    with pytest.raises(KeyError), bearlumen.workflow("w"), bearlumen.agent("a"):
        raise KeyError("boom")
    assert agent_and_workflow() == (None, None)


def test_attributes_merge_metadata_and_set_every_field() -> None:
    with bearlumen.attributes(end_user_id="eu_1", plan="pro"):
        with bearlumen.attributes(subscription_id="sub_1", region="eu", plan="enterprise"):
            current = current_attribution()
            assert current.end_user_id == "eu_1"
            assert current.subscription_id == "sub_1"
            assert dict(current.metadata) == {"plan": "enterprise", "region": "eu"}
        assert dict(current_attribution().metadata) == {"plan": "pro"}
    with bearlumen.end_user("eu_2"), bearlumen.subscription("sub_2"):
        assert (current_attribution().end_user_id, current_attribution().subscription_id) == ("eu_2", "sub_2")


def test_one_scope_instance_can_be_reentered() -> None:
    scope = bearlumen.agent("shared")
    with scope, bearlumen.agent("inner"), scope:
        assert agent_and_workflow() == ("shared", None)
    assert agent_and_workflow() == (None, None)


def test_decorated_function() -> None:
    @bearlumen.agent("researcher")
    def research(x: int) -> tuple[Any, ...]:
        return (x, *agent_and_workflow())

    with bearlumen.workflow("w"):
        assert research(1) == (1, "researcher", "w")
    assert agent_and_workflow() == (None, None)


async def test_decorated_coroutine_and_task_inheritance() -> None:
    @bearlumen.workflow("async-flow")
    async def flow() -> List[Any]:
        seen = [agent_and_workflow()]
        with bearlumen.agent("child"):
            seen.append(await asyncio.create_task(asyncio.sleep(0, result=agent_and_workflow())))
            seen.append(await asyncio.gather(asyncio.to_thread(agent_and_workflow)))
        return seen

    assert await flow() == [(None, "async-flow"), ("child", "async-flow"), [("child", "async-flow")]]
    assert agent_and_workflow() == (None, None)


def test_decorated_generator_scopes_each_step_only() -> None:
    @bearlumen.agent("streamer")
    def produce() -> Iterator[Any]:
        yield agent_and_workflow()
        received = yield agent_and_workflow()
        yield received, agent_and_workflow()

    gen = produce()
    assert next(gen) == ("streamer", None)
    assert agent_and_workflow() == (None, None)  # nothing leaks to the consumer between steps
    assert next(gen) == ("streamer", None)
    assert gen.send("hello") == ("hello", ("streamer", None))
    with pytest.raises(StopIteration):
        next(gen)


def test_decorated_generator_close_and_throw_run_inside_the_scope() -> None:
    seen: List[Any] = []

    @bearlumen.agent("g")
    def produce() -> Iterator[int]:
        try:
            yield 1
            yield 2
        except ValueError:
            seen.append(("thrown", agent_and_workflow()))
            yield 3
        finally:
            seen.append(("finally", agent_and_workflow()))

    gen = produce()
    assert next(gen) == 1
    assert gen.throw(ValueError("x")) == 3
    gen.close()
    assert seen == [("thrown", ("g", None)), ("finally", ("g", None))]
    assert agent_and_workflow() == (None, None)


async def test_decorated_async_generator() -> None:
    @bearlumen.workflow("agen")
    async def produce() -> AsyncIterator[Any]:
        yield agent_and_workflow()
        await asyncio.sleep(0)
        yield agent_and_workflow()

    with bearlumen.agent("outer"):
        items = [item async for item in produce()]
    assert items == [("outer", "agen"), ("outer", "agen")]
    assert agent_and_workflow() == (None, None)


def test_plain_threads_do_not_inherit_but_propagate_carries_the_scope() -> None:
    results: dict[str, Any] = {}

    def record(name: str) -> None:
        results[name] = agent_and_workflow()

    with bearlumen.workflow("w"), bearlumen.agent("a"):
        plain = threading.Thread(target=record, args=("plain",))
        carried = threading.Thread(target=bearlumen.propagate(record), args=("carried",))
        plain.start()
        carried.start()
    plain.join()
    carried.join()
    assert results == {"plain": (None, None), "carried": ("a", "w")}


def test_thread_pool_executors() -> None:
    with bearlumen.workflow("batch"):
        with ThreadPoolExecutor(max_workers=4) as pool:
            propagated = list(pool.map(bearlumen.propagate(lambda i: (i, *agent_and_workflow())), range(8)))
        with ContextThreadPoolExecutor(max_workers=4) as pool, bearlumen.agent("worker"):
            futures = [pool.submit(lambda i: (i, *agent_and_workflow()), i) for i in range(8)]
            submitted = [future.result() for future in futures]
    assert propagated == [(i, None, "batch") for i in range(8)]
    assert submitted == [(i, "worker", "batch") for i in range(8)]


# -- scopes and generators (issue 10; README "Scopes in generators") ------------------------------


@pytest.fixture
def sink() -> Iterator[Any]:
    """The calls emitted during the test (this file runs without conftest on Python 3.9)."""
    from bearlumen.metering import record

    class Calls:
        def __init__(self) -> None:
            self.calls: List[Any] = []

        def submit(self, call: Any) -> None:
            self.calls.append(call)

    collected = Calls()
    previous = record.set_sink(collected)
    try:
        yield collected
    finally:
        record.set_sink(previous)


def _billed_to(sink: Any) -> List[Optional[str]]:
    return [call.attribution.end_user_id for call in sink.calls]


def _call(name: str) -> None:
    from bearlumen.metering.record import LLMCall, emit

    emit(LLMCall("openai", "openai", "chat.completions", "gpt-4o", "gpt-4o", None, response_id=name))


def test_generator_decorator_bills_only_the_generators_own_calls(sink: Any) -> None:
    @bearlumen.end_user("alice")
    def answers() -> Iterator[int]:
        for i in range(2):
            _call("generator")
            yield i

    for _ in answers():
        _call("consumer")
    assert _billed_to(sink) == ["alice", None, "alice", None]


def test_with_around_a_yield_is_in_force_while_the_generator_is_suspended(sink: Any) -> None:
    """What the README states: the `with` form sets the scope in the consumer's context until the
    generator leaves the block, so the consumer's calls in between are billed to it as well."""

    def answers() -> Iterator[int]:
        with bearlumen.end_user("alice"):
            _call("generator")
            yield 1
        _call("generator-after")
        yield 2

    items = answers()
    next(items)
    _call("consumer-inside")  # the generator is suspended inside its `with`
    next(items)
    _call("consumer-after")
    assert list(items) == []
    assert _billed_to(sink) == ["alice", "alice", None, None]


def test_leaving_a_with_block_from_another_context_never_raises() -> None:
    import contextvars

    def answers() -> Iterator[int]:
        with bearlumen.end_user("alice"):
            yield 1
        yield 2

    items = answers()
    contextvars.copy_context().run(next, items)  # entered in one context ...
    assert contextvars.copy_context().run(next, items) == 2  # ... left in another: no ValueError
    assert current_attribution().end_user_id is None


# -- framework lookups: the layer under the scopes -----------------------------------------------------


def test_a_framework_lookup_fills_what_no_scope_names_and_scopes_win_key_by_key() -> None:
    from bearlumen.scopes import Attribution, add_framework_lookup, remove_framework_lookup

    def framework() -> Attribution:
        return Attribution(agent_id="researcher", metadata={"framework": "x", "run_id": "r1"})

    add_framework_lookup(framework)
    add_framework_lookup(framework)  # twice: still one layer
    try:
        assert current_attribution() == framework()
        with bearlumen.workflow("trips"):
            assert agent_and_workflow() == ("researcher", "trips")
        with bearlumen.attributes(agent_id="planner", run_id="mine"):
            current = current_attribution()
            assert current.agent_id == "planner"
            assert dict(current.metadata) == {"framework": "x", "run_id": "mine"}
    finally:
        remove_framework_lookup(framework)
    assert current_attribution() == bearlumen.scopes.EMPTY


def test_a_lookup_that_raises_or_knows_nothing_is_passed_over() -> None:
    from bearlumen.scopes import Attribution, add_framework_lookup, remove_framework_lookup

    def broken() -> Optional[Attribution]:
        raise RuntimeError("framework in a strange state")

    def outside_any_run() -> Optional[Attribution]:
        return None

    def second() -> Attribution:
        return Attribution(agent_id="second")

    for lookup in (broken, outside_any_run, second):
        add_framework_lookup(lookup)
    try:
        with bearlumen.workflow("w"):
            assert agent_and_workflow() == ("second", "w")
        remove_framework_lookup(second)
        with bearlumen.workflow("w"):
            assert agent_and_workflow() == (None, "w")
    finally:
        for lookup in (broken, outside_any_run, second):
            remove_framework_lookup(lookup)
