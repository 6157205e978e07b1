"""install() / uninstall(): the handler registered for every LangChain run, and taken away again.

The import-order tests run in a fresh interpreter, since this one has imported LangChain already.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from bearlumen.integrations import langchain as lc
from langchain_core.tracers import context as lc_context
from langchain_openai import ChatOpenAI

import bearlumen
from tests.support.cassettes import replay
from tests.support.sinks import ListSink

ROOT = Path(__file__).resolve().parents[2]
JOKE = "openllmetry/langchain/test_openai.yaml"


def our_hooks() -> int:
    return sum(1 for hook in lc_context._configure_hooks if hook[0] is lc._hook_var)


def joke(**config: Any) -> None:
    with replay(JOKE):
        ChatOpenAI(model="gpt-4o-mini", api_key="sk-test", max_retries=0).invoke("joke", config=config)  # type: ignore[arg-type]


def test_install_is_idempotent_and_uninstall_removes_the_hook(sink: ListSink) -> None:
    lc.install()
    lc.install()
    try:
        assert our_hooks() == 1
        assert lc.installed()
        joke()
        assert len(sink.calls) == 1
    finally:
        lc.uninstall()
        lc.uninstall()
    assert our_hooks() == 0 and not lc.installed()
    handler = lc.auto_handler()
    assert handler is not None and handler.enabled is False

    joke()  # no longer metered automatically
    assert len(sink.calls) == 1

    joke(callbacks=[lc.BearLumenCallbackHandler()])  # an explicit handler still works
    assert len(sink.calls) == 2

    lc.install()  # and it can come back
    try:
        assert our_hooks() == 1
        joke()
        assert len(sink.calls) == 3
    finally:
        lc.uninstall()


def test_install_sets_node_as_agent() -> None:
    lc.install(node_as_agent=False)
    try:
        assert lc.settings() == {"node_as_agent": False}
    finally:
        lc.uninstall()
        lc.configure(node_as_agent=True)
    assert lc.settings() == {"node_as_agent": True}


def run_fresh(script: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def test_install_before_langchain_is_imported() -> None:
    out = run_fresh(
        """
        import sys
        from bearlumen.integrations import langchain as lc
        from bearlumen.metering import record
        from tests.support.sinks import ListSink

        assert "langchain_core" not in sys.modules, "importing the integration must not import LangChain"
        sink = ListSink()
        record.set_sink(sink)
        lc.install()
        assert "langchain_core" not in sys.modules

        from langchain_openai import ChatOpenAI
        from tests.support.cassettes import replay

        with replay("openllmetry/langchain/test_openai.yaml"):
            ChatOpenAI(model="gpt-4o-mini", api_key="sk-test", max_retries=0).invoke("joke")
        (call,) = sink.calls
        print(call.usage.total_tokens, call.extra["framework"])
        """
    )
    assert out == "2534 langchain"


def test_uninstall_before_langchain_is_imported_registers_nothing() -> None:
    out = run_fresh(
        """
        from bearlumen.integrations import langchain as lc
        from bearlumen.metering import record
        from tests.support.sinks import ListSink

        sink = ListSink()
        record.set_sink(sink)
        lc.install()
        lc.uninstall()

        from langchain_core.tracers import context
        from langchain_openai import ChatOpenAI
        from tests.support.cassettes import replay

        with replay("openllmetry/langchain/test_openai.yaml"):
            ChatOpenAI(model="gpt-4o-mini", api_key="sk-test", max_retries=0).invoke("joke")
        print(len(sink.calls), lc._hook_var is None)
        """
    )
    assert out == "0 True"


def test_import_hook_never_breaks_the_applications_import() -> None:
    class Broken:
        register_configure_hook = None  # calling it raises TypeError

    lc.install()
    try:
        lc._on_import(Broken())  # logged at debug level, never raised
    finally:
        lc.uninstall()


def test_instrument_passes_the_node_as_agent_switch_to_the_handler() -> None:
    from bearlumen.integrations import langchain as integration

    try:
        # Nothing is emitted here, so the unreachable service is never contacted.
        bearlumen.instrument(
            api_key="blm_unused", base_url="http://127.0.0.1:9", spool=False, langgraph_node_as_agent=False
        )
        assert integration.settings() == {"node_as_agent": False}
        bearlumen.uninstrument()
        bearlumen.instrument(api_key="blm_unused", base_url="http://127.0.0.1:9", spool=False)
        assert integration.settings() == {"node_as_agent": True}
    finally:
        bearlumen.uninstrument()
        integration.configure(node_as_agent=True)
