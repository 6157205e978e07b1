from __future__ import annotations

import uuid
from typing import Any, Iterator

import pytest
from opentelemetry.instrumentation.openai import OpenAIInstrumentor as OpenLLMetryInstrumentor
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as OpenAIV2Instrumentor

from tests.support.service import ServiceHandle


@pytest.fixture
def tenant(sqlite_service: ServiceHandle) -> str:
    """A fresh tenant's API key: events of other tests never show, and a replayed response is new to it."""
    return sqlite_service.create_key(f"otlp-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def backend_tenant(service: ServiceHandle) -> tuple[ServiceHandle, str]:
    """The service on SQLite, then on PostgreSQL (tests/conftest.py's `service`), and a fresh tenant's key."""
    return service, service.create_key(f"otlp-{uuid.uuid4().hex[:10]}")


def _instrumentor(cls: Any) -> Iterator[Any]:
    """The instrumentor, not yet instrumenting (the test passes its tracer provider); undone afterwards."""
    instrumentor = cls()
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture
def openai_v2() -> Iterator[OpenAIV2Instrumentor]:
    """The official OTel openai-v2 instrumentation."""
    yield from _instrumentor(OpenAIV2Instrumentor)


@pytest.fixture
def openllmetry() -> Iterator[OpenLLMetryInstrumentor]:
    """OpenLLMetry's (Traceloop's) openai instrumentation."""
    yield from _instrumentor(OpenLLMetryInstrumentor)
