"""The spool on its own: a real SQLite file, real processes sharing it, real kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import List

import pytest

from bearlumen.delivery.memory import MemoryStore
from bearlumen.delivery.spool import Spool, default_spool_path

ROOT = Path(__file__).resolve().parents[2]


def items(n: int, start: int = 0, size: int = 10) -> List[tuple[str, str]]:
    return [(f"k{i}", json.dumps({"i": i, "pad": "x" * size})) for i in range(start, start + n)]


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.02) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def test_append_claim_ack_in_order(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s.db"))
    result = spool.append(items(5))
    assert [row.key for row in result.rows] == ["k0", "k1", "k2", "k3", "k4"] and result.dropped == 0
    assert spool.append(items(2)).rows == []  # same keys: the same events, stored once
    assert spool.pending() == 5
    first = spool.claim(3)
    assert [row.key for row in first] == ["k0", "k1", "k2"]
    assert [row.key for row in spool.claim(10)] == ["k3", "k4"]  # leased rows are not handed out twice
    assert spool.claim(10) == []
    spool.ack(first)
    assert spool.pending() == 2
    assert not spool.pending_upto(first[-1].id) and spool.pending_upto(spool.watermark())
    spool.release_all()
    assert [row.key for row in spool.claim(10)] == ["k3", "k4"]
    spool.close()


def test_a_group_commit_returns_exactly_the_rows_it_stored(tmp_path: Path) -> None:
    """A group that fits under the caps is inserted in one statement: the rows it answers are the rows in
    the file (ids, keys, bodies), keys already queued or repeated in the group stored once."""
    spool = Spool(str(tmp_path / "s.db"))
    spool.append(items(3))
    spool.ack(spool.claim(1))  # k0 delivered: its key may come again as a new event
    group = [
        *items(2, start=1),
        ("k0", '{"again": 1}'),
        ("n1", '{"n": 1}'),
        ("n1", '{"n": "dup"}'),
        ("n2", "{}"),
    ]
    result = spool.append(group)
    assert [(row.key, row.body) for row in result.rows] == [
        ("k0", '{"again": 1}'),
        ("n1", '{"n": 1}'),
        ("n2", "{}"),
    ]
    assert result.dropped == 0 and spool.pending() == 5
    queued = {row.key: (row.id, row.body) for row in spool.dump()}
    assert {row.key: (row.id, row.body) for row in result.rows} == {k: queued[k] for k in ("k0", "n1", "n2")}
    assert sorted(row.id for row in result.rows) == [row.id for row in result.rows]
    assert min(row.id for row in result.rows) > max(queued[k][0] for k in ("k1", "k2"))
    claimed = spool.append([("c1", "{}"), ("c2", "{}")], claim=True).rows
    assert [row.key for row in claimed] == ["c1", "c2"]
    assert [row.key for row in spool.claim(100)] == ["k1", "k2", "k0", "n1", "n2"]  # c1, c2 are leased
    spool.close()


def test_size_caps_drop_newest(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s.db"), max_events=10)
    first = spool.append(items(8))
    second = spool.append(items(5, start=8))
    assert len(first.rows) == 8 and len(second.rows) == 2 and second.dropped == 3
    assert [row.key for row in spool.claim(100)][-2:] == ["k8", "k9"]  # the oldest are kept
    spool.close()
    by_bytes = Spool(str(tmp_path / "b.db"), max_bytes=1000)
    result = by_bytes.append(items(20, size=80))
    assert 0 < len(result.rows) < 20 and len(result.rows) + result.dropped == 20
    by_bytes.close()


def test_reject_moves_rows_aside(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s.db"))
    rows = spool.append(items(3)).rows
    spool.reject(rows[1:2], "invalid_quantity", "quantity must be >= 0")
    assert spool.pending() == 2
    assert spool.rejected() == [("k1", "invalid_quantity", "quantity must be >= 0")]
    spool.close()


def test_renew_keeps_only_own_rows_and_expired_leases_are_reclaimed(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    a = Spool(path, lease_seconds=0.2)
    b = Spool(path, lease_seconds=30)
    a.append(items(4))
    mine = a.claim(4)
    assert b.claim(4) == []  # leased by a live owner
    assert wait_until(lambda: len(b.claim(4)) == 4)  # a's lease ran out: b takes them over
    assert a.renew(mine) == []  # and a learns that they are no longer its own
    a.close()
    b.close()


def test_file_location_and_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BEARLUMEN_SPOOL_DIR", str(tmp_path / "spools"))
    key = "blm_" + "S" * 43
    path = default_spool_path("http://127.0.0.1:8787", key)
    assert path.startswith(str(tmp_path / "spools")) and key not in path and key[4:] not in path
    assert path != default_spool_path("http://127.0.0.1:8788", key)
    assert path != default_spool_path("http://127.0.0.1:8787", "blm_" + "T" * 43)
    Spool(path).close()
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700


def test_memory_store_same_contract() -> None:
    store = MemoryStore(max_events=3)
    result = store.append(items(5))
    assert len(result.rows) == 3 and result.dropped == 2
    claimed = store.claim(2)
    assert [row.key for row in claimed] == ["k0", "k1"]
    store.release(claimed[:1])
    assert [row.key for row in store.claim(5)] == ["k0", "k2"]
    store.ack(claimed)
    assert store.pending() == 1 and store.pending_upto(store.watermark())


CLAIMER = textwrap.dedent(
    """
    import json, sys, time
    from bearlumen.delivery.spool import Spool
    spool = Spool(sys.argv[1])
    taken = []
    while True:
        rows = spool.claim(7)
        if not rows:
            if spool.pending() == 0:
                break
            time.sleep(0.01)
            continue
        taken.extend(row.key for row in rows)
        time.sleep(0.002)  # "sending"
        spool.ack(rows)
    print(json.dumps(taken))
    """
)


def test_processes_sharing_a_spool_never_claim_the_same_rows(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.db")
    spool = Spool(path)
    spool.append(items(600))
    procs = [
        subprocess.Popen([sys.executable, "-c", CLAIMER, path], stdout=subprocess.PIPE, cwd=ROOT, text=True)
        for _ in range(4)
    ]
    outputs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    taken = [key for out in outputs for key in out]
    assert sorted(taken) == sorted(f"k{i}" for i in range(600))  # each row exactly once
    assert sum(1 for out in outputs if out) >= 2  # and they really did share the work
    spool.close()


HOLDER = textwrap.dedent(
    """
    import sys, time
    from bearlumen.delivery.spool import Spool
    spool = Spool(sys.argv[1], lease_seconds=3600)
    rows = spool.claim(50)
    print(len(rows), flush=True)
    time.sleep(600)
    """
)


def test_rows_of_a_killed_owner_are_reclaimed_at_once(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    spool = Spool(path)
    spool.append(items(80))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path], stdout=subprocess.PIPE, cwd=ROOT, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "50"
    assert len(spool.claim(100)) == 30  # the holder's hour-long lease is respected while it lives
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    reclaimed = spool.claim(100)  # its pid is gone: no need to wait for the lease
    assert len(reclaimed) == 50
    spool.close()


def test_fork_child_gets_its_own_owner(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    spool = Spool(path)
    spool.append(items(10))
    parent_rows = spool.claim(4)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            child = spool.after_fork_in_child()
            rows = child.claim(100)
            ok = child.owner != spool.owner and [r.key for r in rows] == [f"k{i}" for i in range(4, 10)]
            child.ack(rows)
            code = 0 if ok else 2
        finally:
            os.write(write, bytes([code]))
            os._exit(code)
    os.close(write)
    assert os.read(read, 1) == bytes([0])
    os.waitpid(pid, 0)
    assert spool.renew(parent_rows) == parent_rows  # the parent's lease was untouched
    assert spool.pending() == 4
    spool.close()
