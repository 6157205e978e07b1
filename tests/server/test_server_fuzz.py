"""Schemathesis against a live `bearlumen serve`, on SQLite and on PostgreSQL: every check on, bounded.

The run is reproducible and bounded: a fixed seed, a fixed number of examples per operation, all phases
(coverage, fuzzing, stateful) and a hard timeout. It uses the session services with a tenant of its own.
Any failure (a 5xx, an answer the OpenAPI document does not describe, an undocumented status or header, an
accepted schema-invalid request, ...) fails this test with schemathesis' report.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

from tests.support.service import ServiceHandle

SEED = 20261203
MAX_EXAMPLES = 15
TIMEOUT = 300  # seconds: a hard bound on one backend's run (it takes about a minute)
CONFIG = Path(__file__).with_name("schemathesis.toml")


def _schemathesis() -> str:
    return str(Path(sys.executable).with_name("schemathesis"))


def test_fuzz_the_openapi_document(service: ServiceHandle, tmp_path: Path) -> None:
    key = service.create_key(f"fuzz_{uuid.uuid4().hex[:12]}")
    command = [
        _schemathesis(),
        "--config-file",
        str(CONFIG),
        "run",
        f"{service.base_url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--max-examples",
        str(MAX_EXAMPLES),
        # One worker: on CPython 3.11 two threads parsing Python source at once (hypothesis describes
        # its lambdas with ast.parse) can fail with "AST constructor recursion depth mismatch"
        # (cpython#106905), a fuzzer crash that says nothing about the service.
        "--workers",
        "1",
        "--request-timeout",
        "60",
        "--header",
        f"Authorization: Bearer {key}",
        "--no-color",
        "--report-dir",
        str(tmp_path),
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=tmp_path)
    report = run.stdout[-30000:] + run.stderr[-5000:]
    assert run.returncode == 0, report
    selected = re.search(r"Selected: (\d+)/(\d+)", run.stdout)
    assert selected is not None and selected.group(1) == selected.group(2), report  # every operation
    generated = re.search(r"(\d+) generated", run.stdout)
    assert generated is not None and int(generated.group(1)) >= 500, report
