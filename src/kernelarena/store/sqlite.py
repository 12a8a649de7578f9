"""The SQLite store of verdicts and measurements.

WAL journal and one transaction per record: a run killed with SIGKILL leaves a readable database
holding every record finished before the kill, and a re-run picks up from there (records are
looked up by their complete key before any work is done).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kernelarena.store.keys import SCHEMA_VERSION

log = logging.getLogger(__name__)

_VERSIONS = (
    "CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
)


def ensure_schema(
    conn: sqlite3.Connection, component: str, version: int, ddl: str, migrations: dict[int, str] | None = None
) -> None:
    """Create or upgrade one component's tables in the project's one SQLite file.

    Every module that owns tables (records and suite runs here, ``tune_evals``, ``hw_profiles``,
    the agent's conversations) calls this with its own ``component`` name; the ``schema_versions``
    table says which version of each is in the file. ``migrations[v]`` is the SQL that takes the
    component from ``v - 1`` to ``v``; steps run in order, then ``ddl`` (idempotent ``CREATE ... IF
    NOT EXISTS``). A file written by a newer version is left as it is (rows carry their own schema
    version in their keys, so this version ignores what it cannot read).
    """
    conn.execute(_VERSIONS)
    row = conn.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
    found = None if row is None else int(row[0])
    if found is not None and found > version:
        log.warning("%s: the store holds schema %d, newer than this version's %d", component, found, version)
        return
    for step in range((found or 0) + 1, version + 1):
        if found is not None and (migrations or {}).get(step):
            conn.executescript((migrations or {})[step])
    conn.executescript(ddl)
    conn.execute(
        "INSERT OR REPLACE INTO schema_versions (component, version) VALUES (?, ?)", (component, version)
    )
    conn.commit()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,            -- check | bench
    task TEXT NOT NULL,
    task_hash TEXT NOT NULL,
    solution TEXT,
    solution_hash TEXT,
    baseline TEXT,
    device TEXT NOT NULL,
    toolchain TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    verdict TEXT,
    speedup REAL,
    payload TEXT NOT NULL          -- the full result as JSON
);
CREATE INDEX IF NOT EXISTS records_task ON records(task, kind);
CREATE TABLE IF NOT EXISTS suite_runs (
    run_key TEXT PRIMARY KEY,
    suite TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    pairs INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    summary TEXT
);
"""


class Store:
    """A SQLite file. Safe to share between threads of one process (one connection, a lock)."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        ensure_schema(self._db, "records", SCHEMA_VERSION, _SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT payload FROM records WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, kind: str, meta: dict[str, Any], payload: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO records (key, kind, task, task_hash, solution, solution_hash, baseline,"
                " device, toolchain, schema_version, created_at, verdict, speedup, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    kind,
                    meta["task"],
                    meta["task_hash"],
                    meta.get("solution"),
                    meta.get("solution_hash"),
                    meta.get("baseline"),
                    meta["device"],
                    json.dumps(meta["toolchain"], sort_keys=True),
                    SCHEMA_VERSION,
                    time.time(),
                    payload.get("verdict"),
                    payload.get("speedup"),
                    json.dumps(payload),
                ),
            )
            self._db.commit()

    def records(self, kind: str | None = None, task: str | None = None) -> Iterator[dict[str, Any]]:
        sql, args = (
            "SELECT kind, task, solution, baseline, device, created_at, verdict, speedup, payload FROM records",
            [],
        )
        where = []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if task:
            where.append("task = ?")
            args.append(task)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        for kind_, task_, sol, base, dev, ts, verdict, speedup, payload in rows:
            yield {
                "kind": kind_, "task": task_, "solution": sol, "baseline": base, "device": dev,
                "created_at": ts, "verdict": verdict, "speedup": speedup, "payload": json.loads(payload),
            }  # fmt: skip

    def suite_started(self, run_key: str, suite: str, pairs: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO suite_runs (run_key, suite, started_at, pairs) VALUES (?, ?, ?, ?)",
                (run_key, suite, time.time(), pairs),
            )
            self._db.commit()

    def suite_progress(self, run_key: str, done: int, summary: dict[str, Any] | None = None) -> None:
        blob = json.dumps(summary) if summary else None
        with self._lock:
            self._db.execute(
                "UPDATE suite_runs SET done = ?, summary = COALESCE(?, summary),"
                " finished_at = CASE WHEN ? IS NULL THEN finished_at ELSE ? END WHERE run_key = ?",
                (done, blob, blob, time.time(), run_key),
            )
            self._db.commit()
