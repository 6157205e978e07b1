"""Delivery layer: the caller-thread cost of one usage event, and the sustained delivery rate.

1. Caller-thread cost of `Exporter.submit(call)` (what an instrumented LLM call pays on its own thread),
   for the in-memory store (`spool=False`), the default SQLite spool, and the spool in strict mode
   (`submit` returns once the event is committed to the file). Calls are built beforehand (building
   the LLMCall is the integration's cost, measured in its own benchmarks). Submits come in bursts of
   `--burst`, with a pause after each so the writer can drain (an app's LLM calls take hundreds of
   milliseconds each); the three modes are interleaved round by round and medians are reported.
2. Sustained delivery rate to the real service over HTTP: `--events` calls submitted as fast as the
   buffer takes them, then `flush()`; events/s from the first submit to the flush's return (pricing,
   spool writes, batching and HTTP included), with and without the spool. The service runs on the same
   machine (2 vCPUs here), so the two compete for CPU. Pricing reuses each model's resolved rates
   (~15 µs a call; bearlumen/metering/rates.py); the spool's SQLite writes and the delivery requests are
   most of the exporter's own work.

    python benchmarks/delivery.py [--rounds 30] [--burst 200] [--events 20000]
                                  [--base-url http://... --api-key blm_...]

Without --base-url it starts the service (SQLite) with the test-suite helper.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bearlumen  # noqa: E402
from bearlumen.delivery.exporter import Exporter  # noqa: E402
from bearlumen.metering.pricing import PriceBook  # noqa: E402
from bearlumen.metering.record import LLMCall, TokenUsage  # noqa: E402


def make_calls(prefix: str, count: int) -> List[LLMCall]:
    return [
        LLMCall(
            integration="openai",
            provider="openai",
            operation="chat.completions",
            model_requested="gpt-4o",
            model="gpt-4o-2024-08-06",
            usage=TokenUsage(input_tokens=120, cache_read_tokens=40, output_tokens=30),
            response_id=f"{prefix}-{i}",
        )
        for i in range(count)
    ]


def exporter(base_url: str, api_key: str, spool: Any, **options: Any) -> Exporter:
    client = bearlumen.Client(api_key=api_key, base_url=base_url)
    return Exporter(client, PriceBook.from_config(None), spool=spool, **options)


def caller_cost(base_url: str, api_key: str, rounds: int, burst: int, workdir: str) -> Dict[str, List[float]]:
    modes: Dict[str, Exporter] = {
        "in-memory (spool=False)": exporter(base_url, api_key, False),
        "spool (default)": exporter(base_url, api_key, f"{workdir}/bench-spool.db"),
        "spool, strict=True": exporter(base_url, api_key, f"{workdir}/bench-strict.db", strict=True),
        "spool, strict=True, synchronous=NORMAL": exporter(
            base_url, api_key, f"{workdir}/bench-strict-n.db", strict=True, spool_synchronous="NORMAL"
        ),
    }
    samples: Dict[str, List[float]] = {name: [] for name in modes}
    names = list(modes)
    for round_index in range(rounds + 2):  # the first two rounds warm up (threads, pricing data, files)
        order = names if round_index % 2 == 0 else list(reversed(names))
        for name in order:
            target = modes[name]
            calls = make_calls(f"cost-{uuid.uuid4().hex[:8]}", burst)
            gc.collect()
            gc.disable()
            started = time.perf_counter_ns()
            for call in calls:
                target.submit(call)
            elapsed = time.perf_counter_ns() - started
            gc.enable()
            if round_index >= 2:
                samples[name].append(elapsed / burst / 1000.0)
            target.flush(60)  # the pause between bursts: everything delivered before the next
            time.sleep(0.02)
    for target in modes.values():
        target.shutdown(10)
    return samples


def delivery_rate(base_url: str, api_key: str, events: int, spool: Any) -> Tuple[float, Dict[str, Any]]:
    target = exporter(base_url, api_key, spool, max_queue_size=events + 10)
    target.submit(make_calls(f"warm-{uuid.uuid4().hex[:8]}", 1)[0])  # load the price data first
    target.flush(60)
    target._counts["delivered"] = 0
    calls = make_calls(f"rate-{uuid.uuid4().hex[:8]}", events)
    started = time.perf_counter()
    for call in calls:
        target.submit(call)
    ok = target.flush(600)
    elapsed = time.perf_counter() - started
    stats = target.stats()
    target.shutdown(10)
    if not ok or stats["delivered"] != events:
        raise SystemExit(f"delivery incomplete: {stats}")
    return events / elapsed, stats


def start_service() -> Tuple[str, str, Optional[Callable[[], None]]]:
    from tests.support.service import start_service as start

    service = start()
    key = service.create_key(f"bench_{uuid.uuid4().hex[:8]}")
    return service.base_url, key, service.stop


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--base-url")
    parser.add_argument("--api-key")
    args = parser.parse_args()

    stop: Optional[Callable[[], None]] = None
    if args.base_url and args.api_key:
        base_url, api_key = args.base_url, args.api_key
    else:
        base_url, api_key, stop = start_service()
    try:
        with tempfile.TemporaryDirectory() as workdir:
            samples = caller_cost(base_url, api_key, args.rounds, args.burst, workdir)
            rates = {
                "in-memory (spool=False)": delivery_rate(base_url, api_key, args.events, False),
                "spool (default)": delivery_rate(base_url, api_key, args.events, f"{workdir}/rate.db"),
            }
    finally:
        if stop is not None:
            stop()

    memory = statistics.median(samples["in-memory (spool=False)"])
    print(f"\nCaller-thread cost of one submit ({args.rounds} rounds x {args.burst} calls, medians)\n")
    print("| store | µs per submit (median) | p90 of round means | ratio to in-memory |")
    print("|---|---:|---:|---:|")
    for name, values in samples.items():
        median = statistics.median(values)
        p90 = sorted(values)[int(0.9 * (len(values) - 1))]
        print(f"| {name} | {median:.2f} | {p90:.2f} | {median / memory:.2f}x |")
    print(f"\nSustained delivery rate to the service over HTTP ({args.events} events, submit to flush)\n")
    print("| store | events/s | batches | retries |")
    print("|---|---:|---:|---:|")
    for name, (rate, stats) in rates.items():
        print(f"| {name} | {rate:,.0f} | {stats['batches']} | {stats['retries']} |")


if __name__ == "__main__":
    main()
