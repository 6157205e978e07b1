from __future__ import annotations

import uuid

import pytest

from tests.support.service import ServiceHandle


@pytest.fixture
def tenant(sqlite_service: ServiceHandle) -> str:
    """A fresh tenant's API key: events of other tests never show, and a replayed response is new to it."""
    return sqlite_service.create_key(f"otlp-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def backend_tenant(service: ServiceHandle) -> tuple[ServiceHandle, str]:
    """The service on SQLite, then on PostgreSQL (tests/conftest.py's `service`), and a fresh tenant's key."""
    return service, service.create_key(f"otlp-{uuid.uuid4().hex[:10]}")
