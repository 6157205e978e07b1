"""How long `import bearlumen` takes, against a bare interpreter start, in one run.

Each sample starts a fresh interpreter (imports are cached within one), alternating the baseline
(`python -c pass`) and `python -c "import bearlumen"`, and reports medians. For scale it also times
`import httpx` and `import openai`, which an app pays for anyway.

    python benchmarks/import_time.py [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from typing import Dict, List

STATEMENTS = {
    "baseline (python -c pass)": "pass",
    "import bearlumen": "import bearlumen",
    "import bearlumen; bearlumen.Client": "import bearlumen; bearlumen.Client",
    "import httpx (for scale)": "import httpx",
    "import openai (for scale)": "import openai",
}


def sample(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    samples: Dict[str, List[float]] = {name: [] for name in STATEMENTS}
    for _ in range(runs):  # interleaved, so drift in machine load hits every statement alike
        for name, statement in STATEMENTS.items():
            samples[name].append(sample(statement))
    baseline = statistics.median(samples["baseline (python -c pass)"])
    print(f"| statement | median wall time (ms) | added over a bare interpreter (ms) |  ({runs} runs)")
    print("|---|---:|---:|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median * 1e3:.1f} | {(median - baseline) * 1e3:.1f} |")


if __name__ == "__main__":
    main()
