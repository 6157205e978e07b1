"""A process that makes LLM calls with garbage collections forced inside every critical section of the
SDK, for tests/test_gc_safety.py: `python tests/support/gc_scenario.py '<json config>'`.

Abandoned provider streams are left in reference cycles (only the cyclic collector frees them) while
automatic collection is off; then every lock of the exporter, of its store and of LangChain's collectors
is replaced by a `CollectingLock`, which runs `gc.collect()` right after each acquire. So the streams'
finalizers run *inside* those critical sections, on the thread that holds the lock: code that takes a
lock from a finalizer deadlocks there. After that, automatic collection comes back with
`gc.set_threshold(1)` (a collection at nearly every allocation) for more calls and streams.

A watchdog (`faulthandler.dump_traceback_later(..., exit=True)`) ends a hung process with every
thread's stack on stderr, so the test fails instead of hanging. The process prints one JSON line:
`{"response_ids": [...], "forced": <collections run inside a critical section>, "flush": ..., "stats": ...}`.

Modes: "openai-sync" (`instrument(sync=True)`: delivery on the caller's thread), "openai" (background
mode), "anthropic" (background), "langchain" (LangChain + the provider patches, background).
"""

from __future__ import annotations

import faulthandler
import gc
import json
import sys
from pathlib import Path
from typing import Any, Dict, List

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

faulthandler.dump_traceback_later(float(json.loads(sys.argv[1]).get("watchdog", 60)), exit=True)

import bearlumen  # noqa: E402
from tests.support.cassettes import replay  # noqa: E402

OPENAI_STREAM = "otel-python-contrib/openai/test_chat_completion_streaming.yaml"
OPENAI_CALL = "openllmetry/openai/test_openai_prompt_caching.yaml"
ANTHROPIC_STREAM = "openllmetry/anthropic/test_anthropic_message_stream_manager_legacy.yaml"
ANTHROPIC_CALL = "openllmetry/anthropic/test_anthropic_prompt_caching_legacy.yaml"
LANGCHAIN_CALL = "openllmetry/langchain/test_openai.yaml"
MESSAGES: Any = [{"role": "user", "content": "Tell me a joke about opentelemetry"}]

forced = {"n": 0}


class CollectingLock:
    """A lock that runs a full collection right after every acquire (see the module docstring)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        got = bool(self._inner.acquire(blocking, timeout))
        if got:
            forced["n"] += 1
            gc.collect()
        return got

    def release(self) -> None:
        self._inner.release()

    def locked(self) -> bool:
        return bool(self._inner.locked())

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def abandon(stream: Any) -> None:
    """Leave `stream` in a reference cycle: only the cyclic garbage collector can finalize it."""
    junk: List[Any] = [stream]
    junk.append(junk)


def collecting_locks() -> None:
    from bearlumen import _instrument

    exporter = _instrument._exporter
    assert exporter is not None
    exporter._lock = CollectingLock(exporter._lock)
    exporter._write_lock = CollectingLock(exporter._write_lock)
    exporter._store.lock = CollectingLock(exporter._store.lock)


def openai_calls(ids: List[str]) -> None:
    import openai

    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    with replay(OPENAI_STREAM, allow_playback_repeats=True):
        stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        ids.append(next(iter(stream)).id)
        abandon(stream)
        del stream
        never = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        abandon(never)  # never iterated: ended by its weakref finalizer; billed without a response id
        del never
        ids.append("")
    collecting_locks()
    with replay(OPENAI_CALL):
        ids.append(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).id)
        gc.enable()
        gc.set_threshold(1)
        ids.append(client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES).id)
    with replay(OPENAI_STREAM, allow_playback_repeats=True):
        for _ in range(3):
            stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
            next(iter(stream))
            abandon(stream)
            del stream


def anthropic_calls(ids: List[str]) -> None:
    import anthropic

    client = anthropic.Anthropic(api_key="sk-test", max_retries=0)
    with replay(ANTHROPIC_STREAM, allow_playback_repeats=True):
        manager = client.messages.stream(model="claude-3-haiku-20240307", max_tokens=1024, messages=MESSAGES)
        stream = manager.__enter__()
        first = next(iter(stream))
        ids.append(first.message.id)
        abandon(manager)
        abandon(stream)
        del manager, stream, first
    collecting_locks()
    with replay(ANTHROPIC_CALL, allow_playback_repeats=True):
        ids.append(
            client.messages.create(model="claude-3-5-sonnet-20240620", max_tokens=1024, messages=MESSAGES).id
        )
        gc.enable()
        gc.set_threshold(1)


def langchain_calls(ids: List[str]) -> None:
    import openai
    from bearlumen.integrations import langchain as lc
    from langchain_openai import ChatOpenAI

    original = lc._Link.__init__

    def init(self: Any, prev: Any) -> None:
        original(self, prev)
        self.lock = CollectingLock(self.lock)

    lc._Link.__init__ = init  # type: ignore[method-assign]
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    with replay(OPENAI_STREAM, allow_playback_repeats=True):
        stream = client.chat.completions.create(model="gpt-4", messages=MESSAGES, stream=True)
        ids.append(next(iter(stream)).id)
        abandon(stream)
        del stream
    collecting_locks()
    llm = ChatOpenAI(model="gpt-4o-mini", api_key="sk-test", max_retries=0)  # type: ignore[arg-type]
    with replay(LANGCHAIN_CALL):
        result = llm.invoke("Tell me a joke about opentelemetry")
        ids.append(str(result.response_metadata.get("id")))
    gc.enable()
    gc.set_threshold(1)


def main(config: Dict[str, Any]) -> None:
    mode = config["mode"]
    gc.disable()
    integrations = {"langchain": ["openai", "langchain"], "anthropic": ["anthropic"]}.get(mode, ["openai"])
    bearlumen.instrument(
        api_key=config["api_key"],
        base_url=config["base_url"],
        integrations=integrations,
        spool=config["spool"],
        sync=mode == "openai-sync",
        send_interval=0.1,
    )
    ids: List[str] = []
    {
        "openai-sync": openai_calls,
        "openai": openai_calls,
        "anthropic": anthropic_calls,
        "langchain": langchain_calls,
    }[mode](ids)
    gc.collect()
    flushed = bearlumen.flush(60)
    stats = bearlumen.stats()
    print(
        json.dumps(
            {
                "response_ids": [i for i in ids if i],
                "without_id": ids.count(""),
                "forced": forced["n"],
                "flush": bool(flushed),
                "stats": stats,
            },
            default=str,
        ),
        flush=True,
    )
    bearlumen.uninstrument(10)
    faulthandler.cancel_dump_traceback_later()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
