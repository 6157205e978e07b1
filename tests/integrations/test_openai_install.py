"""install() / uninstall(): every patched attribute restored exactly, idempotent, deferred, guarded."""

from __future__ import annotations

import importlib
import importlib.util
import logging
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, List, Tuple

import bearlumen.integrations.openai as openai_integration
import openai
import pytest
import wrapt
from bearlumen.integrations._wrapping import MISSING, AttributePatch, FunctionPatch

from bearlumen.metering.record import USAGE_UNAVAILABLE, TokenUsage
from bearlumen.scopes import current_attribution
from tests.support.cassettes import replay
from tests.support.sinks import ListSink
from tests.support.versions import OPENAI

MESSAGES: Any = [{"role": "user", "content": "Say this is a test"}]
CHAT = "otel-python-contrib/openai/test_chat_completion_with_content.yaml"  # 12 / 5
REPO = Path(__file__).resolve().parents[2]


PARSER_LOCATIONS = {(module, name) for module, name, _ in openai_integration.PARSERS}


def make_client(**options: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test", max_retries=0, **options)


def targets() -> Dict[Tuple[str, str], Tuple[Any, str]]:
    """(module, path) -> (owner class, attribute) of every patch in the table, all modules imported."""
    found = {}
    for patch in openai_integration.PATCHES._patches:
        try:
            module = importlib.import_module(patch.module)
        except ModuleNotFoundError:
            # openai 2.x has no beta.responses; a parser's other location (PARSERS) may be absent
            assert OPENAI < (3,) or (patch.module, patch.path) in PARSER_LOCATIONS, patch.module
            continue
        *owner_path, name = patch.path.split(".")
        owner: Any = module
        for part in owner_path:
            owner = getattr(owner, part)
        found[(patch.module, patch.path)] = (owner, name)
    return found


def snapshot() -> Dict[Tuple[str, str], Any]:
    return {key: vars(owner).get(name, MISSING) for key, (owner, name) in targets().items()}


@pytest.fixture(autouse=True)
def _always_uninstalled() -> Any:
    yield
    openai_integration.uninstall()


def test_uninstall_restores_every_patched_attribute_exactly(sink: ListSink) -> None:
    before = snapshot()
    function_keys = {
        (p.module, p.path) for p in openai_integration.PATCHES._patches if isinstance(p, FunctionPatch)
    }
    # + APIResponse / AsyncAPIResponse parse and close, + two locations of each structured-output parser
    assert len(function_keys) == len(openai_integration.METHODS) + 8
    # What the installed client lacks (openai 2.x: beta.responses, responses.compact; each parser's
    # location of other releases) is left alone.
    absent = {key for key in function_keys if before.get(key, MISSING) is MISSING}
    assert not absent - PARSER_LOCATIONS or OPENAI < (3,), absent
    for argument in ("chat_completion", "response"):  # each parser is found in one of its locations
        locations = {(m, n) for m, n, a in openai_integration.PARSERS if a == argument}
        assert len(locations - absent) == 1, locations
    function_keys -= absent

    openai_integration.install()
    during = snapshot()
    for key in function_keys:
        assert during[key] is not before[key], key
        assert isinstance(during[key], wrapt.FunctionWrapper), key
        assert during[key].__wrapped__ is before[key], key
    rebinders = [
        key
        for key, value in during.items()
        if value is not before[key] and not isinstance(value, wrapt.FunctionWrapper)
    ]
    # the with_raw_response / with_streaming_response helpers of every wrapped method that has one
    assert ("openai.resources.chat.completions.completions", "CompletionsWithRawResponse.create") in rebinders
    assert (
        "openai.resources.chat.completions.completions",
        "AsyncCompletionsWithStreamingResponse.parse",
    ) in rebinders
    assert ("openai.resources.embeddings", "EmbeddingsWithStreamingResponse.create") in rebinders
    assert ("openai.resources.responses.responses", "ResponsesWithStreamingResponse.parse") not in rebinders
    assert all(before[key] is MISSING for key in rebinders)
    assert len(openai_integration.PATCHES.applied()) == len(function_keys) + len(rebinders)

    openai_integration.uninstall()
    after = snapshot()
    for key, value in before.items():
        assert after[key] is value, key
    assert openai_integration.PATCHES.applied() == []

    from openai.resources.chat.completions.completions import Completions

    assert (
        vars(Completions)["create"]
        is before[
            (
                "openai.resources.chat.completions.completions",
                "Completions.create",
            )
        ]
    )
    with replay(CHAT):
        make_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert sink.calls == []


def test_double_install_is_idempotent(sink: ListSink) -> None:
    from openai.resources.chat.completions.completions import Completions

    original = vars(Completions)["create"]
    openai_integration.install()
    first = vars(Completions)["create"]
    applied = len(openai_integration.PATCHES.applied())
    openai_integration.install()

    assert vars(Completions)["create"] is first
    assert first.__wrapped__ is original
    assert len(openai_integration.PATCHES.applied()) == applied
    with replay(CHAT):
        make_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(sink.calls) == 1

    openai_integration.uninstall()
    openai_integration.uninstall()
    assert vars(Completions)["create"] is original


def test_reinstall_after_uninstall(sink: ListSink) -> None:
    client = make_client()
    openai_integration.install()
    openai_integration.uninstall()
    openai_integration.install()
    with replay(CHAT):
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert [c.usage for c in sink.calls] == [TokenUsage(input_tokens=12, output_tokens=5)]


def test_the_module_loaded_twice_never_wraps_twice(sink: ListSink) -> None:
    """`integrations/openai.py` is importable under two names; both installed must still count once."""
    from openai.resources.chat.completions.completions import Completions

    original = vars(Completions)["create"]
    # The repository root is on sys.path in tests, so the same file is also the module
    # `integrations.openai` (a second copy with its own PatchSet).
    second = importlib.import_module("integrations.openai")
    assert second is not openai_integration
    try:
        openai_integration.install()
        second.install()
        assert vars(Completions)["create"].__wrapped__ is original
        with replay(CHAT):
            make_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert len(sink.calls) == 1
    finally:
        second.uninstall()
        openai_integration.uninstall()
    assert vars(Completions)["create"] is original


def test_wrapper_of_another_library_on_top_survives_uninstall(sink: ListSink) -> None:
    from openai.resources.embeddings import Embeddings

    original = vars(Embeddings)["create"]
    openai_integration.install()
    seen: List[str] = []

    def theirs(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        seen.append("theirs")
        return wrapped(*args, **kwargs)

    handle = wrapt.wrap_function_wrapper(Embeddings, "create", theirs)
    openai_integration.uninstall()
    try:
        assert vars(Embeddings)["create"] is handle
        assert handle.__wrapped__ is original
    finally:
        wrapt.unwrap_object(Embeddings, "create", handle)
    assert vars(Embeddings)["create"] is original


def test_install_before_openai_is_imported_patches_on_import() -> None:
    """A fresh interpreter: install() first, then import openai and call it (recorded body served)."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r})
        import bearlumen.integrations.openai as integration
        from bearlumen.metering import record
        from tests.support.sinks import ListSink

        sink = ListSink()
        record.set_sink(sink)
        integration.install()
        assert "openai" not in sys.modules, "the integration must not import openai itself"

        import openai
        from tests.support.clienthttp import openai_httpx as http
        sys.path.insert(0, {str(REPO / "tests" / "integrations")!r})
        from conftest import load_interactions
        body = load_interactions({CHAT!r})[0].body
        transport = http.MockTransport(
            lambda request: http.Response(200, headers={{"content-type": "application/json"}}, content=body)
        )
        client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=http.Client(transport=transport))
        assert "openai.resources.chat.completions.completions" not in sys.modules
        client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": "hi"}}])
        client.embeddings  # lazily imported resource modules are patched as they load
        from openai.resources.embeddings import Embeddings
        assert hasattr(vars(Embeddings)["create"], "__wrapped__")
        print(len(sink.calls), sink.calls[0].usage.input_tokens, sink.calls[0].usage.output_tokens)
        integration.uninstall()
        from openai.resources.chat.completions.completions import Completions
        import types
        assert type(vars(Completions)["create"]) is types.FunctionType
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "12", "5"]


def test_import_does_not_import_openai() -> None:
    script = (
        f"import sys; sys.path.insert(0, {str(REPO)!r}); "
        "import bearlumen.integrations.openai; print('openai' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr


# -- never break the host app ------------------------------------------------------------------------------


def test_failure_inside_instrumentation_is_logged_and_the_call_proceeds(
    sink: ListSink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    openai_integration.install()

    def broken(client: Any) -> Any:
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(openai_integration, "_client_info", broken)
    with replay(CHAT), caplog.at_level(logging.DEBUG, logger="bearlumen"):
        result = make_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert result.usage is not None and result.usage.prompt_tokens == 12
    assert sink.calls == []
    assert any("not metered" in record.getMessage() for record in caplog.records)


def test_failure_while_reading_the_result_is_logged_and_the_result_returned(
    sink: ListSink, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    openai_integration.install()

    def broken(call: Any, response: Any) -> None:
        raise RuntimeError("instrumentation bug")

    monkeypatch.setattr(openai_integration, "_record_response", broken)
    with replay(CHAT), caplog.at_level(logging.DEBUG, logger="bearlumen"):
        result = make_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    assert result.choices[0].message.content is not None
    assert sink.calls == []
    assert any("could not meter" in record.getMessage() for record in caplog.records)


def test_a_failing_sink_never_reaches_the_caller() -> None:
    from bearlumen.metering import record

    class Broken:
        def submit(self, call: Any) -> None:
            raise RuntimeError("sink down")

    previous = record.set_sink(Broken())
    try:
        openai_integration.install()
        with replay(CHAT):
            result = make_client().chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    finally:
        record.set_sink(previous)
    assert result.usage is not None


def test_failure_inside_a_stream_observer_leaves_the_stream_intact(
    sink: ListSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai_integration.install()

    def broken(self: Any, item: Any) -> None:
        raise RuntimeError("observer bug")

    monkeypatch.setattr(openai_integration._ChatStreamObserver, "on_item", broken)
    with replay("otel-python-contrib/openai/test_chat_completion_streaming.yaml"):
        chunks = list(
            make_client().chat.completions.create(
                model="gpt-4", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
            )
        )

    assert len(chunks) == 8
    assert [(c.usage, c.usage_source) for c in sink.calls] == [(None, USAGE_UNAVAILABLE)]


def test_unknown_stream_shape_is_recorded_as_unavailable(sink: ListSink) -> None:
    class OddStream:
        """Not an openai stream at all: no `_iterator` to observe."""

    openai_integration.install()
    call = openai_integration._Call("chat.completions", "openai", "gpt-4", current_attribution())
    stream = OddStream()
    openai_integration._observe_stream(call, stream, is_async=False)

    assert vars(stream) == {}
    assert [(c.usage, c.usage_source, c.streamed) for c in sink.calls] == [(None, USAGE_UNAVAILABLE, True)]


def test_patch_table_skips_targets_missing_from_this_version(caplog: pytest.LogCaptureFixture) -> None:
    from bearlumen.integrations._wrapping import PatchSet

    def passthrough(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        return wrapped(*args, **kwargs)

    from openai.resources.embeddings import Embeddings

    original = vars(Embeddings)["create"]
    patches = PatchSet(
        "test-missing",
        [
            FunctionPatch("openai.resources.embeddings", "Embeddings.no_such_method", passthrough),
            FunctionPatch("openai.resources.embeddings", "NoSuchClass.create", passthrough),
            AttributePatch("openai.resources.embeddings", "NoSuchClass.create", lambda o, n, p: object()),
            FunctionPatch("openai.resources.embeddings", "Embeddings.create", passthrough),
        ],
    )
    with caplog.at_level(logging.DEBUG, logger="bearlumen"):
        patches.install()
    try:
        assert [(owner, name) for owner, name, _ in patches.applied()] == [(Embeddings, "create")]
        assert any("cannot patch" in r.getMessage() for r in caplog.records)
    finally:
        patches.uninstall()
    assert vars(Embeddings)["create"] is original


def test_patch_set_restores_copies_taken_by_classes_defined_while_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`create = Base.create` in a class body that runs while installed (anthropic's Bedrock / Vertex
    beta classes): metered once, not wrapped twice, and given the original function on uninstall."""
    from bearlumen.integrations._wrapping import PatchSet

    (tmp_path / "bl_copies_base.py").write_text("class Base:\n    def create(self):\n        return 'made'\n")
    (tmp_path / "bl_copies_copy.py").write_text(
        "from bl_copies_base import Base\n\nclass Copy:\n    create = Base.create\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    seen: List[str] = []

    def counting(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        seen.append(type(instance).__name__)
        return wrapped(*args, **kwargs)

    patches = PatchSet(
        "test-copies",
        [
            FunctionPatch("bl_copies_base", "Base.create", counting),
            FunctionPatch("bl_copies_copy", "Copy.create", counting),
        ],
    )
    patches.install()
    try:
        bl_copies_base = importlib.import_module("bl_copies_base")
        bl_copies_copy = importlib.import_module("bl_copies_copy")

        original = vars(bl_copies_base.Base)["create"].__wrapped__
        assert bl_copies_copy.Copy().create() == "made"
        assert seen == ["Copy"]  # once, not twice
        assert len(patches.applied()) == 2
    finally:
        patches.uninstall()
        sys.modules.pop("bl_copies_base", None)
        sys.modules.pop("bl_copies_copy", None)
    assert vars(bl_copies_base.Base)["create"] is original
    assert vars(bl_copies_copy.Copy)["create"] is original
