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


def test_one_file_holds_every_component_with_its_schema_version(tmp_path: Path) -> None:
    """Records, suite runs, tuning evaluations and hardware profiles share one SQLite file, and the
    ``schema_versions`` table says which version of each is in it (issue 11: three tables had three
    unrelated schema mechanisms)."""
    import sqlite3

    from kernelarena.hw.store import stored_profile
    from kernelarena.search.store import TuneStore
    from kernelarena.store.keys import SCHEMA_VERSION

    db = tmp_path / "k.db"
    Store(db).close()
    TuneStore(db).close()
    assert stored_profile(db, "m", "cpu", 1) is None
    with sqlite3.connect(db) as conn:
        versions = dict(conn.execute("SELECT component, version FROM schema_versions").fetchall())
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert versions == {"records": SCHEMA_VERSION, "tune_evals": 1, "hw_profiles": 1}
    assert {"records", "suite_runs", "tune_evals", "hw_profiles"} <= tables


def test_ensure_schema_runs_migrations_in_order_once(tmp_path: Path) -> None:
    import sqlite3

    from kernelarena.store.sqlite import ensure_schema

    conn = sqlite3.connect(tmp_path / "k.db")
    ensure_schema(conn, "demo", 1, "CREATE TABLE IF NOT EXISTS demo (a INTEGER)")
    steps = {2: "ALTER TABLE demo ADD COLUMN b INTEGER;", 3: "ALTER TABLE demo ADD COLUMN c INTEGER;"}
    ensure_schema(conn, "demo", 3, "CREATE TABLE IF NOT EXISTS demo (a INTEGER, b INTEGER, c INTEGER)", steps)
    ensure_schema(conn, "demo", 3, "CREATE TABLE IF NOT EXISTS demo (a INTEGER, b INTEGER, c INTEGER)", steps)
    assert [r[1] for r in conn.execute("PRAGMA table_info(demo)")] == ["a", "b", "c"]
    # a file from a newer version is left as it is
    ensure_schema(conn, "demo", 2, "CREATE TABLE IF NOT EXISTS demo (a INTEGER, b INTEGER)")
    assert conn.execute("SELECT version FROM schema_versions WHERE component = 'demo'").fetchone() == (3,)
