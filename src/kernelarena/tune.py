"""``karena tune``: search a task's kernel templates with a ``TuningSession`` (the sandboxed verifier
and timer of ``check``/``bench``), rank the top configs against the baseline interleaved, then
verify the winner with the full ``check`` (the session's screening uses the quick options)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kernelarena import settings
from kernelarena.errors import UsageError
from kernelarena.tasks.loader import resolve_task
from kernelarena.types import CheckOptions, TimingOptions

STRATEGY_ALIASES = {"evolutionary": "evolution"}


def run_tune_command(
    args: argparse.Namespace, store: Any, emit: Callable[[argparse.Namespace, dict[str, Any], str], None]
) -> int:
    from kernelarena import api
    from kernelarena.search import STRATEGIES, TuneRequest, TuneStore, tune
    from kernelarena.search.templates import tasks_with_templates

    task_path = resolve_task(args.task)
    strategy = STRATEGY_ALIASES.get(args.strategy, args.strategy)
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy {args.strategy!r} (one of {', '.join(sorted(STRATEGIES))})")
    if not args.template and task_path.stem not in tasks_with_templates():
        raise UsageError(
            f"no kernel templates for task {task_path.stem!r} (tunable: {', '.join(sorted(tasks_with_templates()))})"
        )
    budget_s = args.budget_s if args.budget_s or args.budget_evals else (30.0 if args.lite else 120.0)
    request = TuneRequest(
        task_path=task_path,
        templates=(args.template,) if args.template else (),
        strategy=strategy,
        budget_s=budget_s,
        budget_evals=args.budget_evals,
        lite=args.lite,
        seed=args.seed,
        out=args.out,
        rank_top=args.rank_top,
    )

    def progress(p: Any) -> None:
        best = f"best {p.best_speedup:.2f}x" if p.best_speedup else "no valid config yet"
        status = "ok" if p.outcome.ok else f"failed: {(p.outcome.reason or '')[:60]}"
        print(f"[{p.evaluations} measured, {p.reused} reused, {p.elapsed_s:4.0f}s] {best}  ({status})",
              file=sys.stderr, flush=True)  # fmt: skip

    with api.TuningSession(task_path, timing_options=TimingOptions(budget_s=0.4, min_rounds=3)) as session:
        result = tune(request, session, TuneStore(args.db or settings.db_path()), progress)
    payload = result.to_json()
    verdict = None
    source = getattr(result, "best_source", None)
    if source:  # the winner must pass the full verification, not only the screening
        with tempfile.TemporaryDirectory() as tmp:
            # --out is replaced: the file verified (and kept) must be this run's winner, not an
            # earlier run's file at the same path
            path = Path(args.out) if args.out else Path(tmp) / f"{task_path.stem}_best.py"
            path.write_text(source)
            verdict = api.check(task_path, path, CheckOptions(), store=store)
        payload["winner_verdict"] = verdict.verdict
        payload["winner_reasons"] = list(verdict.reasons)
    text = (
        f"{result.task}: {result.evaluations} configs measured ({result.reused} reused, {result.failures} failed) "
        f"in {result.elapsed_s:.0f} s, stop: {result.stop_reason}\n"
        + (
            f"best {result.best_speedup:.2f}x{_ci_text(result.best_speedup_ci)} over eager "
            f"({_ms_text(result)}): {result.best_config}"
            if result.best_speedup
            else "no config passed screening"
        )
        + (f"\nwinner re-verified: {verdict.verdict}" if verdict else "")
        + (f"\nwrote {args.out}" if args.out and source else "")
    )
    emit(args, payload, text)
    return 0 if verdict is not None and verdict.passed else 1


def _ci_text(ci: tuple[float, float] | None) -> str:
    return f" [CI {ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""


def _ms_text(result: Any) -> str:
    """The winner's time against the baseline's in the same (interleaved) measurement when ranked."""
    from kernelarena.search.space import point_key

    key = point_key(result.best_config) if result.best_config else None
    top = next((r for r in result.ranking if r["key"] == key), None)
    if top and top.get("baseline_ms"):
        return f"interleaved: {top['median_ms']:.4g} ms vs {top['baseline_ms']:.4g} ms"
    return f"{result.best_ms:.4g} ms vs {result.baseline_ms:.4g} ms, screening"
