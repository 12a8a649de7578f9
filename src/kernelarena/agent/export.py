"""Export verified kernels (ConCuR-style): one JSON record per distinct solution of a task.

Each verified record holds the task (name, reference source), the solution code, the verdict, the
speedup with its CI, the machine it was measured on, the model that wrote it and, optionally, the
trace of judge feedback that led to it. Solutions are de-duplicated by a whitespace-blind hash per
task, keeping the fastest attempt. Rejected attempts (valuable negative examples) are written only
when asked, labelled ``"rejected"`` with the verifier's reason, and never for a code that also passed.

    >>> export("~/.karena/karena.db", "kernels.jsonl")  # doctest: +SKIP
    12
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from kernelarena.agent.records import AgentStore
from kernelarena.errors import UsageError

log = logging.getLogger(__name__)

EXPORT_FORMAT = "kernelarena-export/1"
FORMATS = ("jsonl", "json")


def _task_source(task: str, attempt: dict[str, Any], config: dict[str, Any]) -> str | None:
    """The reference source: as recorded with the run, else the task file as it is now."""
    extra = attempt.get("extra") or {}
    for holder in (extra, config):
        if isinstance(holder.get("task_source"), str):
            return str(holder["task_source"])
    candidates = [p for p in (extra.get("task_path"), config.get("task_path")) if isinstance(p, str)]
    try:
        from kernelarena.tasks.loader import resolve_task

        candidates.append(str(resolve_task(task)))
    except Exception:  # not a built-in task name and no recorded path: the source is unknown
        pass
    for path in candidates:
        try:
            return Path(path).read_text()
        except OSError:
            continue
    return None


def _speed_key(a: dict[str, Any]) -> float:
    return a["speedup"] if a["speedup"] is not None else float("-inf")


class _Runs:
    """Per-run facts shared by its attempts (config, model, judge calls), read once."""

    def __init__(self, store: AgentStore):
        self.store = store
        self._cache: dict[str, dict[str, Any]] = {}

    def get(self, run_id: str) -> dict[str, Any]:
        if run_id not in self._cache:
            run = self.store.run(run_id) or {}
            calls = self.store.calls(run_id)
            coder = [c for c in calls if c["role"] != "judge"] or calls
            config = run.get("config") or {}
            self._cache[run_id] = {
                "config": config if isinstance(config, dict) else {},
                "model": (config.get("model") if isinstance(config, dict) else None)
                or (coder[-1]["model"] if coder else None),
                "provider": coder[-1]["provider"] if coder else None,
                "judge": [c for c in calls if c["role"] == "judge"],
            }
        return self._cache[run_id]


def _record(attempt: dict[str, Any], label: str, runs: _Runs, with_trace: bool) -> dict[str, Any]:
    info = runs.get(attempt["run_id"])
    config, extra = info["config"], attempt.get("extra") or {}
    verdict = attempt.get("verdict") or {}
    machine = (
        extra.get("machine")
        or config.get("machine")
        or (verdict.get("device") if isinstance(verdict, dict) else None)
    )
    if not machine and attempt.get("solution_path"):
        machine = runs.store.device_of(attempt["solution_path"])
    rec: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "label": label,
        "task": attempt["task"],
        "task_source": _task_source(attempt["task"], attempt, config),
        "solution": attempt["code"],
        "solution_hash": attempt["code_hash"],
        "backend": extra.get("backend") or config.get("backend"),
        "verdict": attempt.get("verdict"),
        "speedup": attempt["speedup"],
        "speedup_ci": attempt["speedup_ci"],
        "machine": machine,
        "model": info["model"],
        "provider": info["provider"],
        "run_id": attempt["run_id"],
        "round": attempt["round"],
    }
    if label == "rejected":
        rec["reason"] = attempt.get("reason")
    if with_trace:
        # the judge's feedback given in this run before the attempt was made, in order
        rec["trace"] = [c["text"] for c in info["judge"] if c["created_at"] <= attempt["created_at"]]
    return rec


def records(
    store: AgentStore, *, include_rejected: bool = False, with_trace: bool = True
) -> Iterator[dict[str, Any]]:
    """The export records: verified first (by task, fastest first), then rejected ones if asked."""
    runs = _Runs(store)
    best: dict[tuple[str, str], dict[str, Any]] = {}
    rejected: dict[tuple[str, str], dict[str, Any]] = {}
    for a in store.attempts():
        if not a["code"] or not a["code_hash"]:
            continue  # a reply with no code: nothing to learn a kernel from
        key = (a["task"] or "", a["code_hash"])
        if a["passed"]:
            if key not in best or _speed_key(a) > _speed_key(best[key]):
                best[key] = a
        elif key not in rejected:
            rejected[key] = a
    for a in sorted(best.values(), key=lambda a: (a["task"] or "", -_speed_key(a), a["code_hash"])):
        yield _record(a, "verified", runs, with_trace)
    if include_rejected:
        for key, a in sorted(rejected.items()):
            if key not in best:
                yield _record(a, "rejected", runs, with_trace)


def export(
    db: str | Path | AgentStore,
    out: str | Path | TextIO,
    fmt: str = "jsonl",
    include_rejected: bool = False,
    *,
    with_trace: bool = True,
) -> int:
    """Write the verified (and optionally rejected) solutions of ``db`` to ``out``; returns the count."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if not isinstance(db, AgentStore) and not Path(db).expanduser().is_file():
        raise UsageError(f"no store at {db}: run `karena agent ...` first or point KARENA_DB at one")
    store = db if isinstance(db, AgentStore) else AgentStore(Path(db).expanduser())
    try:
        recs = list(records(store, include_rejected=include_rejected, with_trace=with_trace))
    finally:
        if store is not db:
            store.close()
    if fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in recs)
    else:
        text = json.dumps(recs, ensure_ascii=False, default=str, indent=1) + "\n"
    if isinstance(out, str | Path):
        path = Path(out).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    else:
        out.write(text)
    log.info("exported %d records", len(recs))
    return len(recs)
