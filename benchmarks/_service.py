"""Benchmark helpers: start the real service (as the tests do) and make realistic events."""

from __future__ import annotations

import argparse
import random
import secrets
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.support.service import (  # noqa: E402
    ServiceHandle,
    drop_postgres_database,
    new_postgres_database,
    start_service,
)

__all__ = ["ServiceHandle", "make_events", "range_args", "running_service"]

MODELS = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "claude-haiku-4-5", "gemini-2.5-pro"]


@contextmanager
def running_service(
    backend: str, rate_limit: Optional[float] = None, args: Optional[List[str]] = None
) -> Iterator[ServiceHandle]:
    """A fresh ``bearlumen serve`` process on a fresh SQLite file or PostgreSQL database (``args``: more
    ``bearlumen serve`` options, e.g. ``["--workers", "2"]``)."""
    pg_url = new_postgres_database() if backend == "postgresql" else None
    handle = start_service(pg_url, rate_limit=rate_limit, args=args)
    try:
        yield handle
    finally:
        handle.close()
        if pg_url is not None:
            drop_postgres_database(pg_url)


def make_events(
    count: int,
    *,
    start_us: int,
    span_us: int,
    agents: int = 50,
    workflows: int = 20,
    seed: int = 0,
    unpriced_share: float = 0.05,
    ordered: bool = False,
) -> List[Dict[str, Any]]:
    """Events shaped like the SDK's LLM calls: random ``llm_<hex>`` keys, token quantities, decimal costs.

    Timestamps are random in ``[start_us, start_us + span_us)``, or evenly increasing over it when
    ``ordered`` (live traffic: a batch holds the calls of the last moments, in order).
    """
    rng = random.Random(seed)
    events = []
    for index in range(count):
        tokens_in, tokens_out = rng.randint(50, 20_000), rng.randint(10, 4_000)
        metadata: Dict[str, Any] = {
            "model": rng.choice(MODELS),
            "provider": "openai",
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
        }
        if rng.random() < unpriced_share:
            metadata["pricing_status"] = "unpriced"
        else:
            metadata["provider_cost_usd"] = f"{rng.randint(1, 5_000_000) / 1e8:.8f}"
        ts = start_us + (span_us * index // count if ordered else rng.randrange(span_us))
        events.append(
            {
                "event_type": "llm_call",
                "metric_name": "llm_tokens",
                "quantity": tokens_in + tokens_out,
                "idempotency_key": "llm_" + secrets.token_hex(16),
                "agent_id": f"agent-{rng.randrange(agents):02d}",
                "workflow_id": f"workflow-{rng.randrange(workflows):02d}",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts / 1e6))
                + f".{ts % 1_000_000:06d}Z",
                "metadata": metadata,
            }
        )
    return events


def range_args(description: str) -> Tuple[List[str], int, int]:
    """``--backend`` (sqlite, postgresql or both), ``--events`` and ``--days``: (backends, events, days)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    return backends, args.events, args.days
