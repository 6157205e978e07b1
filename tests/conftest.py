"""Session fixtures shared by every suite: the real Bear Lumen service, as a process, on both backends.

- ``sqlite_service``: ``bearlumen serve`` on a fresh SQLite file (one per test session).
- ``postgres_service``: ``bearlumen serve`` on a fresh PostgreSQL database ``bearlumen_test_<random>``,
  dropped at the end of the session.
- ``service``: parametrized over both (ids ``sqlite`` and ``postgresql``).

Each is a ``tests.support.service.ServiceHandle``: ``.base_url``, ``.api_key`` (tenant ``test``),
``.database_url``, ``.create_key(tenant)``, ``.stop()``, ``.kill()``, ``.restart()``. The services are
shared by the whole session: give each test its own tenant (``service.create_key(...)``) rather than
relying on an empty database, and do not stop them (start your own with ``start_service`` for that).

PostgreSQL must be reachable (see ``tests.support.service.PG_ADMIN_URL``); set ``BEARLUMEN_SKIP_PG=1`` to
skip the PostgreSQL variants instead of failing.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Iterator, Optional, Tuple

import pytest

from bearlumen.metering import record
from tests.support.pricing_check import assert_priced_exactly
from tests.support.service import (
    ServiceHandle,
    drop_postgres_database,
    new_postgres_database,
    postgres_available,
    start_service,
)
from tests.support.sinks import ListSink

# Spools of `bearlumen.instrument()` in tests (and in the processes tests start) go to a throwaway
# folder, never to the user's ~/.bearlumen; it is removed when the session ends.
_SPOOL_DIR: Optional[str] = None
if "BEARLUMEN_SPOOL_DIR" not in os.environ:
    _SPOOL_DIR = tempfile.mkdtemp(prefix="bearlumen-test-spool-")
    os.environ["BEARLUMEN_SPOOL_DIR"] = _SPOOL_DIR


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SPOOL_DIR is not None:
        shutil.rmtree(_SPOOL_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def sqlite_service() -> Iterator[ServiceHandle]:
    handle = start_service()
    yield handle
    handle.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for the session (dropped at the end)."""
    if not postgres_available():
        if os.environ.get("BEARLUMEN_SKIP_PG") == "1":
            pytest.skip("PostgreSQL is not reachable and BEARLUMEN_SKIP_PG=1")
        pytest.fail("PostgreSQL is not reachable (set BEARLUMEN_SKIP_PG=1 to skip these tests)")
    url = new_postgres_database()
    yield url
    drop_postgres_database(url)


@pytest.fixture(scope="session")
def postgres_service(postgres_url: str) -> Iterator[ServiceHandle]:
    handle = start_service(postgres_url)
    yield handle
    handle.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def service(request: pytest.FixtureRequest) -> ServiceHandle:
    name = "sqlite_service" if request.param == "sqlite" else "postgres_service"
    handle: ServiceHandle = request.getfixturevalue(name)
    return handle


@pytest.fixture(params=["http-sqlite", "http-postgresql", "embedded-sqlite"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Tuple[str, str]:
    """(base_url, API key of a fresh tenant) on each way of running the service: `bearlumen serve` over
    HTTP on SQLite and on PostgreSQL (the session services), and embedded (a database URL as base_url)."""
    tenant = f"t_{uuid.uuid4().hex[:16]}"
    if request.param == "embedded-sqlite":
        from bearlumen.server.keys import create_api_key

        url = f"sqlite:///{tmp_path / 'usage.db'}"
        return url, create_api_key(url, tenant)
    # `service` is itself parametrized, so each backend's session service is asked for by name.
    service = request.getfixturevalue(
        "sqlite_service" if request.param == "http-sqlite" else "postgres_service"
    )
    return str(service.base_url), str(service.create_key(tenant))


@pytest.fixture
def sink() -> Iterator[ListSink]:
    """Emitted LLM calls collected in a list (the exact calls an integration observed).

    Every collected call is also priced through the cached rates and through genai-prices' whole path,
    which must agree exactly (tests/support/pricing_check.py).
    """
    collected = ListSink()
    previous = record.set_sink(collected)
    try:
        yield collected
    finally:
        record.set_sink(previous)
    for call in list(collected.calls):
        assert_priced_exactly(call)
