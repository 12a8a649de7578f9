"""The agent's records: runs, every LLM call and every attempt, in the main store's SQLite file.

A run killed at any point resumes without paying twice: :class:`RecordingProvider` looks each
prompt up in the store (same run, same position, same prompt) before calling the model, and
records every paid reply as soon as it arrives (one transaction each, WAL journal).
:meth:`AgentStore.export_replay` writes a run's calls as JSONL that :class:`ReplayProvider` plays
back on another machine with no LLM at all.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kernelarena import settings
from kernelarena.agent.providers import Budget, Completion, Message, Provider, ProviderError

REPLAY_FORMAT = "kernelarena-replay/1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent_runs (
    run_id TEXT PRIMARY KEY,
    task TEXT NOT NULL,
    config TEXT NOT NULL,
    started_at REAL NOT NULL,
    finished_at REAL,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS agent_calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    role TEXT NOT NULL,            -- coder | judge | mutate ...
    prompt_hash TEXT NOT NULL,
    messages TEXT NOT NULL,        -- JSON [{role, content}]
    text TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_usd REAL,
    latency_s REAL NOT NULL,
    cached INTEGER NOT NULL,       -- 1: the reply itself came from a replay (nothing paid)
    created_at REAL NOT NULL,
    UNIQUE (run_id, seq)
);
CREATE INDEX IF NOT EXISTS agent_calls_prompt ON agent_calls(run_id, prompt_hash);
CREATE TABLE IF NOT EXISTS agent_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL,
    round INTEGER NOT NULL,
    candidate INTEGER NOT NULL,
    code TEXT,
    code_hash TEXT,
    solution_path TEXT,
    verdict TEXT,                  -- JSON
    speedup REAL,
    ci_low REAL,
    ci_high REAL,
    passed INTEGER NOT NULL,
    reason TEXT,
    extra TEXT,                    -- JSON
    created_at REAL NOT NULL,
    UNIQUE (run_id, round, candidate)
);
CREATE INDEX IF NOT EXISTS agent_attempts_run ON agent_attempts(run_id, passed);
"""


def prompt_hash(messages: Sequence[Message]) -> str:
    blob = json.dumps([[m.role, m.content] for m in messages], ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def code_hash(code: str) -> str:
    """Hash of a solution's text, blind to trailing whitespace and line endings."""
    norm = "\n".join(line.rstrip() for line in code.replace("\r\n", "\n").strip().splitlines())
    return hashlib.sha256(norm.encode()).hexdigest()


def _loads(blob: str | None) -> Any:
    return json.loads(blob) if blob else None


class AgentStore:
    """Agent tables in the store's SQLite file (default ``settings.db_path()``); thread-safe."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else settings.db_path()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.commit()
        self._positions: dict[str, int] = {}  # per run: calls asked for in this process
        self._last_seq: dict[str, int] = {}  # per run: highest seq handed out or stored
        self._used: dict[str, set[int]] = {}  # per run: ids of stored calls served since start_run

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AgentStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # runs ------------------------------------------------------------------------------------
    def start_run(self, run_id: str, task: str, config: dict[str, Any]) -> None:
        """Create the run; a second call with the same id (a resume) keeps the first record, and
        from then on its recorded calls are served again by :meth:`find_call`."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO agent_runs (run_id, task, config, started_at) VALUES (?, ?, ?, ?)",
                (run_id, task, json.dumps(config, sort_keys=True, default=str), time.time()),
            )
            self._db.commit()
            self._positions[run_id] = 0
            self._used[run_id] = set()

    def finish_run(self, run_id: str, summary: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE agent_runs SET finished_at = ?, summary = ? WHERE run_id = ?",
                (time.time(), json.dumps(summary, default=str), run_id),
            )
            self._db.commit()

    _RUN_SQL = (
        "SELECT r.run_id, r.task, r.config, r.started_at, r.finished_at, r.summary,"
        " COUNT(c.id), COALESCE(SUM(c.prompt_tokens), 0), COALESCE(SUM(c.completion_tokens), 0),"
        " SUM(c.cost_usd) FROM agent_runs r LEFT JOIN agent_calls c ON c.run_id = r.run_id"
    )

    @staticmethod
    def _run_row(row: tuple[Any, ...]) -> dict[str, Any]:
        run_id, task, config, started, finished, summary, calls, p_tok, c_tok, cost = row
        return {
            "run_id": run_id, "task": task, "config": _loads(config), "started_at": started,
            "finished_at": finished, "summary": _loads(summary), "llm_calls": calls,
            "prompt_tokens": p_tok, "completion_tokens": c_tok, "cost_usd": cost,
        }  # fmt: skip

    def run(self, run_id: str) -> dict[str, Any] | None:
        """The run with totals over its recorded calls (``cost_usd`` None when no call had a price)."""
        with self._lock:
            row = self._db.execute(
                self._RUN_SQL + " WHERE r.run_id = ? GROUP BY r.run_id", (run_id,)
            ).fetchone()
        return self._run_row(row) if row else None

    def runs(self, task: str | None = None) -> list[dict[str, Any]]:
        where, args = (" WHERE r.task = ?", (task,)) if task else ("", ())
        with self._lock:
            rows = self._db.execute(
                self._RUN_SQL + where + " GROUP BY r.run_id ORDER BY r.started_at, r.run_id", args
            ).fetchall()
        return [self._run_row(r) for r in rows]

    # calls -----------------------------------------------------------------------------------
    def next_position(self, run_id: str) -> int:
        """Position of the next call of ``run_id`` in this process (0, 1, ...; restarts on resume)."""
        with self._lock:
            pos = self._positions.get(run_id, 0)
            self._positions[run_id] = pos + 1
            return pos

    def new_seq(self, run_id: str) -> int:
        """A free ``seq`` for a new call: after every call stored or handed out for ``run_id``."""
        with self._lock:
            if run_id not in self._last_seq:
                row = self._db.execute(
                    "SELECT MAX(seq) FROM agent_calls WHERE run_id = ?", (run_id,)
                ).fetchone()
                self._last_seq[run_id] = row[0] if row[0] is not None else -1
            self._last_seq[run_id] += 1
            return self._last_seq[run_id]

    def record_call(
        self, run_id: str, seq: int, role: str, messages: Sequence[Message], completion: Completion
    ) -> None:
        c = completion
        msgs = json.dumps([{"role": m.role, "content": m.content} for m in messages], ensure_ascii=False)
        with self._lock:
            cur = self._db.execute(
                "INSERT OR REPLACE INTO agent_calls (run_id, seq, role, prompt_hash, messages, text, model, provider,"
                " prompt_tokens, completion_tokens, cost_usd, latency_s, cached, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id, seq, role, prompt_hash(messages), msgs, c.text, c.model, c.provider,
                    c.prompt_tokens, c.completion_tokens, c.cost_usd, c.latency_s, int(c.cached), time.time(),
                ),
            )  # fmt: skip
            self._db.commit()
            self._last_seq[run_id] = max(self._last_seq.get(run_id, -1), seq)
            if cur.lastrowid is not None:  # a reply made in this process is not served again by find_call
                self._used.setdefault(run_id, set()).add(cur.lastrowid)

    def find_call(self, run_id: str, seq: int, messages: Sequence[Message]) -> Completion | None:
        """The stored reply to the same prompt in the same run (``cached=True``), else None.

        The call stored at position ``seq`` is preferred; failing that (parallel calls finish in
        another order after a resume) the earliest stored call with the same prompt. Each stored
        call is served once per start_run, so N identical prompts (N samples) get N distinct replies.
        """
        h = prompt_hash(messages)
        with self._lock:
            used = self._used.setdefault(run_id, set())
            rows = self._db.execute(
                "SELECT id, text, model, provider, prompt_tokens, completion_tokens, latency_s FROM agent_calls"
                " WHERE run_id = ? AND prompt_hash = ? ORDER BY seq != ?, seq",
                (run_id, h, seq),
            ).fetchall()
            for id_, text, model, provider, p_tok, c_tok, latency in rows:
                if id_ in used:
                    continue
                used.add(id_)
                return Completion(text, model, provider, p_tok, c_tok, 0.0, latency, cached=True)
        return None

    def calls(self, run_id: str, role: str | None = None) -> list[dict[str, Any]]:
        """The run's calls in order: seq, role, messages, text, model, provider, tokens, cost..."""
        sql = (
            "SELECT seq, role, prompt_hash, messages, text, model, provider, prompt_tokens, completion_tokens,"
            " cost_usd, latency_s, cached, created_at FROM agent_calls WHERE run_id = ?"
        )
        args: list[Any] = [run_id]
        if role:
            sql += " AND role = ?"
            args.append(role)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        keys = ("seq", "role", "prompt_hash", "messages", "text", "model", "provider", "prompt_tokens",
                "completion_tokens", "cost_usd", "latency_s", "cached", "created_at")  # fmt: skip
        out = [dict(zip(keys, r)) for r in rows]
        for d in out:
            d["messages"] = json.loads(d["messages"])
            d["cached"] = bool(d["cached"])
        return out

    def device_of(self, solution_path: str) -> str | None:
        """The machine of the main store's latest record of ``solution_path``, if there is one."""
        with self._lock:
            try:
                row = self._db.execute(
                    "SELECT device FROM records WHERE solution = ? ORDER BY created_at DESC LIMIT 1",
                    (solution_path,),
                ).fetchone()
            except sqlite3.OperationalError:  # the main store's tables were never created in this file
                return None
        return str(row[0]) if row else None

    # attempts --------------------------------------------------------------------------------
    def record_attempt(
        self,
        run_id: str,
        round: int,
        candidate: int,
        code: str | None,
        solution_path: str | None,
        verdict: dict[str, Any] | None,
        speedup: float | None,
        speedup_ci: tuple[float, float] | None,
        passed: bool,
        reason: str | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Record one checked candidate; one row per (run, round, candidate): recording the same
        again (a resumed run redoing a round) replaces it."""
        low, high = speedup_ci if speedup_ci is not None else (None, None)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO agent_attempts (run_id, round, candidate, code, code_hash, solution_path, verdict,"
                " speedup, ci_low, ci_high, passed, reason, extra, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id, round, candidate, code, code_hash(code) if code else None, solution_path,
                    json.dumps(verdict, default=str) if verdict is not None else None, speedup, low, high,
                    int(passed), reason, json.dumps(extra, default=str) if extra is not None else None, time.time(),
                ),
            )  # fmt: skip
            self._db.commit()

    def attempts(
        self, run_id: str | None = None, task: str | None = None, passed: bool | None = None
    ) -> list[dict[str, Any]]:
        """Attempts in the order they were made, each with its run's ``task``."""
        sql = (
            "SELECT a.run_id, r.task, a.round, a.candidate, a.code, a.code_hash, a.solution_path, a.verdict,"
            " a.speedup, a.ci_low, a.ci_high, a.passed, a.reason, a.extra, a.created_at"
            " FROM agent_attempts a LEFT JOIN agent_runs r ON r.run_id = a.run_id"
        )
        where: list[str] = []
        args: list[Any] = []
        for clause, value in (("a.run_id = ?", run_id), ("r.task = ?", task)):
            if value is not None:
                where.append(clause)
                args.append(value)
        if passed is not None:
            where.append("a.passed = ?")
            args.append(int(passed))
        if where:
            sql += " WHERE " + " AND ".join(where)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY a.created_at, a.id", args).fetchall()
        out = []
        for (
            run,
            task_,
            rnd,
            cand,
            code,
            chash,
            path,
            verdict,
            speedup,
            low,
            high,
            ok,
            reason,
            extra,
            ts,
        ) in rows:
            out.append({
                "run_id": run, "task": task_, "round": rnd, "candidate": cand, "code": code, "code_hash": chash,
                "solution_path": path, "verdict": _loads(verdict), "speedup": speedup,
                "speedup_ci": [low, high] if low is not None and high is not None else None,
                "passed": bool(ok), "reason": reason, "extra": _loads(extra), "created_at": ts,
            })  # fmt: skip
        return out

    # replay ----------------------------------------------------------------------------------
    def export_replay(self, run_id: str, path: str | Path) -> None:
        """Write the run's calls as JSONL (one call a line, in order) for :class:`ReplayProvider`."""
        info = self.run(run_id)
        if info is None:
            raise ValueError(f"no agent run {run_id!r} in {self.path}")
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w") as f:
            for c in self.calls(run_id):
                line = {"format": REPLAY_FORMAT, "run_id": run_id, "task": info["task"], **c}
                for k in ("cost_usd", "latency_s", "cached", "created_at"):
                    line.pop(k)
                f.write(json.dumps(line, ensure_ascii=False) + "\n")


class RecordingProvider:
    """Wraps a provider: a prompt already answered in this run is served from the store (nothing
    paid); otherwise the inner provider is called, the budget charged and the call recorded.

    ``budget`` is checked and charged here unless it is the inner provider's own (no double count).
    Several RecordingProviders of one run (coder, judge) share the run's position counter.
    """

    def __init__(
        self,
        inner: Provider,
        store: AgentStore,
        run_id: str,
        role: str = "coder",
        budget: Budget | None = None,
    ):
        self.inner = inner
        self.store = store
        self.run_id = run_id
        self.role = role
        self.budget = budget
        self.name = inner.name
        self.model = inner.model

    def complete(
        self, messages: Sequence[Message], *, temperature: float = 0.2, max_tokens: int = 4096
    ) -> Completion:
        pos = self.store.next_position(self.run_id)
        hit = self.store.find_call(self.run_id, pos, messages)
        if hit is not None:
            return hit
        own = self.budget is not None and self.budget is not getattr(self.inner, "budget", None)
        if own and self.budget is not None:
            self.budget.check()
        done = self.inner.complete(messages, temperature=temperature, max_tokens=max_tokens)
        if own and self.budget is not None:
            self.budget.charge(done)
        self.store.record_call(self.run_id, self.store.new_seq(self.run_id), self.role, messages, done)
        return done


class ReplayProvider:
    """Plays back a recording written by :meth:`AgentStore.export_replay`; no network, nothing paid.

    Each call is answered by the first unplayed recorded call with the same prompt, else (prompts
    differ on another machine: its profile, its timings) by the next unplayed call in recorded
    order. ``role`` / ``run_id`` restrict playback to that part of the recording. Running out of
    recorded calls is a :class:`ProviderError`.
    """

    name = "replay"

    def __init__(
        self,
        path: str | Path,
        *,
        model: str | None = None,
        role: str | None = None,
        run_id: str | None = None,
    ):
        self.path = Path(path)
        try:
            lines = self.path.read_text().splitlines()
        except OSError as e:
            raise ProviderError(f"cannot read the replay recording {self.path}: {e.strerror or e}") from None
        self._steps: list[dict[str, Any]] = []
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                step = json.loads(line)
            except json.JSONDecodeError:
                step = None
            if not isinstance(step, dict) or not isinstance(step.get("text"), str):
                raise ProviderError(
                    f"the replay recording {self.path} is damaged at line {n}: write it with"
                    " `karena agent ... --record` / AgentStore.export_replay"
                ) from None
            if (role is None or step.get("role") == role) and (
                run_id is None or step.get("run_id") == run_id
            ):
                self._steps.append(step)
        self.model = model or (self._steps[0].get("model", "replay") if self._steps else "replay")
        self._played: set[int] = set()
        self._calls = 0
        self._lock = threading.Lock()

    def complete(
        self, messages: Sequence[Message], *, temperature: float = 0.2, max_tokens: int = 4096
    ) -> Completion:
        h = prompt_hash(messages)
        with self._lock:
            self._calls += 1
            free = [i for i in range(len(self._steps)) if i not in self._played]
            pick = next(
                (i for i in free if self._steps[i].get("prompt_hash") == h), free[0] if free else None
            )
            if pick is None:
                raise ProviderError(
                    f"the replay recording {self.path} has no step {self._calls}: it holds {len(self._steps)}"
                    " calls; record a longer run or use a live provider"
                )
            self._played.add(pick)
            s = self._steps[pick]
        return Completion(
            text=s["text"],
            model=str(s.get("model") or self.model),
            provider="replay",
            prompt_tokens=int(s.get("prompt_tokens") or 0),
            completion_tokens=int(s.get("completion_tokens") or 0),
            cost_usd=0.0,
            latency_s=0.0,
            cached=True,
        )
