"""The ``bearlumen`` command: serve (bootstrap key, key file, env configuration), keys, migrate."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import httpx
import pytest

BEARLUMEN = str(Path(sys.executable).with_name("bearlumen"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(*args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BEARLUMEN, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


def _wait_healthy(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError("the server did not start")


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "home"


def test_serve_on_empty_database_prints_and_writes_the_first_key(home: Path, tmp_path: Path) -> None:
    port = _free_port()
    key_file = tmp_path / "bootstrap.key"
    env = {**os.environ, "BEARLUMEN_HOME": str(home), "BEARLUMEN_PORT": str(port)}
    env.pop("BEARLUMEN_DATABASE_URL", None)
    process = subprocess.Popen(
        [BEARLUMEN, "serve", "--bootstrap-key-file", str(key_file), "--no-access-log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        _wait_healthy(port, process)
        key = key_file.read_text().strip()
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert key.startswith("blm_") and len(key) == 47
        response = httpx.get(
            f"http://127.0.0.1:{port}/v1/end_users", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200
        assert (home / "bearlumen.db").exists()  # the default embedded database under BEARLUMEN_HOME
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0
    assert f"sqlite:///{home / 'bearlumen.db'}" in output  # the path it uses is printed
    assert output.count(key) == 1  # shown once, never logged again

    # second start on the same database: no new key
    process = subprocess.Popen(
        [BEARLUMEN, "serve", "--port", str(port), "--no-access-log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        _wait_healthy(port, process)
    finally:
        process.send_signal(2)  # SIGINT stops it as cleanly as SIGTERM
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0
    assert "blm_" not in output


def test_keys_create_list_revoke(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    created = _run("keys", "create", "--tenant", "acme", "--database-url", url)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert created.stdout == key + "\n" and key.startswith("blm_")  # only the key, for $(...) capture
    second = _run("keys", "create", "--tenant", "acme", env={"BEARLUMEN_DATABASE_URL": url}).stdout.strip()
    listing = _run("keys", "list", "--database-url", url)
    assert listing.returncode == 0
    assert key not in listing.stdout and second not in listing.stdout  # never the secret
    assert key[:12] in listing.stdout and "acme" in listing.stdout and listing.stdout.count("active") == 2
    revoked = _run("keys", "revoke", key[:12], "--database-url", url)
    assert revoked.returncode == 0 and "Revoked" in revoked.stdout
    assert "revoked" in _run("keys", "list", "--tenant", "acme", "--database-url", url).stdout
    assert _run("keys", "revoke", "blm_nothing", "--database-url", url).returncode != 0
    assert _run("keys", "create", "--tenant", "", "--database-url", url).returncode != 0


def test_postgresql_urls_use_psycopg(postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    created = _run("keys", "create", "--tenant", "pg-cli", "--database-url", plain)
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("blm_")


def test_help_lists_commands() -> None:
    output: List[str] = [_run("--help").stdout, _run("serve", "--help").stdout]
    assert all(name in output[0] for name in ("serve", "keys", "migrate"))
    assert all(flag in output[1] for flag in ("--host", "--port", "--database-url", "--rate-limit"))
