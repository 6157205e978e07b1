"""Every python block of README.md runs as written, in order, against a real service (`run_blocks.py`),
and prints exactly what the README shows it prints. See `blocks.py` for the markers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tests.readme.blocks import Block, parse, readme_blocks
from tests.support.service import ServiceHandle

RUNNER = Path(__file__).with_name("run_blocks.py")

# The README blocks that are not code to run, by the reason their marker gives. Adding one is a decision:
# prefer making the block runnable, or ```text when it is not Python.
EXPECTED_SKIPS = ["signatures"]


@pytest.fixture(scope="module")
def ran(sqlite_service: ServiceHandle, tmp_path_factory: pytest.TempPathFactory) -> List[Dict[str, Any]]:
    """Run every runnable block once, in a subprocess, in a fresh tenant of the SQLite service."""
    workdir = tmp_path_factory.mktemp("readme")
    env = {
        **os.environ,
        "BEARLUMEN_API_KEY": sqlite_service.create_key(f"readme_{uuid.uuid4().hex[:12]}"),
        "BEARLUMEN_BASE_URL": str(sqlite_service.base_url),
        "BEARLUMEN_SPOOL_DIR": str(workdir / "spool"),
        # Placeholders: provider calls replay a recorded cassette and never leave the process.
        "OPENAI_API_KEY": "sk-readme-replay",
        "ANTHROPIC_API_KEY": "sk-ant-readme-replay",
        "AWS_ACCESS_KEY_ID": "readme-replay",
        "AWS_SECRET_ACCESS_KEY": "readme-replay",
    }
    env.pop("OPENAI_BASE_URL", None)
    env.pop("ANTHROPIC_BASE_URL", None)
    out = workdir / "results.json"
    done = subprocess.run(
        [sys.executable, str(RUNNER), str(out)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    results: List[Dict[str, Any]] = json.loads(out.read_text())
    return results


def runnable() -> List[Block]:
    return [block for block in readme_blocks() if block.runnable]


def test_the_readme_has_python_blocks_to_run() -> None:
    # Guards the parser: a README whose blocks all went unseen would pass every other test.
    assert len(runnable()) >= 3


@pytest.mark.parametrize("block", runnable(), ids=lambda b: f"line{b.line}")
def test_block_runs_as_written(block: Block, ran: List[Dict[str, Any]]) -> None:
    by_line = {result["line"]: result for result in ran}
    assert block.line in by_line, "not run: an earlier block failed (see its test)"
    assert by_line[block.line]["error"] is None, by_line[block.line]["error"]


@pytest.mark.parametrize(
    "block", [b for b in runnable() if b.expected_output is not None], ids=lambda b: f"line{b.line}"
)
def test_block_prints_what_the_readme_shows(block: Block, ran: List[Dict[str, Any]]) -> None:
    by_line = {result["line"]: result for result in ran}
    assert by_line[block.line]["error"] is None, by_line[block.line]["error"]
    assert by_line[block.line]["stdout"] == block.expected_output


def test_skipped_blocks_are_the_expected_few() -> None:
    skips = [block.markers["skip"] for block in readme_blocks() if "skip" in block.markers]
    assert skips == EXPECTED_SKIPS


def test_every_cassette_named_exists() -> None:
    from tests.support.cassettes import CASSETTES

    named = [block.markers["cassette"] for block in readme_blocks() if "cassette" in block.markers]
    assert named, "the README's provider example replays a cassette"
    for path in named:
        assert (CASSETTES / path).is_file(), path


def test_markers_attach_to_the_block_below() -> None:
    text = (
        "<!-- readme-test: cassette a.yaml -->\n```python\nx = 1\n```\n"
        "<!-- readme-test: output -->\n```text\n1\n```\n"
        "<!-- readme-test: skip signatures -->\n```python\nf(a, *, b)\n```\n"
        "<!-- readme-test: skip stale -->\ntext in between\n```python\ny = 2\n```\n"
    )
    first, output, skipped, plain = parse(text)
    assert (first.markers, first.expected_output, first.runnable) == ({"cassette": "a.yaml"}, "1\n", True)
    assert output.language == "text"
    assert (skipped.markers, skipped.runnable) == ({"skip": "signatures"}, False)
    assert (plain.markers, plain.runnable, plain.line) == ({}, True, 15)


def test_an_unknown_marker_or_unclosed_block_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown readme-test marker"):
        parse("<!-- readme-test: skpi x -->\n```python\nx\n```\n")
    with pytest.raises(ValueError, match="never closed"):
        parse("```python\nx = 1\n")
    with pytest.raises(ValueError, match="must follow a runnable python block"):
        parse("<!-- readme-test: output -->\n```text\n1\n```\n")


_PROVIDER_CALL = re.compile(
    r"\.(chat\.completions|responses|messages|embeddings)\.(create|parse|stream)\(|\.invoke\("
)
_QUERY = re.compile(r"\.(cost_attribution\.\w+|usage\.(query|summary|aggregation))\(")


def test_a_query_after_metered_calls_flushes_first() -> None:
    # Metered events leave on a background thread: a block that queries what it just metered must call
    # bearlumen.flush() in between, or its reader sees nothing (the failure that made this test).
    for block in runnable():
        call = _PROVIDER_CALL.search(block.code)
        query = _QUERY.search(block.code, call.end()) if call else None
        if call and query:
            assert "flush(" in block.code[call.end() : query.start()], f"README line {block.line}"


def test_the_flush_check_sees_a_missing_flush() -> None:
    (block,) = parse("```python\nc.chat.completions.create(m)\nclient.cost_attribution.by_agent(s, e)\n```\n")
    call = _PROVIDER_CALL.search(block.code)
    assert call and _QUERY.search(block.code, call.end())
