"""What framework attribution adds to each metered call: `current_attribution()` (read once per LLM call)
with the pydantic-ai and Agents SDK lookups installed, against the same read with no lookup.

    .venv/bin/python benchmarks/framework_lookup.py

Cases, interleaved round by round so a noisy machine hits them alike (medians of ROUNDS rounds of N reads):
- baseline: no framework lookup (`instrument(framework_agents=False)`);
- outside any run: both lookups installed, both frameworks imported, no run in progress;
- in an Agents SDK agent span: inside `trace()` / `agent_span()`, with a generation span open (the walk
  up to the agent).
Prints nanoseconds per read and the ratio to the baseline.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, Dict, List

from bearlumen.integrations import openai_agents, pydantic_ai

from bearlumen.scopes import current_attribution

N = 20_000
ROUNDS = 15


def _per_read(setup: Callable[[], Callable[[], None]]) -> float:
    teardown = setup()
    try:
        started = time.perf_counter_ns()
        for _ in range(N):
            current_attribution()
        return (time.perf_counter_ns() - started) / N
    finally:
        teardown()


def _baseline() -> Callable[[], None]:
    openai_agents.uninstall()
    pydantic_ai.uninstall()
    return lambda: None


def _installed() -> Callable[[], None]:
    openai_agents.install()
    pydantic_ai.install()
    return lambda: None


def _in_agent_span() -> Callable[[], None]:
    from agents.tracing import agent_span, generation_span, trace

    _installed()
    spans = []
    for make in (lambda: trace("bench"), lambda: agent_span(name="researcher"), generation_span):
        span = make()  # made after its parent is entered: the SDK parents it to the current span
        span.__enter__()
        spans.append(span)
    assert current_attribution().agent_id == "researcher"

    def close() -> None:
        for span in reversed(spans):
            span.__exit__(None, None, None)

    return close


def main() -> None:
    import agents
    import pydantic_ai as _framework  # noqa: F401  (imported, as in an app that uses it)

    agents.set_trace_processors([])  # no export to OpenAI; install() adds ours
    cases = {
        "baseline (no lookup)": _baseline,
        "outside any run": _installed,
        "in an agent span": _in_agent_span,
    }
    samples: Dict[str, List[float]] = {name: [] for name in cases}
    for _ in range(ROUNDS):
        for name, setup in cases.items():
            samples[name].append(_per_read(setup))
    base = statistics.median(samples["baseline (no lookup)"])
    print("| case | ns per current_attribution() | ratio |")
    print("|---|---|---|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.0f} | {median / base:.2f}x |")


if __name__ == "__main__":
    main()
