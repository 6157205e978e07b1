"""``bearlumen export`` through the real command, on SQLite and PostgreSQL: every format read back equals
the database row for row (exact decimal costs and quantities, unpriced stays empty, metadata intact)."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from sqlalchemy import text

from bearlumen.server.db import Database
from tests.server.helpers import event, record_batch, uid
from tests.support.service import ServiceHandle

BEARLUMEN = str(Path(sys.executable).with_name("bearlumen"))
SINCE, UNTIL = "2019-03-01", "2019-04-01"


def _export(service: ServiceHandle, *args: str, env: Optional[Dict[str, str]] = None) -> Any:
    return subprocess.run(
        [
            BEARLUMEN,
            "export",
            "--since",
            SINCE,
            "--until",
            UNTIL,
            *args,
            "--database-url",
            service.database_url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _stored(service: ServiceHandle, tenant: Optional[str]) -> List[Dict[str, Any]]:
    """The rows as the database holds them, in export order."""
    db = Database(service.database_url)
    where = "" if tenant is None else "AND t.name = :tenant"
    try:
        rows = db.read(
            lambda conn: conn.execute(
                text(
                    "SELECT e.public_id, t.name, e.quantity_micro, e.cost_pico, e.model, e.agent_id, "
                    "e.idempotency_key, e.metadata FROM usage_events e JOIN tenants t ON t.id = e.tenant_id "
                    f"WHERE e.ts_us >= 1551398400000000 AND e.ts_us < 1554076800000000 {where} "
                    "ORDER BY e.tenant_id, e.ts_us, e.id"
                ),
                {"tenant": tenant},
            ).all()
        )
    finally:
        db.close()
    return [
        {
            "id": r[0],
            "tenant": r[1],
            "quantity_micro": r[2],
            "cost_pico": r[3],
            "model": r[4],
            "agentId": r[5],
            "idempotencyKey": r[6],
            "metadata": json.loads(r[7]),
        }
        for r in rows
    ]


def _as_stored(row: Dict[str, Any]) -> Dict[str, Any]:
    """An exported row (strings) back in the database's units, exactly (Decimal, never float)."""
    cost = row["providerCostUsd"]
    return {
        "id": row["id"],
        "tenant": row["tenant"],
        "quantity_micro": int(Decimal(row["quantity"]) * 10**6),
        "cost_pico": None if cost in (None, "") else int(Decimal(cost) * 10**12),
        "model": row["model"] or None,
        "agentId": row["agentId"] or None,
        "idempotencyKey": row["idempotencyKey"],
        "metadata": json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"],
    }


def _seed(service: ServiceHandle) -> str:
    tenant = uid("export")
    costs = ["0.000000000001", "123456.789012345678", None, "0.5", "7"]
    events = [
        event(
            idempotency_key=f"x-{i}",
            quantity=i + 0.25 if i % 3 else i * 1000,  # 0.25: exact in binary and in JSON
            timestamp=f"2019-03-{1 + i % 28:02d}T{i % 24:02d}:00:00.{i:06d}Z",
            agent_id=None if i % 4 == 0 else f"agent,{i % 3}",  # a comma: CSV quoting
            metadata={
                **({"model": "gpt-4o"} if i % 2 else {}),
                **({} if costs[i % 5] is None else {"provider_cost_usd": costs[i % 5]}),
                "note": 'line\nbreak "quoted" é',
            },
        )
        for i in range(40)
    ]
    with service.client(service.create_key(tenant)) as api:
        assert record_batch(api, events)["recorded_count"] == 40
    return tenant


def test_export_formats_read_back_equal_the_database(service: ServiceHandle, tmp_path: Path) -> None:
    tenant = _seed(service)
    stored = _stored(service, tenant)
    assert len(stored) == 40
    assert sum(1 for row in stored if row["cost_pico"] is None) == 8

    done = _export(service, "--format", "csv", "--tenant", tenant, "--output", str(tmp_path / "e.csv"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "Exported 40 events."
    with open(tmp_path / "e.csv", newline="", encoding="utf-8") as handle:
        assert [_as_stored(r) for r in csv.DictReader(handle)] == stored

    done = _export(service, "--format", "jsonl", "--tenant", tenant)  # to stdout
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line, parse_float=Decimal) for line in done.stdout.splitlines()]
    assert [_as_stored(r) for r in lines] == stored
    by_key = {line["idempotencyKey"]: line for line in lines}
    assert by_key["x-1"]["providerCostUsd"] == "123456.789012345678"  # exact, as sent
    assert (by_key["x-1"]["quantity"], by_key["x-3"]["quantity"]) == ("1.25", "3000")
    assert by_key["x-2"]["providerCostUsd"] is None  # unpriced: null, never 0
    assert by_key["x-0"]["metadata"]["note"] == 'line\nbreak "quoted" é'

    import pyarrow.parquet as pq

    done = _export(
        service, "--format", "parquet", "--tenant", tenant, "--output", str(tmp_path / "e.parquet")
    )
    assert done.returncode == 0, done.stderr
    table = pq.read_table(tmp_path / "e.parquet")
    assert [_as_stored(r) for r in table.to_pylist()] == stored

    everyone = _export(service, "--format", "jsonl")
    assert everyone.returncode == 0, everyone.stderr
    every_row = [_as_stored(json.loads(line)) for line in everyone.stdout.splitlines()]
    assert every_row == _stored(service, None)


def test_export_errors(service: ServiceHandle, tmp_path: Path) -> None:
    unknown = _export(service, "--format", "csv", "--tenant", "nobody-" + uid())
    assert unknown.returncode == 1 and "No tenant named" in unknown.stderr
    no_file = _export(service, "--format", "parquet")
    assert no_file.returncode == 2 and "--output" in no_file.stderr
    # Without pyarrow: a stand-in package that fails to import, as an install without the extra would
    # (a hand-made fake: no recording can make an import fail).
    fake = tmp_path / "fake"
    (fake / "pyarrow").mkdir(parents=True)
    (fake / "pyarrow" / "__init__.py").write_text("raise ImportError('No module named pyarrow')\n")
    env = {**os.environ, "PYTHONPATH": str(fake)}
    target = tmp_path / "none.parquet"
    missing = _export(service, "--format", "parquet", "--output", str(target), env=env)
    assert missing.returncode == 1
    assert "pip install 'bearlumen[export]'" in missing.stderr
    assert not target.exists()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_of_an_empty_range(service: ServiceHandle, fmt: str, tmp_path: Path) -> None:
    tenant = uid("empty")
    service.create_key(tenant)
    done = _export(service, "--format", fmt, "--tenant", tenant)
    assert done.returncode == 0 and done.stderr.strip() == "Exported 0 events."
    assert done.stdout == (
        "id,tenant,timestamp,receivedAt,eventType,metricName,quantity,providerCostUsd,model,"
        "agentId,workflowId,subscriptionId,endUserId,idempotencyKey,metadata\n"
        if fmt == "csv"
        else ""
    )
