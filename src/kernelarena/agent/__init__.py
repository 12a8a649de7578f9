"""LLM kernel agents: ``run(task, model=...)`` drives a coder/judge loop (CudaForge) through the
verifier and the timer, records everything in the store and returns an :class:`AgentResult`.

Example::

    from kernelarena.agent import run
    res = run("rmsnorm", model="qwen2.5-coder-32b", rounds=5)   # KARENA_LLM_BASE_URL / _API_KEY
    print(res.best_speedup, res.best_solution)
"""

from __future__ import annotations

import uuid
from importlib import resources
from pathlib import Path
from typing import Any

from kernelarena.agent.loop import AgentResult, LoopOptions, RoundResult, coder_judge_loop
from kernelarena.agent.providers import Budget, BudgetExceeded, Provider, ProviderError, make_provider
from kernelarena.agent.records import AgentStore, RecordingProvider, ReplayProvider
from kernelarena.types import CheckOptions, Task, TimingOptions

__all__ = ["AgentResult", "RoundResult", "bundled_replay", "run"]

STRATEGIES = ("judge", "plain", "evolve")


def bundled_replay(task_name: str) -> Path | None:
    """The replay recording shipped for ``task_name`` (``agent/replays/<name>.jsonl``), if any."""
    p = resources.files("kernelarena.agent").joinpath("replays", f"{task_name}.jsonl")
    return Path(str(p)) if p.is_file() else None


def _machine() -> str | None:
    try:
        from kernelarena.hw.profile import cpu_machine_id

        return cpu_machine_id()
    except Exception:
        return None


def _inner(kind: str, model: str, role: str, *, api_base: str | None, api_key: str | None,
           replay: str | Path | None, timeout_s: float, max_retries: int) -> Provider:  # fmt: skip
    if kind == "replay":
        if replay is None:
            raise ProviderError("the replay provider needs a recording: pass --replay FILE.jsonl")
        return ReplayProvider(replay, model=model or None, role=role)
    return make_provider(kind, model=model, api_base=api_base, api_key=api_key, timeout_s=timeout_s,
                         max_retries=max_retries)  # fmt: skip


def run(
    task: str | Path | Task,
    *,
    model: str,
    provider: str = "openai",
    strategy: str = "judge",
    rounds: int = 10,
    backend: str = "c",
    judge_model: str | None = None,
    api_base: str | None = None,
    api_key: str | None = None,
    replay: str | Path | None = None,
    budget_usd: float | None = None,
    budget_tokens: int | None = None,
    run_id: str | None = None,
    db: str | Path | None = None,
    run_dir: str | Path | None = None,
    retrieval: bool = True,
    patience: int = 3,
    check_options: CheckOptions | None = None,
    timing_options: TimingOptions | None = None,
    timeout_s: float = 120.0,
    max_retries: int = 4,
    progress: Any = None,
    evaluator: Any = None,
    population: int = 8,
    generations: int = 4,
    prefilter: Any = None,
    budget: Budget | None = None,
) -> AgentResult:
    """Run the agent on ``task``. Raises ``ProviderError`` (cannot reach / authenticate the
    model) and ``UsageError`` / ``TaskError`` (bad task) before any round when it cannot run.

    ``strategy="evolve"`` runs :func:`kernelarena.agent.evolve.evolve_loop` with ``population``
    programs over ``generations`` generations (``rounds`` is then unused); ``prefilter`` replaces
    its quick pre-check (default :func:`kernelarena.agent.evolve.prefilter`). ``budget``: a
    :class:`Budget` shared with other runs (a suite's), instead of ``budget_usd``/``budget_tokens``."""
    from kernelarena import settings
    from kernelarena.tasks.loader import load_task

    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}: choose one of {', '.join(STRATEGIES)}")
    if strategy == "evolve" and (population < 1 or generations < 1):
        raise ValueError("population and generations must be at least 1")
    t = task if isinstance(task, Task) else load_task(task)
    db_path = Path(db) if db is not None else settings.db_path()
    db_path.parent.mkdir(parents=True, exist_ok=True)
    run_id = run_id or f"{t.name}-{uuid.uuid4().hex[:10]}"
    out_dir = Path(run_dir) if run_dir is not None else db_path.parent / "agent_runs" / run_id
    if budget is None and (budget_usd or budget_tokens):
        budget = Budget(max_usd=budget_usd, max_tokens=budget_tokens)
    kw: dict[str, Any] = {"api_base": api_base, "api_key": api_key, "replay": replay,
                          "timeout_s": timeout_s, "max_retries": max_retries}  # fmt: skip
    coder_inner = _inner(provider, model, "coder", **kw)
    use_judge = strategy == "judge"
    judge_inner = _inner(provider, judge_model or model, "judge", **kw) if use_judge else None
    opts = LoopOptions(rounds=rounds, backend=backend, patience=patience, judge=use_judge,
                       check_options=check_options or CheckOptions(),
                       timing_options=timing_options or TimingOptions(budget_s=1.0))  # fmt: skip
    examples: list[tuple[str, float]] = []
    with AgentStore(db_path) as store:
        if retrieval:
            from kernelarena.agent.retrieval import examples_for

            examples = examples_for(store, t, backend, exclude_run=run_id)
        store.start_run(run_id, t.name, {
            "machine": _machine(), "model": model, "judge_model": judge_model or model, "provider": provider,
            "backend": backend, "task_path": str(t.path), "strategy": strategy, "rounds": rounds,
            "retrieval": retrieval, "budget_usd": budget_usd, "budget_tokens": budget_tokens,
            **({"population": population, "generations": generations} if strategy == "evolve" else {}),
        })  # fmt: skip
        coder = RecordingProvider(coder_inner, store, run_id, "coder", budget)
        judge = RecordingProvider(judge_inner, store, run_id, "judge", budget) if judge_inner else None
        if strategy == "evolve":
            from kernelarena.agent.evolve import EvolveOptions, evolve_loop

            eopts = EvolveOptions(population=population, generations=generations, loop=opts)
            result = evolve_loop(t, coder, store=store, run_id=run_id, run_dir=out_dir, opts=eopts,
                                 db_path=db_path, examples=examples, progress=progress, evaluator=evaluator,
                                 quick=prefilter)  # fmt: skip
            store.finish_run(run_id, result.to_json())
            return result
        result = coder_judge_loop(t, coder, judge, store=store, run_id=run_id, run_dir=out_dir, opts=opts,
                                  db_path=db_path, examples=examples, progress=progress,
                                  evaluator=evaluator)  # fmt: skip
        store.finish_run(run_id, result.to_json())
    return result


def run_suite(
    suite: str | Path,
    *,
    model: str,
    jobs: int = 1,
    run_id: str | None = None,
    budget_usd: float | None = None,
    budget_tokens: int | None = None,
    progress: Any = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """The agent on every task of ``suite``, ``jobs`` tasks at a time, resumable.

    Each task's run id is ``<run_id>-<task>``; ``run_id`` defaults to one derived from the suite,
    model and options, so re-running the same command resumes (recorded LLM calls are not paid
    again, finished runs are replayed from the store). The USD/token budget is shared by all tasks:
    once it is spent, the remaining tasks stop at their first call. Returns ``{"run_id", "tasks":
    [{task, run_id, best_speedup, best_solution, llm_calls, stopped}], "solved", "llm_calls"}``."""
    import concurrent.futures
    import hashlib
    import json

    from kernelarena.suite import resolve_suite
    from kernelarena.tasks.loader import task_files

    suite_dir = resolve_suite(str(suite))
    files = task_files(suite_dir)
    if run_id is None:
        conf = {k: v for k, v in sorted(kwargs.items()) if isinstance(v, str | int | float | bool | None)}
        blob = json.dumps(
            [suite_dir.name, model, conf, budget_usd, budget_tokens], sort_keys=True, default=str
        )
        run_id = f"{suite_dir.name}-{hashlib.sha256(blob.encode()).hexdigest()[:10]}"
    budget = Budget(max_usd=budget_usd, max_tokens=budget_tokens) if (budget_usd or budget_tokens) else None

    def one(path: Path) -> dict[str, Any]:
        tid = f"{run_id}-{path.stem}"
        try:
            res = run(path, model=model, run_id=tid, budget=budget, progress=progress, **kwargs)
        except ProviderError:
            raise
        except Exception as exc:  # one task's failure (a task that does not load) is data
            return {"task": path.stem, "run_id": tid, "best_speedup": None, "best_solution": None,
                    "llm_calls": 0, "stopped": f"error: {type(exc).__name__}: {exc}"}  # fmt: skip
        return {"task": path.stem, "run_id": tid, "best_speedup": res.best_speedup,
                "best_solution": res.best_solution, "llm_calls": res.llm_calls, "stopped": res.stopped}  # fmt: skip

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        rows = list(pool.map(one, files))
    return {
        "run_id": run_id,
        "tasks": rows,
        "solved": sum(1 for r in rows if r["best_solution"] is not None),
        "llm_calls": sum(r["llm_calls"] for r in rows),
    }


__all__ += ["Budget", "BudgetExceeded", "ProviderError", "run_suite"]
