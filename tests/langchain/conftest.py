"""Fixtures of the LangChain / LangGraph integration tests.

- `sink`: a ListSink installed as the destination of `bearlumen.metering.record.emit` for the test.
- `mode`: the tests that take it run twice:
    * "callback": only the LangChain handler, passed explicitly (`config={"callbacks": [handler]}`);
    * "instrumented": the openai and anthropic patches installed too, and the handler registered for
      every run by `bearlumen.integrations.langchain.install()` (what `bearlumen.instrument()` does):
      each model call is then seen by both layers and must still be recorded exactly once.
  `config` is the LangChain config a test passes to its runs in that mode.
- `combined(*cassettes)`: one cassette made of several vendored ones, in order (a graph that calls
  OpenAI and Anthropic replays the real recorded responses of both).
- After every test: no per-run state is left (open model runs, scoped runs, grace periods), no live
  collector is left in the context, and the attribution scope is as the test found it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest
import yaml
from bearlumen.integrations import anthropic as anthropic_integration
from bearlumen.integrations import langchain as lc
from bearlumen.integrations import openai as openai_integration

from bearlumen.metering import record
from bearlumen.scopes import EMPTY, current_attribution
from tests.support.cassettes import CASSETTES

MODES = ("callback", "instrumented")


@pytest.fixture
def handler() -> Any:
    return lc.BearLumenCallbackHandler()


@pytest.fixture
def instrumented() -> Iterator[None]:
    """The openai + anthropic patches and the automatic LangChain handler, as `instrument()` sets them."""
    openai_integration.install()
    anthropic_integration.install()
    lc.install()
    try:
        yield
    finally:
        lc.uninstall()
        anthropic_integration.uninstall()
        openai_integration.uninstall()


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "instrumented":
        request.getfixturevalue("instrumented")
    yield request.param


@pytest.fixture
def config(mode: str, handler: Any) -> Dict[str, Any]:
    return {"callbacks": [handler]} if mode == "callback" else {}


@pytest.fixture
def combined(tmp_path: Path) -> Callable[..., str]:
    def combine(*cassettes: str) -> str:
        interactions: List[Any] = []
        for cassette in cassettes:
            interactions += yaml.safe_load((CASSETTES / cassette).read_text(encoding="utf-8"))["interactions"]
        path = tmp_path / f"combined-{len(list(tmp_path.iterdir()))}.yaml"
        path.write_text(yaml.safe_dump({"version": 1, "interactions": interactions}), encoding="utf-8")
        return str(path)

    return combine


@pytest.fixture(autouse=True)
def _nothing_left_behind() -> Iterator[None]:
    before = current_attribution()
    yield
    lc.flush_pending()
    assert lc.open_runs() == {"model_runs": 0, "scoped_runs": 0, "grace": 0}, "per-run state leaked"
    assert lc._live_ancestor(record.active_collector.get()) is None, "a live collector leaked"
    assert current_attribution() == before == EMPTY, "a test leaked an attribution scope"
