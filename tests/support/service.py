"""The real Bear Lumen service as a subprocess, for tests (and benchmarks) that talk HTTP to it.

    service = start_service()                       # fresh SQLite file in a temp dir
    service = start_service(new_postgres_database())
    httpx.get(f"{service.base_url}/v1/end_users", headers={"Authorization": f"Bearer {service.api_key}"})
    service.create_key("other-tenant")              # another tenant's key
    service.restart(); service.kill(); service.stop()

``start_service`` runs the installed ``bearlumen serve`` command (the console script next to the current
interpreter, else ``python -m bearlumen.cli``) on a free loopback port and waits for ``/healthz``. The API
key of tenant ``test`` is created before the start, in-process, with
``bearlumen.server.keys.create_api_key``. The server's output goes to ``<tmpdir>/service.log``
(``ServiceHandle.log()`` reads it; failures to start include it).

PostgreSQL: ``new_postgres_database()`` creates an empty database ``bearlumen_test_<random>`` on the local
server and returns its URL; ``drop_postgres_database(url)`` drops it. The admin connection defaults to
``postgresql://postgres@127.0.0.1:5432/postgres``; set ``BEARLUMEN_TEST_PG_ADMIN_URL`` to change it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional

import httpx

__all__ = [
    "PG_ADMIN_URL",
    "ServiceHandle",
    "drop_postgres_database",
    "new_postgres_database",
    "postgres_available",
    "start_service",
]

PG_ADMIN_URL = os.environ.get("BEARLUMEN_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_START_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve_command() -> List[str]:
    script = Path(sys.executable).with_name("bearlumen")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-m", "bearlumen.cli", "serve"]


class ServiceHandle:
    """A running (or stopped) ``bearlumen serve`` process on a fixed port and database.

    Attributes: ``base_url`` (``http://127.0.0.1:<port>``), ``api_key`` (tenant ``test``), ``database_url``,
    ``port``, ``running``. ``restart()`` reuses the database and the port.
    """

    def __init__(
        self,
        database_url: str,
        api_key: str,
        *,
        rate_limit: Optional[float],
        env: Optional[Dict[str, str]],
        workdir: Path,
        owns_workdir: bool,
        args: Optional[List[str]] = None,
    ) -> None:
        self.database_url = database_url
        self.api_key = api_key
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self._rate_limit = rate_limit
        self._args = list(args or [])
        self._env = dict(env or {})
        self._owns_workdir = owns_workdir
        self._process: Optional[subprocess.Popen[bytes]] = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> ServiceHandle:
        if self.running:
            return self
        command = [
            *_serve_command(),
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
        ]
        if "--access-log" not in self._args:
            command.append("--no-access-log")
        command += self._args
        if self._rate_limit is not None:
            command += ["--rate-limit", str(self._rate_limit)]
        env = {**os.environ, "BEARLUMEN_HOME": str(self.workdir / "home")}
        env.pop("BEARLUMEN_RATE_LIMIT", None)  # only the rate_limit argument turns it on
        env.update(self._env)
        with open(self.workdir / "service.log", "ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self._wait_healthy()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait: the graceful path (in-flight requests finish first)."""
        self._signal(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL: no chance to finish anything."""
        self._signal(signal.SIGKILL, 10.0)

    def restart(self) -> ServiceHandle:
        """Stop if running, then start again on the same database and port."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop and delete the temporary directory (and SQLite file) this handle created."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> Optional[int]:
        return None if self._process is None else self._process.pid

    # -- helpers -------------------------------------------------------------------------------------
    def create_key(self, tenant: str) -> str:
        """A new API key for ``tenant`` (created if missing), made directly in the database."""
        from bearlumen.server.keys import create_api_key

        return create_api_key(self.database_url, tenant)

    def client(self, api_key: Optional[str] = None, **kwargs: Any) -> httpx.Client:
        """An httpx client on ``base_url`` authenticated with ``api_key`` (default: tenant ``test``);
        ``kwargs`` go to ``httpx.Client`` (e.g. ``timeout``)."""
        kwargs.setdefault("timeout", 60.0)
        headers = {"Authorization": f"Bearer {api_key or self.api_key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, **kwargs)

    def log(self) -> str:
        path = self.workdir / "service.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _signal(self, signum: int, timeout: float) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"bearlumen serve exited with {self._process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"bearlumen serve did not become healthy in {_START_TIMEOUT:.0f} s:\n{self.log()}")

    def __enter__(self) -> ServiceHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def start_service(
    database_url: Optional[str] = None,
    *,
    rate_limit: Optional[float] = None,
    env: Optional[Dict[str, str]] = None,
    args: Optional[List[str]] = None,
) -> ServiceHandle:
    """Start ``bearlumen serve`` on a free loopback port and wait until it answers ``/healthz``.

    ``database_url``: any URL ``bearlumen serve --database-url`` takes; None means a fresh SQLite file in a
    new temporary directory (removed by ``close()``). ``rate_limit``: ``--rate-limit``. ``env``: extra
    environment variables for the server process. ``args``: more ``bearlumen serve`` options (e.g.
    ``["--metrics"]``; ``--access-log`` turns on the access log, off otherwise).
    """
    from bearlumen.server.keys import create_api_key

    workdir = Path(tempfile.mkdtemp(prefix="bearlumen-service-"))
    url = database_url or f"sqlite:///{workdir / 'bearlumen.db'}"
    api_key = create_api_key(url, "test")  # also migrates, so the server's own start is quick
    handle = ServiceHandle(
        url, api_key, rate_limit=rate_limit, env=env, workdir=workdir, owns_workdir=True, args=args
    )
    return handle.start()


# -- PostgreSQL ----------------------------------------------------------------------------------------
def _admin_connect():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)


def postgres_available() -> bool:
    try:
        with _admin_connect():
            return True
    except Exception:
        return False


def new_postgres_database() -> str:
    """Create an empty database ``bearlumen_test_<random>``; return its ``postgresql+psycopg://`` URL."""
    from sqlalchemy.engine import make_url

    name = f"bearlumen_test_{uuid.uuid4().hex[:12]}"
    with _admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    admin = make_url(PG_ADMIN_URL)
    return admin.set(drivername="postgresql+psycopg", database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str) -> None:
    """Drop a database made by ``new_postgres_database`` (closing its remaining connections)."""
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    if not name or not name.startswith("bearlumen_test_"):
        raise ValueError(f"refusing to drop {name!r}: not a test database")
    with _admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
