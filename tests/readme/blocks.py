"""The README's fenced code blocks, with the markers that tell `test_readme.py` how to run them.

Every ```python block of README.md runs, in order, in one namespace (see `run_blocks.py`). An HTML comment
on the line(s) right above a fence changes that (GitHub does not render it):

    <!-- readme-test: skip REASON -->       the next block is not runnable (a signature, a fragment)
    <!-- readme-test: cassette PATH -->     replay tests/cassettes/PATH while the next block runs
    <!-- readme-test: output -->            the next (```text) block is what the python block above prints

Skips are counted by the test: keep them rare, and prefer ```text for what is not Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

README = Path(__file__).resolve().parents[2] / "README.md"

_FENCE = re.compile(r"^```(\S*)\s*$")
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(\w+)\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    language: str
    code: str
    markers: Dict[str, str] = field(default_factory=dict)
    expected_output: Optional[str] = None  # from a following `output` block, for python blocks

    @property
    def runnable(self) -> bool:
        return self.language == "python" and "skip" not in self.markers


def parse(text: str) -> List[Block]:
    """The top-level fenced blocks of a Markdown text, in order, with their markers."""
    lines = text.splitlines()
    blocks: List[Block] = []
    pending: Dict[str, str] = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        marker = _MARKER.match(line)
        fence = _FENCE.match(line)
        if marker:
            if marker.group(1) not in ("skip", "cassette", "output"):
                raise ValueError(f"README line {index + 1}: unknown readme-test marker {marker.group(1)!r}")
            pending[marker.group(1)] = marker.group(2)
        elif fence:
            start = index
            index += 1
            body: List[str] = []
            while index < len(lines) and not lines[index].startswith("```"):
                body.append(lines[index])
                index += 1
            if index == len(lines):
                raise ValueError(f"README line {start + 1}: code block never closed")
            block = Block(start + 1, fence.group(1), "\n".join(body) + "\n", pending)
            if "output" in pending:
                _attach_output(blocks, block)
            blocks.append(block)
            pending = {}
        elif line.strip():
            pending = {}  # a marker applies only to the fence right below it
        index += 1
    return blocks


def _attach_output(blocks: List[Block], output: Block) -> None:
    python = [b for b in blocks if b.language == "python"]
    if not python or not python[-1].runnable or python[-1].expected_output is not None:
        raise ValueError(f"README line {output.line}: an output block must follow a runnable python block")
    python[-1].expected_output = output.code


def readme_blocks() -> List[Block]:
    return parse(README.read_text(encoding="utf-8"))
