"""`bearlumen report`: the cost report of the main job, from the real service, as a real command."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import bearlumen
from tests.support.service import ServiceHandle

BIN = Path(sys.executable).parent


def test_report_prints_exact_costs_by_agent_and_workflow(sqlite_service: ServiceHandle) -> None:
    key = sqlite_service.create_key(f"report_{uuid.uuid4().hex[:10]}")
    events = [
        ("planner", "onboarding", "0.1"),
        ("planner", "onboarding", "0.2"),
        ("writer", "onboarding", "0.000001"),
        ("writer", "support", None),  # unpriced: counted, never $0
    ]
    with bearlumen.Client(api_key=key, base_url=sqlite_service.base_url) as client:
        for index, (agent, workflow, cost) in enumerate(events):
            metadata = {} if cost is None else {"provider_cost_usd": cost}
            client.usage.record(
                event_type="token_usage",
                metric_name="llm_tokens",
                quantity=100 + index,
                agent_id=agent,
                workflow_id=workflow,
                metadata=metadata,
            )
    environment = {**os.environ, "BEARLUMEN_API_KEY": key, "BEARLUMEN_BASE_URL": sqlite_service.base_url}
    result = subprocess.run(
        [str(BIN / "bearlumen"), "report"], capture_output=True, text=True, env=environment, check=True
    )
    lines = [line.split() for line in result.stdout.splitlines()]
    assert ["planner", "$0.3", "2", "0"] in lines
    assert ["writer", "$0.000001", "2", "1"] in lines
    assert ["onboarding", "$0.300001", "3", "0"] in lines
    assert ["support", "unpriced", "1", "1"] in lines
    assert lines.count(["TOTAL", "$0.300001", "4", "1"]) == 2  # both tables add up to the same total


def test_report_without_a_key_says_how_to_set_it(sqlite_service: ServiceHandle) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "BEARLUMEN_API_KEY"}
    result = subprocess.run(
        [str(BIN / "bearlumen"), "report", "--base-url", sqlite_service.base_url],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert result.returncode == 1
    assert "BEARLUMEN_API_KEY" in result.stderr


def test_report_without_a_service_says_how_to_start_one(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    environment = {**os.environ, "BEARLUMEN_API_KEY": "blm_not_checked", "BEARLUMEN_MAX_RETRIES": "0"}
    result = subprocess.run(
        [str(BIN / "bearlumen"), "report", "--base-url", url], capture_output=True, text=True, env=environment
    )
    assert result.returncode == 1
    assert f"No Bear Lumen service answered at {url}: start one with `bearlumen serve`" in result.stderr


def test_report_with_a_wrong_key_names_where_the_key_comes_from(sqlite_service: ServiceHandle) -> None:
    environment = {**os.environ, "BEARLUMEN_API_KEY": "blm_wrong_key_0000000000000000"}
    result = subprocess.run(
        [str(BIN / "bearlumen"), "report", "--base-url", sqlite_service.base_url],
        capture_output=True,
        text=True,
        env=environment,
    )
    assert result.returncode == 1
    assert "check --api-key / BEARLUMEN_API_KEY" in result.stderr


def test_help_of_every_command_names_the_environment_it_reads() -> None:
    expected = {
        ("report",): ["BEARLUMEN_API_KEY", "BEARLUMEN_BASE_URL"],
        ("serve",): ["BEARLUMEN_HOST", "BEARLUMEN_PORT", "BEARLUMEN_DATABASE_URL", "BEARLUMEN_RATE_LIMIT"],
        ("migrate",): ["BEARLUMEN_DATABASE_URL", "BEARLUMEN_HOME"],
        ("keys", "create"): ["BEARLUMEN_DATABASE_URL", "BEARLUMEN_HOME"],
        ("keys", "list"): ["BEARLUMEN_DATABASE_URL"],
        ("keys", "revoke"): ["BEARLUMEN_DATABASE_URL"],
    }
    for command, variables in expected.items():
        shown = subprocess.run(
            [str(BIN / "bearlumen"), *command, "--help"], capture_output=True, text=True, check=True
        ).stdout
        flat = " ".join(shown.split())  # click wraps long lines
        for variable in variables:
            assert variable in flat, (command, variable)
