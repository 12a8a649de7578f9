"""Retrieval of past verified solutions (IC-Cache): offered to the coder as in-context examples,
best first: the same task first, then tasks of the same category; same backend only."""

from __future__ import annotations

from kernelarena.agent.records import AgentStore
from kernelarena.types import Task


def examples_for(
    store: AgentStore, task: Task, backend: str, *, limit: int = 2, exclude_run: str | None = None
) -> list[tuple[str, float]]:
    """(code, speedup) of verified past attempts, best first; never from ``exclude_run``."""
    cats: dict[str, str | None] = {}
    scored: list[tuple[int, float, str]] = []
    seen: set[str] = set()
    for a in store.attempts(passed=True):
        if a["run_id"] == exclude_run or not a["code"] or a["speedup"] is None or a["code_hash"] in seen:
            continue
        extra = a.get("extra") or {}
        if extra.get("backend") not in (None, backend):
            continue
        same = a["task"] == task.name
        if not same:
            if a["task"] not in cats:
                try:
                    from kernelarena.tasks.loader import load_task

                    cats[a["task"]] = load_task(extra.get("task_path") or a["task"]).category
                except Exception:
                    cats[a["task"]] = None
            if cats[a["task"]] != task.category:
                continue
        seen.add(a["code_hash"])
        scored.append((0 if same else 1, -float(a["speedup"]), a["code"]))
    scored.sort()
    return [(code, -neg) for _, neg, code in scored[:limit]]
