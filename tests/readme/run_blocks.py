"""Run the README's python blocks in order, in one namespace, as a reader would paste them.

    python tests/readme/run_blocks.py OUT.json

Run by `test_readme.py` in a subprocess (instrumentation and exit hooks stay out of pytest), with
BEARLUMEN_API_KEY / BEARLUMEN_BASE_URL naming a fresh tenant of a real service and placeholder provider
keys: provider calls replay the cassette the block's marker names, and any other provider call fails
(vcrpy's record_mode "none"). Writes, per block, its line, what it printed and the error that stopped it.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback
from pathlib import Path
from typing import Any, Dict, List

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.readme.blocks import readme_blocks  # noqa: E402
from tests.support.cassettes import replay  # noqa: E402


def main(out_path: str) -> None:
    namespace: Dict[str, Any] = {"__name__": "__readme__"}
    results: List[Dict[str, Any]] = []
    for block in readme_blocks():
        if not block.runnable:
            continue
        printed = io.StringIO()
        error = None
        cassette = block.markers.get("cassette")
        provider = replay(cassette) if cassette else contextlib.nullcontext()
        try:
            with contextlib.redirect_stdout(printed), provider:
                exec(compile(block.code, f"README.md:{block.line}", "exec"), namespace)
        except BaseException:
            error = traceback.format_exc()
        results.append({"line": block.line, "stdout": printed.getvalue(), "error": error})
        if error:
            break  # later blocks build on this one
    _finish(namespace)
    Path(out_path).write_text(json.dumps(results, indent=2), encoding="utf-8")


def _finish(namespace: Dict[str, Any]) -> None:
    """Deliver and stop what the blocks started (instrumentation, clients)."""
    import bearlumen

    bearlumen.uninstrument()
    for value in namespace.values():
        if isinstance(value, bearlumen.Client):
            value.close()


if __name__ == "__main__":
    main(sys.argv[1])
