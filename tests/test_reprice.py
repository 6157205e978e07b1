"""End to end: `bearlumen.instrument()` -> the real clients -> the real service, every billed dimension
kept on the event; then `bearlumen reprice` recomputes the stored costs from the stored buckets.

Provider traffic: recorded (Groq through the openai client) or BUILT to the providers' documented
schemas (served by an in-process `httpx2.MockTransport` to the real clients), as in
tests/integrations/test_pricing_dimensions.py. Expected costs are computed here by hand from published
per-million prices. The service runs embedded on SQLite (a database URL as `base_url`), and over HTTP on
PostgreSQL (a database shared by the session's tenants: repriced with `tenant=`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, Tuple

import anthropic
import httpx2
import openai
import pytest
from sqlalchemy import text

import bearlumen
from bearlumen.reprice import render, reprice
from bearlumen.server.db import Database
from tests.integrations.conftest import ServedTransport
from tests.support.cassettes import replay

BEARLUMEN = str(Path(sys.executable).with_name("bearlumen"))
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
M = Decimal(1_000_000)
MESSAGES: Any = [{"role": "user", "content": "Tell me a joke about OpenTelemetry"}]
SINCE, UNTIL = "2000-01-01", "2100-01-01"
FAR = (0, 4_102_444_800_000_000)  # [1970, 2100) in microseconds


def chat_json(model: str, usage: Dict[str, Any], **fields: Any) -> Dict[str, Any]:
    """A chat completion BUILT to OpenAI's documented schema."""
    body: Dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": 1795000000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": usage,
    }
    body.update(fields)
    return body


def message_json(model: str, usage: Dict[str, Any]) -> Dict[str, Any]:
    """A Message BUILT to Anthropic's documented schema."""
    return {
        "id": f"msg_{uuid.uuid4().hex}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": usage,
    }


def make_calls() -> Dict[str, Decimal]:
    """One call per dimension; returns the expected cost per billed model (published prices)."""
    served = ServedTransport(
        [
            # gpt-5 served on flex: $0.625 in / $0.0625 cached / $5 out per 1M.
            chat_json(
                "gpt-5-2025-08-07",
                {
                    "prompt_tokens": 2000,
                    "completion_tokens": 500,
                    "total_tokens": 2500,
                    "prompt_tokens_details": {"cached_tokens": 1024},
                    "completion_tokens_details": {"reasoning_tokens": 320},
                },
                service_tier="flex",
            ),
            # gpt-audio: text $2.50 / $10, audio $32 in / $64 out per 1M.
            chat_json(
                "gpt-audio-2025-08-28",
                {
                    "prompt_tokens": 1000,
                    "completion_tokens": 500,
                    "total_tokens": 1500,
                    "prompt_tokens_details": {"audio_tokens": 600},
                    "completion_tokens_details": {"audio_tokens": 400},
                },
            ),
        ]
    )
    client = openai.OpenAI(api_key="sk-test", max_retries=0, http_client=httpx2.Client(transport=served))
    client.chat.completions.create(model="gpt-5", messages=MESSAGES)
    client.chat.completions.create(model="gpt-audio", messages=MESSAGES)
    with replay("openllmetry/groq/test_chat_legacy.yaml"):  # RECORDED: 18 in, 43 out
        groq = openai.OpenAI(api_key="gsk-test", max_retries=0, base_url="https://api.groq.com/openai/v1")
        groq.chat.completions.create(model="llama3-8b-8192", messages=MESSAGES)
    gemini = ServedTransport(
        [chat_json("gemini-2.5-flash", {"prompt_tokens": 12, "completion_tokens": 35, "total_tokens": 109})]
    )
    openai.OpenAI(
        api_key="g-test",
        max_retries=0,
        base_url="https://generativelanguage.googleapis.com/v1beta/openai/",
        http_client=httpx2.Client(transport=gemini),
    ).chat.completions.create(model="gemini-2.5-flash", messages=MESSAGES)
    local = ServedTransport(
        [chat_json("llama-3-local", {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15})]
    )
    openai.OpenAI(
        api_key="x",
        max_retries=0,
        base_url="https://llm.example.internal/v1",
        http_client=httpx2.Client(transport=local),
    ).chat.completions.create(model="llama-3-local", messages=MESSAGES)
    answers = ServedTransport(
        [
            # claude-opus-4-8 fast mode: $10 in / $1 cache read / $50 out per 1M.
            message_json(
                "claude-opus-4-8",
                {
                    "input_tokens": 3000,
                    "cache_read_input_tokens": 2000,
                    "output_tokens": 800,
                    "speed": "fast",
                },
            ),
            # claude-sonnet-4-5 with 3 web searches: $3 / $15 per 1M, $10 per 1,000 searches.
            message_json(
                "claude-sonnet-4-5-20250929",
                {"input_tokens": 5000, "output_tokens": 700, "server_tool_use": {"web_search_requests": 3}},
            ),
        ]
    )
    claude = anthropic.Anthropic(api_key="test", max_retries=0, http_client=httpx2.Client(transport=answers))
    claude.messages.create(model="claude-opus-4-8", max_tokens=1024, messages=MESSAGES)
    claude.messages.create(model="claude-sonnet-4-5", max_tokens=1024, messages=MESSAGES)
    # Bedrock global profile (Claude Sonnet 4.5 global: $3 / $15 per 1M; regional would be $3.30 / $16.50).
    profile = "global.anthropic.claude-sonnet-4-5-20250929-v1:0"
    bedrock = ServedTransport(
        [message_json("claude-sonnet-4-5-20250929", {"input_tokens": 1000, "output_tokens": 200})]
    )
    anthropic.AnthropicBedrock(
        aws_region="us-east-1",
        aws_access_key="AKIDEXAMPLE",
        aws_secret_key="secret",
        max_retries=0,
        http_client=httpx2.Client(transport=bedrock),
    ).messages.create(model=profile, max_tokens=256, messages=MESSAGES)
    return {
        "gpt-5-2025-08-07": (976 * Decimal("0.625") + 1024 * Decimal("0.0625") + 500 * Decimal(5)) / M,
        "gpt-audio-2025-08-28": (
            400 * Decimal("2.50") + 600 * Decimal(32) + 100 * Decimal(10) + 400 * Decimal(64)
        )
        / M,
        "llama3-8b-8192": (18 * Decimal("0.05") + 43 * Decimal("0.08")) / M,
        "gemini-2.5-flash": (12 * Decimal("0.30") + 97 * Decimal("2.50")) / M,  # 62 hidden thinking = output
        "claude-opus-4-8": (3000 * Decimal(10) + 2000 * Decimal(1) + 800 * Decimal(50)) / M,
        "claude-sonnet-4-5-20250929": (5000 * Decimal(3) + 700 * Decimal(15)) / M + 3 * Decimal(10) / 1000,
        profile: (1000 * Decimal(3) + 200 * Decimal(15)) / M,
    }


@pytest.fixture(params=["embedded-sqlite", "http-postgresql"])
def deployed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tuple[str, str, bearlumen.Client]]:
    """(database URL, tenant, reader) with `instrument()` recording into it: the service embedded on
    SQLite, or `bearlumen serve` over HTTP on the session's shared PostgreSQL database (own tenant)."""
    tenant = f"t_{uuid.uuid4().hex[:12]}"
    if request.param == "embedded-sqlite":
        from bearlumen.server.keys import create_api_key

        url = base_url = f"sqlite:///{tmp_path / 'usage.db'}"
        key = create_api_key(url, tenant)
    else:
        service = request.getfixturevalue("postgres_service")
        url, base_url, key = service.database_url, str(service.base_url), str(service.create_key(tenant))
    bearlumen.instrument(api_key=key, base_url=base_url, integrations=["openai", "anthropic"], spool=False)
    reader = bearlumen.Client(api_key=key, base_url=base_url)
    try:
        yield url, tenant, reader
    finally:
        bearlumen.uninstrument()
        reader.close()


def test_every_dimension_end_to_end_then_reprice(deployed: Tuple[str, str, bearlumen.Client]) -> None:
    url, tenant, reader = deployed
    expected = make_calls()
    assert bearlumen.flush(timeout=60) is True
    events = reader.usage.query(limit=100)["events"]
    assert len(events) == 8
    by_model = {e["metadata"]["model"]: e for e in events}
    for model, cost in expected.items():
        assert Decimal(by_model[model]["providerCostUsd"]) == cost, model
    unpriced = by_model["llama-3-local"]["metadata"]
    assert by_model["llama-3-local"]["providerCostUsd"] is None
    assert (unpriced["pricing_status"], unpriced["pricing_source"]) == (
        "unpriced",
        "host or model not in price data",
    )
    # Every dimension is kept on the event.
    flex = by_model["gpt-5-2025-08-07"]["metadata"]
    assert (flex["tier"], flex["service_tier"], flex["cache_read_tokens"], flex["reasoning_tokens"]) == (
        "flex",
        "flex",
        1024,
        320,
    )
    assert flex["pricing_source"] == "genai-prices@0.2.3"
    audio = by_model["gpt-audio-2025-08-28"]["metadata"]
    assert (audio["input_audio_tokens"], audio["output_audio_tokens"]) == (600, 400)
    assert by_model["claude-sonnet-4-5-20250929"]["metadata"]["web_searches"] == 3
    assert by_model["claude-opus-4-8"]["metadata"]["tier"] == "fast"
    assert by_model["global.anthropic.claude-sonnet-4-5-20250929-v1:0"]["metadata"]["model_returned"] == (
        "claude-sonnet-4-5-20250929"
    )
    assert by_model["llama3-8b-8192"]["metadata"]["provider"] == "groq"
    # group_by=model explains the total, to the last digit.
    aggregation = reader.usage.aggregation(group_by="model")
    groups = {item["group"]: item for item in aggregation["items"]}
    assert {g: Decimal(i["totalCost"]) for g, i in groups.items() if i["totalCost"] is not None} == expected
    assert groups["llama-3-local"]["totalCost"] is None
    assert Decimal(aggregation["totalCost"]) == sum(expected.values())
    assert aggregation["unpricedEventCount"] == 1

    # Repricing with the installed prices changes nothing.
    by_agent_before = reader.cost_attribution.by_agent(start_date="2000-01-01", end_date="2100-01-01")
    db = Database(url)
    try:
        result = reprice(db, *FAR, tenant=tenant)
        assert (result.checked, result.skipped, result.differences) == (8, 0, [])
        assert Decimal(result.recomputed_total_pico) / 10**12 == sum(expected.values())

        # A stored cost that disagrees (as after a price-data change: the event and the rollups that
        # summed it) is reported, and left alone.
        db.write(lambda conn: overcharge_opus_by_5_pico(conn, tenant))
        result = reprice(db, *FAR, tenant=tenant)
        (difference,) = result.differences
        assert difference.model == "claude-opus-4-8"
        assert difference.stored_pico is not None and difference.recomputed_pico is not None
        assert difference.stored_pico - difference.recomputed_pico == 5
        assert "1 would change" in render(result) and not result.applied
        assert reprice(db, *FAR, tenant=tenant).differences != []  # still there: nothing was written

        # --apply stores the recomputed cost and moves the rollups by the difference.
        assert reprice(db, *FAR, tenant=tenant, apply=True).applied
        assert reprice(db, *FAR, tenant=tenant).differences == []
    finally:
        db.close()
    # --apply moved every rollup by exactly the difference: counts, quantities and costs as before.
    assert reader.usage.aggregation(group_by="model") == aggregation
    by_agent_after = reader.cost_attribution.by_agent(start_date="2000-01-01", end_date="2100-01-01")
    assert by_agent_after == by_agent_before


def overcharge_opus_by_5_pico(conn: Any, tenant: str) -> None:
    """The tenant's opus event and every hourly rollup that sums it, 5 pico-dollars higher (consistently)."""
    tenant_id, ts_us = conn.execute(
        text(
            "SELECT e.tenant_id, e.ts_us FROM usage_events e JOIN tenants t ON t.id = e.tenant_id"
            " WHERE t.name = :t AND e.model = 'claude-opus-4-8'"
        ),
        {"t": tenant},
    ).one()
    where = {"tid": tenant_id, "h": ts_us // 3_600_000_000}
    conn.execute(
        text("UPDATE usage_events SET cost_pico = cost_pico + 5 WHERE tenant_id = :tid AND model = :m"),
        {"tid": tenant_id, "m": "claude-opus-4-8"},
    )
    conn.execute(
        text(
            "UPDATE usage_rollup_model_hourly SET cost_pico = cost_pico + 5"
            " WHERE tenant_id = :tid AND model = 'claude-opus-4-8' AND hour = :h"
        ),
        where,
    )
    for table, column in (("agent", "agent_id"), ("workflow", "workflow_id"), ("end_user", "end_user_id"),
                          ("subscription", "subscription_id")):  # fmt: skip
        conn.execute(
            text(
                f"UPDATE usage_rollup_{table}_hourly SET cost_pico = cost_pico + 5"
                f" WHERE tenant_id = :tid AND {column} = '' AND hour = :h"
            ),
            where,
        )


def run_cli(*args: str, env: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BEARLUMEN, *args], capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )


def test_reprice_reports_zero_differences_on_a_database_filled_by_the_examples(tmp_path: Path) -> None:
    from bearlumen.server.keys import create_api_key

    url = f"sqlite:///{tmp_path / 'examples.db'}"
    env = {
        "BEARLUMEN_BASE_URL": url,
        "BEARLUMEN_API_KEY": create_api_key(url, "examples"),
        "BEARLUMEN_SPOOL_DIR": str(tmp_path / "spool"),
        "PYTHONPATH": str(EXAMPLES),
    }
    for example in ("quickstart.py", "multi_agent.py", "langchain_chain.py", "langgraph_agents.py"):
        done = subprocess.run(
            [sys.executable, example],
            cwd=EXAMPLES,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **env},
        )
        assert done.returncode == 0, done.stdout + done.stderr
    audit = run_cli("reprice", "--database-url", url, "--since", SINCE, "--until", UNTIL, env={})
    assert audit.returncode == 0, audit.stdout + audit.stderr
    summary = audit.stdout.strip().splitlines()[-1]
    checked = int(summary.split(" events repriced")[0])
    assert checked > 10 and ", 0 would change," in summary, audit.stdout


def test_reprice_cli_exits_1_on_differences_and_filters_by_tenant(tmp_path: Path) -> None:
    from bearlumen.server.keys import create_api_key

    url = f"sqlite:///{tmp_path / 'usage.db'}"
    keys = [create_api_key(url, name) for name in ("tenant-a", "tenant-b")]
    for key in keys:
        bearlumen.instrument(api_key=key, base_url=url, integrations=["openai"], spool=False)
        try:
            body = chat_json(
                "gpt-4o-2024-08-06", {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
            )
            client = openai.OpenAI(
                api_key="sk", max_retries=0, http_client=httpx2.Client(transport=ServedTransport([body]))
            )
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
            assert bearlumen.flush(timeout=60) is True
        finally:
            bearlumen.uninstrument()
    db = Database(url)
    try:
        db.write(
            lambda conn: conn.execute(
                text(
                    "UPDATE usage_events SET cost_pico = 1 WHERE tenant_id = "
                    "(SELECT id FROM tenants WHERE name = 'tenant-b')"
                )
            )
        )
    finally:
        db.close()
    args = ("reprice", "--database-url", url, "--since", SINCE, "--until", UNTIL)
    clean = run_cli(*args, "--tenant", "tenant-a", env={})
    assert clean.returncode == 0 and "1 events repriced, 0 would change" in clean.stdout, clean.stdout
    dirty = run_cli(*args, env={})
    assert dirty.returncode == 1, dirty.stdout + dirty.stderr
    # gpt-4o: $2.50 in / $10 out per 1M -> 0.0035 USD.
    assert "0.000000000001" in dirty.stdout and "0.0035" in dirty.stdout and "would change" in dirty.stdout
    assert run_cli(*args, "--apply", env={}).returncode == 0
    assert run_cli(*args, env={}).returncode == 0


def test_reprice_uses_the_same_user_prices(tmp_path: Path) -> None:
    from bearlumen.server.keys import create_api_key

    url = f"sqlite:///{tmp_path / 'usage.db'}"
    pricing = {"models": {"acme-ft-1": {"input": "2.00", "output": "8.00"}}}  # USD per 1M, negotiated
    bearlumen.instrument(
        api_key=create_api_key(url, "t"), base_url=url, integrations=["openai"], pricing=pricing, spool=False
    )
    try:
        usage = {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
        served = ServedTransport([chat_json("acme-ft-1", usage)])
        client = openai.OpenAI(api_key="sk", max_retries=0, http_client=httpx2.Client(transport=served))
        client.chat.completions.create(model="acme-ft-1", messages=MESSAGES)
        assert bearlumen.flush(timeout=60) is True
    finally:
        bearlumen.uninstrument()
    pricing_file = tmp_path / "pricing.json"
    pricing_file.write_text(json.dumps(pricing))
    args = ("reprice", "--database-url", url, "--since", SINCE, "--until", UNTIL)
    env = {"BEARLUMEN_PRICING_FILE": ""}
    without = run_cli(*args, env=env)
    # Without the user's prices the model has no price: the audit says the cost would become unknown.
    assert without.returncode == 1 and "0.0028" in without.stdout and "unpriced" in without.stdout, (
        without.stdout
    )
    with_file = run_cli(*args, "--pricing-file", str(pricing_file), env=env)
    assert with_file.returncode == 0 and "1 events repriced, 0 would change" in with_file.stdout, (
        with_file.stdout
    )


def test_reprice_keeps_a_cost_the_caller_stated(tmp_path: Path) -> None:
    # bearlumen.track(..., cost_usd=...) states the bill's own figure: a price-table lookup must never
    # overwrite it (gpt-4o-mini's table price for these tokens is $0.00021, the stated cost $0.5).
    from bearlumen.server.keys import create_api_key

    url = f"sqlite:///{tmp_path / 'usage.db'}"
    bearlumen.instrument(api_key=create_api_key(url, "t"), base_url=url, integrations=[], spool=False)
    try:
        bearlumen.track(
            None, provider="openai", model="gpt-4o-mini", input_tokens=1000, output_tokens=100, cost_usd="0.5"
        )
        assert bearlumen.flush(timeout=60) is True
    finally:
        bearlumen.uninstrument()
    result = reprice(Database(url), *FAR, apply=True)
    assert (result.checked, result.caller_priced, result.differences, result.applied) == (0, 1, [], False)
    assert "1 priced by the caller kept" in render(result)
    with Database(url).engine.connect() as conn:
        assert conn.execute(text("SELECT cost_pico FROM usage_events")).scalar_one() == 500_000_000_000
