"""What the provider overhead benchmarks share: recorded bodies, the caller-thread sink, and the
interleaved measurement of one call without and with an integration installed.

The ratio reported is the median over rounds of each round's instrumented / baseline ratio: the two
batches of a round run back to back (alternating which goes first), so their ratio cancels most of the
drift of a busy machine. It is the figure the targets apply to.
"""

from __future__ import annotations

import gc
import gzip
import queue
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, List

import yaml  # type: ignore[import-untyped,unused-ignore]

from bearlumen.metering.record import LLMCall

CASSETTES = Path(__file__).resolve().parent.parent / "tests" / "cassettes"


def recorded_body(relative: str) -> bytes:
    """The first response body of a cassette, as the API sent it (decompressed)."""
    document = yaml.safe_load((CASSETTES / relative).read_text(encoding="utf-8"))
    body = document["interactions"][0]["response"]["body"]["string"]
    if isinstance(body, str):
        return body.encode()
    try:
        return gzip.decompress(body)
    except OSError:
        return bytes(body)


class QueueSink:
    """What the exporter does on the caller's thread: hand the call to a queue."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[LLMCall] = queue.SimpleQueue()
        self.count = 0

    def submit(self, call: LLMCall) -> None:
        self.count += 1
        self.queue.put(call)

    def drain(self) -> None:
        while True:
            try:
                self.queue.get_nowait()
            except queue.Empty:
                return


def time_batch(operation: Callable[[], Any], batch: int) -> float:
    """Seconds per call over `batch` calls."""
    gc.collect()
    started = time.perf_counter()
    for _ in range(batch):
        operation()
    return (time.perf_counter() - started) / batch


@dataclass
class Paired:
    """Per-call seconds of each interleaved round, without (`baseline`) and with (`instrumented`)."""

    baseline: List[float] = field(default_factory=list)
    instrumented: List[float] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return statistics.median(i / b for b, i in zip(self.baseline, self.instrumented))

    def row(self, name: str) -> str:
        base = statistics.median(self.baseline)
        inst = statistics.median(self.instrumented)
        overhead = (self.ratio - 1) * base
        return f"| {name} | {base * 1e6:.1f} | {inst * 1e6:.1f} | {overhead * 1e6:+.1f} | {self.ratio:.3f}x |"


def measure(
    operation: Callable[[], Any], integration: ModuleType, rounds: int, batch: int, sink: QueueSink
) -> Paired:
    """Time `operation` without and with `integration` installed, interleaved round by round."""
    result = Paired()
    for _ in range(3):  # warm both paths (imports, caches, pydantic schemas)
        integration.install()
        operation()
        integration.uninstall()
        operation()
    for round_index in range(rounds):
        order = (False, True) if round_index % 2 == 0 else (True, False)
        for instrumented_now in order:
            if instrumented_now:
                integration.install()
                result.instrumented.append(time_batch(operation, batch))
                integration.uninstall()
            else:
                result.baseline.append(time_batch(operation, batch))
            sink.drain()
    return result


TABLE_HEADER = (
    "| call | uninstrumented µs/call | instrumented µs/call | overhead µs/call | ratio (paired, median) |\n"
    "|---|---:|---:|---:|---:|"
)
