"""SQLite store: round trip, reopen, and a SIGKILL mid-run leaves a readable database."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernelarena.store.keys import make_key
from kernelarena.store.sqlite import Store

pytestmark = pytest.mark.unit

META = {"task": "t", "task_hash": "h", "device": "cpu:x", "toolchain": {"torch": "2.13.0"}}


def test_put_get_reopen(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    with Store(db) as s:
        s.put("k1", "check", META, {"verdict": "pass", "result": {"a": 1}})
        assert s.get("k1")["result"] == {"a": 1} and s.get("nope") is None
    with Store(db) as s:
        assert [r["verdict"] for r in s.records()] == ["pass"]


def test_keys_change_with_every_part() -> None:
    base = {"task_hash": "a", "solution_hash": "b", "device": "cpu", "toolchain": {"gcc": "12"}}
    k = make_key("check", base)
    for field, value in [
        ("task_hash", "x"),
        ("solution_hash", "x"),
        ("device", "gpu"),
        ("toolchain", {"gcc": "13"}),
    ]:
        assert make_key("check", {**base, field: value}) != k
    assert make_key("bench", base) != k


def test_sigkill_leaves_readable_db(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    code = (
        "import sys, time\n"
        "from kernelarena.store.sqlite import Store\n"
        f"s = Store({str(db)!r})\n"
        "i = 0\n"
        "while True:\n"
        "    s.put(f'k{i}', 'check', {'task': 't', 'task_hash': 'h', 'device': 'd', 'toolchain': {}},\n"
        "          {'verdict': 'pass', 'blob': 'x' * 10000})\n"
        "    i += 1\n"
        "    if i == 5: print('ready', flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with Store(db) as s:
        rows = list(s.records())
    assert len(rows) >= 5 and all(r["payload"]["verdict"] == "pass" for r in rows)
