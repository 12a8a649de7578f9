"""SQLite persistence of every tuning evaluation (table ``tune_evals``, owned by the search engine).

Other modules own other tables in the same file, so this one only ever creates and touches its own
table (``CREATE TABLE IF NOT EXISTS``, WAL mode for concurrent readers). A record's key is complete:
task source hash, template name and template source hash, the config (canonical JSON), the shape,
the machine id and the schema version; change any of them and old records are not reused.

Failures are stored too (``ok = 0`` with a reason): a config that did not compile is not retried.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelarena.store.sqlite import ensure_schema

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS tune_evals (
    task_hash      TEXT NOT NULL,
    template       TEXT NOT NULL,
    template_hash  TEXT NOT NULL,
    config_json    TEXT NOT NULL,
    shape_id       TEXT NOT NULL,
    machine_id     TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    task           TEXT NOT NULL,
    ok             INTEGER NOT NULL,
    median_ms      REAL,
    ci_low_ms      REAL,
    ci_high_ms     REAL,
    reason         TEXT,
    baseline_ms    REAL,
    features_json  TEXT,
    eval_s         REAL,
    strategy       TEXT,
    created_at     REAL NOT NULL,
    PRIMARY KEY (task_hash, template, template_hash, config_json, shape_id, machine_id, schema_version)
);
CREATE INDEX IF NOT EXISTS tune_evals_ctx ON tune_evals (task_hash, shape_id, machine_id, schema_version);
CREATE INDEX IF NOT EXISTS tune_evals_task ON tune_evals (task);
"""


@dataclass(frozen=True)
class EvalRecord:
    """One stored evaluation (a row of ``tune_evals``)."""

    task_hash: str
    template: str
    template_hash: str
    config_json: str  # canonical JSON of the whole point (see space.point_key)
    shape_id: str
    machine_id: str
    task: str
    ok: bool
    median_ms: float | None
    ci_ms: tuple[float, float] | None
    reason: str | None
    baseline_ms: float | None
    features: dict[str, float] = field(default_factory=dict)
    eval_s: float | None = None
    strategy: str | None = None
    created_at: float = 0.0
    schema_version: int = SCHEMA_VERSION

    @property
    def point(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.config_json)
        return value

    @property
    def score_ms(self) -> float:
        if not self.ok or self.median_ms is None or not math.isfinite(self.median_ms):
            return math.inf
        return float(self.median_ms)


_COLUMNS = (
    "task_hash, template, template_hash, config_json, shape_id, machine_id, schema_version, task, ok, "
    "median_ms, ci_low_ms, ci_high_ms, reason, baseline_ms, features_json, eval_s, strategy, created_at"
)


def _row_to_record(row: tuple[Any, ...]) -> EvalRecord:
    (th, tpl, tplh, cfg, shape, mach, schema, task, ok, med, lo, hi, reason, base, feats, ev, strat, ts) = row
    return EvalRecord(
        task_hash=th,
        template=tpl,
        template_hash=tplh,
        config_json=cfg,
        shape_id=shape,
        machine_id=mach,
        task=task,
        ok=bool(ok),
        median_ms=med,
        ci_ms=(lo, hi) if lo is not None and hi is not None else None,
        reason=reason,
        baseline_ms=base,
        features=json.loads(feats) if feats else {},
        eval_s=ev,
        strategy=strat,
        created_at=ts,
        schema_version=schema,
    )


class TuneStore:
    """The ``tune_evals`` table in a SQLite file (``":memory:"`` for a throwaway store)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        ensure_schema(self._conn, "tune_evals", SCHEMA_VERSION, _DDL)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TuneStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def put(self, rec: EvalRecord) -> bool:
        """Insert one record; an existing record with the same key is kept (returns False)."""
        lo, hi = rec.ci_ms if rec.ci_ms is not None else (None, None)
        values = (
            rec.task_hash, rec.template, rec.template_hash, rec.config_json, rec.shape_id, rec.machine_id,
            rec.schema_version, rec.task, int(rec.ok), _finite_or_none(rec.median_ms), lo, hi, rec.reason,
            rec.baseline_ms, json.dumps(rec.features, sort_keys=True), rec.eval_s, rec.strategy,
            rec.created_at or time.time(),
        )  # fmt: skip
        with self._tx() as c:
            cur = c.execute(
                f"INSERT OR IGNORE INTO tune_evals ({_COLUMNS}) VALUES ({','.join('?' * 18)})", values
            )
            return cur.rowcount == 1

    def records(
        self,
        *,
        task_hash: str | None = None,
        shape_id: str | None = None,
        machine_id: str | None = None,
        task: str | None = None,
        schema_version: int = SCHEMA_VERSION,
    ) -> list[EvalRecord]:
        """Records matching every given field, oldest first."""
        where: list[str] = ["schema_version = ?"]
        args: list[Any] = [schema_version]
        for col, val in (
            ("task_hash", task_hash),
            ("shape_id", shape_id),
            ("machine_id", machine_id),
            ("task", task),
        ):
            if val is not None:
                where.append(f"{col} = ?")
                args.append(val)
        sql = f"SELECT {_COLUMNS} FROM tune_evals WHERE {' AND '.join(where)} ORDER BY created_at, rowid"
        return [_row_to_record(r) for r in self._conn.execute(sql, args)]

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM tune_evals").fetchone()[0])


def _finite_or_none(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None
