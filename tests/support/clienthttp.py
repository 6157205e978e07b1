"""The HTTP library each installed provider client is built on, for tests that hand it an `http_client`.

openai 3.x and every anthropic release this project supports run on `httpx2`; openai 2.x runs on `httpx`.
A client rejects an `http_client` of the other library, so tests build theirs from `openai_httpx`.
Decided from the installed version, without importing openai (some tests check when it gets imported).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from tests.support.versions import OPENAI

openai_httpx: ModuleType = importlib.import_module("httpx2" if OPENAI >= (3,) else "httpx")


def library_of(request: Any) -> ModuleType:
    """`httpx` or `httpx2`: the library a request object (or response) belongs to."""
    return importlib.import_module(type(request).__module__.split(".")[0])
