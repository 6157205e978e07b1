"""Issue 10: nothing a garbage collector runs re-enters a lock (README "Garbage collection and locks").

Each mode runs tests/support/gc_scenario.py in its own process against the real service: abandoned
openai / anthropic streams are finalized by collections forced inside every critical section of the
exporter, its spool and LangChain's collectors (and then with `gc.set_threshold(1)`). The process has a
watchdog and the test a timeout: a deadlock fails the test (with every thread's stack), never hangs CI.
Every call is then recorded by the service exactly once, the abandoned streams included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import bearlumen

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "support" / "gc_scenario.py"


@pytest.mark.parametrize("mode", ["openai-sync", "openai", "anthropic", "langchain"])
def test_streams_finalized_inside_critical_sections_never_deadlock(
    mode: str, sqlite_service: Any, tmp_path: Path
) -> None:
    key = str(sqlite_service.create_key(f"gc_{uuid.uuid4().hex[:10]}"))
    config = {
        "mode": mode,
        "api_key": key,
        "base_url": sqlite_service.base_url,
        "spool": str(tmp_path / "spool.db"),
        "watchdog": 90,
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, str(SCENARIO), json.dumps(config)],
            capture_output=True,
            text=True,
            timeout=150,
            env=env,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired as exc:  # the watchdog should have fired first
        pytest.fail(f"the scenario hung: {str(exc.stderr)[-3000:]}")
    assert done.returncode == 0, f"deadlock or crash (watchdog stacks below):\n{done.stderr[-6000:]}"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["forced"] > 0  # collections did run inside critical sections
    assert result["flush"] is True and result["stats"]["quarantined"] == 0
    reader = bearlumen.Client(api_key=key, base_url=sqlite_service.base_url)
    try:
        events = reader.usage.query(limit=1000)["events"]
    finally:
        reader.close()
    seen = Counter(e["metadata"].get("response_id") for e in events)
    without_id = seen.pop(None, 0)  # a stream dropped before its first chunk: no response id to show
    assert without_id == result["without_id"]
    assert set(seen) == set(result["response_ids"])  # every call, the abandoned streams included
    assert all(count == 1 for count in seen.values()), seen  # each exactly once
