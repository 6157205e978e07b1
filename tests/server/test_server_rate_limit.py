"""The per-key rate limit: off by default; when on, 429 ``rate_limited`` with ``Retry-After``."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest

from tests.server.helpers import error, uid
from tests.support.service import ServiceHandle, start_service


@pytest.fixture(scope="module")
def limited() -> Iterator[ServiceHandle]:
    handle = start_service(rate_limit=3)
    yield handle
    handle.close()


def test_burst_then_429_per_key(limited: ServiceHandle) -> None:
    with limited.client() as api, limited.client(limited.create_key(uid("other"))) as other:
        statuses = [api.get("/v1/end_users").status_code for _ in range(6)]
        assert statuses[:3] == [200, 200, 200] and 429 in statuses
        limited_answer = api.get("/v1/end_users")
        error(limited_answer, 429, "rate_limited")
        assert int(limited_answer.headers["retry-after"]) >= 1
        assert other.get("/v1/end_users").status_code == 200  # each key has its own bucket
        assert httpx.get(f"{limited.base_url}/healthz").status_code == 200  # health is never limited


def test_off_by_default(sqlite_service: ServiceHandle) -> None:
    with sqlite_service.client(sqlite_service.create_key(uid("free"))) as api:
        assert all(api.get("/v1/end_users").status_code == 200 for _ in range(50))
