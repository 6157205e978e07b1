"""What service-side pricing costs ingest: validating 1000-event batches, in process, side by side.

    .venv/bin/python benchmarks/pending_pricing.py [--rounds 15]

Cases, interleaved round by round (this machine is shared: medians of the rounds, ratios within a run):

- ``sdk_priced``: events as the Python SDK sends them (with ``provider_cost_usd``): the baseline, which
  service-side pricing must not slow (it only compares ``pricing_status`` with ``"pending"``);
- ``pending``: the same calls sent ``pricing_status: "pending"`` (as the Node SDK does), priced by the
  service's price book with its cached rates (per model, tier and date: bearlumen/metering/rates.py);
- ``pending_uncached``: the same, priced through genai-prices' whole path for every event (``cache=False``),
  to show what the cached rates save.

Validation is where the service prices (bearlumen/server/usage/validate.py); the database write that
follows is the same for every case and is measured by benchmarks/ingest.py.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from typing import Any, Callable, Dict, List

from bearlumen.metering.event import build_event
from bearlumen.metering.pricing import PriceBook
from bearlumen.metering.record import LLMCall, TokenUsage
from bearlumen.server.usage import pricing
from bearlumen.server.usage.validate import validate_event

MODELS = [
    ("openai", "gpt-4o-mini-2024-07-18"),
    ("anthropic", "claude-3-7-sonnet-20250219"),
    ("openai", "gpt-5"),
]


def _events(count: int, seed: int) -> List[Dict[str, Any]]:
    rng = random.Random(seed)
    book, now = PriceBook(), time.time()
    events = []
    for i in range(count):
        provider, model = MODELS[i % len(MODELS)]
        usage = TokenUsage(
            input_tokens=rng.randrange(5000),
            cache_read_tokens=rng.randrange(5000),
            output_tokens=rng.randrange(3000),
        )
        call = LLMCall("bench", provider, "chat", model, model, usage, timestamp=now)
        events.append(build_event(call, book, f"llm_{i}"))
    return events


def _pending(events: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    out = []
    for event in events:
        metadata = {
            k: v for k, v in event["metadata"].items() if not k.startswith(("pricing_", "provider_cost"))
        }
        out.append({**event, "metadata": {**metadata, "pricing_status": "pending"}})
    return out


def _time(events: List[Dict[str, Any]], book: PriceBook) -> float:
    pricing._prices = book
    now = time.time_ns() // 1000
    start = time.perf_counter()
    for event in events:
        validate_event(event, now)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    priced = _events(args.batch, 1)
    pending = _pending(priced)
    cached, uncached = PriceBook(), PriceBook(cache=False)
    cases: Dict[str, Callable[[], float]] = {
        "sdk_priced": lambda: _time(priced, cached),
        "pending": lambda: _time(pending, cached),
        "pending_uncached": lambda: _time(pending, uncached),
    }
    for run in cases.values():  # warm up: the engine's data, the cached rates
        run()
    times: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, run in cases.items():
            times[name].append(run())
    base = statistics.median(times["sdk_priced"])
    print(f"| case | median ms / {args.batch} events | µs / event | ratio to sdk_priced |")
    print("|---|---|---|---|")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"| {name} | {median * 1e3:.2f} | {median * 1e6 / args.batch:.1f} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
