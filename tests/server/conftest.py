"""Fixtures of the service suite: a fresh tenant per test on the session services (both backends)."""

from __future__ import annotations

import uuid
from typing import Iterator

import httpx
import pytest

from tests.support.service import ServiceHandle


def new_tenant_client(service: ServiceHandle) -> httpx.Client:
    key = service.create_key(f"srv_{uuid.uuid4().hex[:12]}")
    return service.client(key)


@pytest.fixture
def api(service: ServiceHandle) -> Iterator[httpx.Client]:
    """An httpx client of a brand-new tenant, on SQLite and on PostgreSQL (parametrized)."""
    with new_tenant_client(service) as client:
        yield client


@pytest.fixture
def sqlite_api(sqlite_service: ServiceHandle) -> Iterator[httpx.Client]:
    with new_tenant_client(sqlite_service) as client:
        yield client
