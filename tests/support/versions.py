"""The installed provider clients' versions, for the few tests whose expectations differ between the
supported ranges (openai 2.x / 3.x, anthropic 1.x / 2.x; `.ci/versions` runs the suites on each).

Read from the package metadata, without importing the clients (some tests check when they get imported).
A test branches on these only where the client itself differs (an API it lacks, events it drops), never
to excuse Bear Lumen: each branch says what the older client does.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Tuple


def _version(package: str) -> Tuple[int, ...]:
    return tuple(int(part) for part in version(package).split(".")[:3] if part.isdigit())


OPENAI = _version("openai")
ANTHROPIC = _version("anthropic")
