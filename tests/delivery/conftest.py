"""Fixtures of the delivery suite: the real service (a process), a fresh tenant per test.

- ``tenant`` (``pg_tenant``): a new API key on the session's SQLite (PostgreSQL) service of
  ``tests/conftest.py``, with a direct client (not through any fault proxy) to check what it holds.
- ``own_service`` / ``own_tenant``: a service of this module only, for the tests that stop, kill and
  restart it.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

import bearlumen


@dataclass
class Tenant:
    service: Any
    key: str
    client: bearlumen.Client


def _tenant(service: Any) -> Iterator[Tenant]:
    key = str(service.create_key(f"delivery_{uuid.uuid4().hex[:12]}"))
    client = bearlumen.Client(api_key=key, base_url=service.base_url, max_retries=5)
    yield Tenant(service, key, client)
    client.close()


@pytest.fixture
def tenant(sqlite_service: Any) -> Iterator[Tenant]:
    yield from _tenant(sqlite_service)


@pytest.fixture
def pg_tenant(postgres_service: Any) -> Iterator[Tenant]:
    yield from _tenant(postgres_service)


@pytest.fixture(scope="module")
def own_service() -> Iterator[Any]:
    from tests.support.service import start_service

    service = start_service()
    yield service
    service.close()


@pytest.fixture
def own_tenant(own_service: Any) -> Iterator[Tenant]:
    if not getattr(own_service, "running", True):
        own_service.restart()
    yield from _tenant(own_service)


@pytest.fixture
def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(autouse=True)
def default_spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A test that uses the default spool (``spool=True``) gets one of its own, never ``~/.bearlumen``;
    producer processes inherit it through the environment."""
    directory = tmp_path / "default-spools"
    monkeypatch.setenv("BEARLUMEN_SPOOL_DIR", str(directory))
    return directory
