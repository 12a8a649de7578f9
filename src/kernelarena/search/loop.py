"""The tuning loop: ask a strategy, render, evaluate, store, tell, repeat within a budget.

``tune(request, evaluator, store, progress)`` is the whole interface. It is resumable: records of the
same task source, template source, shape and machine already in the store are told to the strategy
first and never measured again. The winner is deterministic: among all measured points of the space,
those within the noise of the fastest (its confidence interval, or ``request.tie_rel``) tie, and the
one with the smallest canonical config key wins, so repeated runs do not flip between equals.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kernelarena.search.cost_model import featurize
from kernelarena.search.hwinfo import HwInfo, hardware
from kernelarena.search.space import SearchSpace, Template, config_of, point_key
from kernelarena.search.store import SCHEMA_VERSION, EvalRecord, TuneStore
from kernelarena.search.strategies import SearchContext, TrainingRecord, make_strategy
from kernelarena.search.templates import templates_for_task
from kernelarena.search.types import (
    TEMPLATE_KEY,
    EvalOutcome,
    Evaluator,
    Point,
    TuneProgress,
    TuneRequest,
    TuneResult,
)

log = logging.getLogger(__name__)

ProgressFn = Callable[[TuneProgress], None]

MAX_TIE_REL = 0.05  # near-ties are never wider than 5% of the best time


def task_source_hash(task_path: Path) -> str:
    """Hash of the task file's text: records of an edited task are never reused."""
    return hashlib.sha256(Path(task_path).read_bytes()).hexdigest()[:16]


def resolve_templates(request: TuneRequest, available: Sequence[Template] | None = None) -> list[Template]:
    templates = list(available) if available is not None else templates_for_task(request.name)
    if request.templates:
        wanted = set(request.templates)
        unknown = wanted - {t.name for t in templates}
        if unknown:
            raise ValueError(f"no template(s) {sorted(unknown)} for task {request.name}")
        templates = [t for t in templates if t.name in wanted]
    if not templates:
        raise ValueError(f"no search templates for task {request.name!r}")
    return templates


def build_space(templates: Sequence[Template], lite: bool, hw: HwInfo) -> SearchSpace:
    return SearchSpace.lite(templates, hw) if lite else SearchSpace.full(templates, hw)


def _half_width(ci: tuple[float, float] | None, median: float) -> float:
    if ci is None:
        return 0.0
    return max(0.0, median - ci[0], ci[1] - median)


def pick_winner(
    measured: Mapping[str, tuple[float, tuple[float, float] | None]], tie_rel: float = 0.01
) -> str | None:
    """Deterministic winner among ``{point_key: (median_ms, ci_ms)}`` (inf = failure).

    Every point whose median is within the noise of the fastest is a near-tie, and the smallest key
    among them wins. "Within the noise": the larger CI half-width of the two, but at least
    ``tie_rel`` and at most ``MAX_TIE_REL`` of the best time (a wildly noisy measurement must not
    let a much slower config tie).
    """
    finite = {k: v for k, v in measured.items() if math.isfinite(v[0])}
    if not finite:
        return None
    best_key = min(finite, key=lambda k: (finite[k][0], k))
    best_ms, best_ci = finite[best_key]
    tied = []
    for k, (ms, ci) in finite.items():
        noise = max(_half_width(best_ci, best_ms), _half_width(ci, ms))
        margin = min(max(noise, tie_rel * best_ms), max(tie_rel, MAX_TIE_REL) * best_ms)
        if ms - best_ms <= margin:
            tied.append(k)
    return min(tied)


PRIOR_LIMIT = 20_000  # most recent stored records used to pre-train the cost model


def training_prior(store: TuneStore | None, exclude_group: str) -> list[TrainingRecord]:
    """Stored records of other (task, shape, machine) groups, as cost-model training data."""
    if store is None:
        return []
    prior = []
    for r in store.records()[-PRIOR_LIMIT:]:
        group = f"{r.task_hash}|{r.shape_id}|{r.machine_id}"
        if group == exclude_group or not r.features or not r.baseline_ms:
            continue
        prior.append(TrainingRecord(r.features, r.score_ms, float(r.baseline_ms), group))
    return prior


def _shape_features(evaluator: Evaluator) -> dict[str, float]:
    raw = getattr(evaluator, "shape_features", None) or {}
    return {str(k): float(v) for k, v in dict(raw).items()}


def tune(
    request: TuneRequest,
    evaluator: Evaluator,
    store: TuneStore | None = None,
    progress: ProgressFn | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    hw: HwInfo | None = None,
    templates: Sequence[Template] | None = None,
) -> TuneResult:
    """Search ``request``'s templates for the fastest config the evaluator accepts.

    Example::

        result = tune(TuneRequest(task_path=Path("rmsnorm.py"), lite=True, budget_s=30),
                      TuningSession("rmsnorm.py"), TuneStore("karena.db"))
        print(result.best_speedup, result.best_config)

    ``clock``, ``hw`` and ``templates`` (instead of the built-in templates of the task) are
    injectable for simulation and tests.
    """
    hw = hw or hardware()
    templates = resolve_templates(request, templates)
    space = build_space(templates, request.lite, hw)
    task_hash = task_source_hash(request.task_path)
    shape_id = str(evaluator.shape_id)
    baseline_ms = float(evaluator.baseline_ms)
    shape_feats = _shape_features(evaluator)
    group = f"{task_hash}|{shape_id}|{hw.machine_id}"
    context = SearchContext(
        hw=hw,
        baseline_ms=baseline_ms,
        shape_features=shape_feats,
        prior=training_prior(store, group) if request.strategy == "model" else (),
    )
    strategy = make_strategy(request.strategy, space, request.seed, context)
    tpl_hash = {t.name: t.source_hash for t in templates}

    measured: dict[str, tuple[float, tuple[float, float] | None]] = {}
    history: list[dict[str, Any]] = []
    start = clock()
    best: tuple[str, float] | None = None
    counters = {"evaluations": 0, "reused": 0, "failures": 0}

    def record(point: Point, outcome: EvalOutcome, reused: bool) -> None:
        nonlocal best
        k = point_key(point)
        measured[k] = (outcome.score_ms, outcome.ci_ms)
        counters["reused" if reused else "evaluations"] += 1
        if not outcome.ok:
            counters["failures"] += 1
        strategy.tell(point, outcome.score_ms)
        if math.isfinite(outcome.score_ms) and (best is None or outcome.score_ms < best[1]):
            best = (k, outcome.score_ms)
        best_speedup = baseline_ms / best[1] if best else None
        best_point = space.by_key(best[0]) if best else None
        history.append(
            {
                "i": len(history),
                "template": point[TEMPLATE_KEY],
                "config": config_of(point),
                "ok": outcome.ok,
                "median_ms": outcome.median_ms,
                "ci_ms": list(outcome.ci_ms) if outcome.ci_ms else None,
                "speedup": baseline_ms / outcome.score_ms if math.isfinite(outcome.score_ms) else None,
                "reason": outcome.reason,
                "reused": reused,
                "best_speedup": best_speedup,
                "elapsed_s": clock() - start,
            }
        )
        if progress is not None:
            progress(
                TuneProgress(
                    evaluations=counters["evaluations"],
                    reused=counters["reused"],
                    elapsed_s=clock() - start,
                    point=dict(point),
                    outcome=outcome,
                    best_speedup=best_speedup,
                    best_config=best_point,
                )
            )

    # resume: reuse every stored record of this exact (task, template source, shape, machine) in the space
    if store is not None:
        for rec in store.records(task_hash=task_hash, shape_id=shape_id, machine_id=hw.machine_id):
            point = rec.point
            if tpl_hash.get(rec.template) != rec.template_hash or point not in space:
                continue
            if point_key(point) in measured:
                continue
            outcome = EvalOutcome(rec.ok, rec.median_ms, rec.ci_ms, rec.reason)
            record(point, outcome, reused=True)

    stop_reason = "exhausted"
    while True:
        if request.budget_evals is not None and counters["evaluations"] >= request.budget_evals:
            stop_reason = "budget_evals"
            break
        if request.budget_s is not None and clock() - start >= request.budget_s:
            stop_reason = "budget_s"
            break
        asked = strategy.ask(1)
        if not asked:
            break
        point = asked[0]
        template = space.template_of(point)
        t0 = clock()
        outcome = _evaluate(template, point, evaluator)
        eval_s = clock() - t0
        if store is not None:
            store.put(
                EvalRecord(
                    task_hash=task_hash,
                    template=template.name,
                    template_hash=template.source_hash,
                    config_json=point_key(point),
                    shape_id=shape_id,
                    machine_id=hw.machine_id,
                    task=request.name,
                    ok=outcome.ok,
                    median_ms=outcome.median_ms,
                    ci_ms=outcome.ci_ms,
                    reason=outcome.reason,
                    baseline_ms=baseline_ms,
                    features=featurize(point, template, hw, shape_feats),
                    eval_s=eval_s,
                    strategy=request.strategy,
                    created_at=time.time(),
                    schema_version=SCHEMA_VERSION,
                )
            )
        record(point, outcome, reused=False)

    win_key = pick_winner(measured, request.tie_rel)
    best_ms = measured[win_key][0] if win_key else None
    best_speedup = baseline_ms / best_ms if best_ms else None
    best_ci: tuple[float, float] | None = None
    ranking: list[dict[str, Any]] = []
    rank = getattr(evaluator, "rank", None)
    if win_key and rank is not None and request.rank_top > 0:
        win_key, ranking = rank_top(space, measured, rank, request.rank_top, request.tie_rel)
        top = next((r for r in ranking if r["key"] == win_key), None)
        best_ms = top["median_ms"] if top else None
        best_speedup = top["speedup"] if top else None
        best_ci = tuple(top["speedup_ci"]) if top and top["speedup_ci"] else None
    best_config = space.by_key(win_key) if win_key else None
    best_source = space.template_of(best_config).render(best_config) if best_config else None
    out = None
    if request.out is not None and best_source is not None:
        Path(request.out).parent.mkdir(parents=True, exist_ok=True)
        Path(request.out).write_text(best_source)
        out = str(request.out)
    return TuneResult(
        task=request.name,
        strategy=request.strategy,
        lite=request.lite,
        space_size=len(space),
        baseline_ms=baseline_ms,
        best_speedup=best_speedup,
        best_ms=best_ms,
        best_config=best_config,
        evaluations=counters["evaluations"],
        reused=counters["reused"],
        failures=counters["failures"],
        elapsed_s=clock() - start,
        stop_reason=stop_reason,
        shape_id=shape_id,
        machine_id=hw.machine_id,
        out=out,
        best_speedup_ci=best_ci,
        ranking=tuple(ranking),
        best_source=best_source,
        history=tuple(history),
    )


def rank_top(
    space: SearchSpace,
    measured: Mapping[str, tuple[float, tuple[float, float] | None]],
    rank: Callable[[str], EvalOutcome],
    top: int,
    tie_rel: float,
) -> tuple[str | None, list[dict[str, Any]]]:
    """Re-measure the ``top`` fastest screened configs against the baseline, interleaved, and pick
    the winner by that speedup (near-ties within its CI go to the smallest key, as in
    :func:`pick_winner`). Screening times drift with the machine's load between configs; the
    interleaved speedup does not, so it is the figure reported (and repeated by a second run).
    A config that fails here (a sampled timed output wrong, a crash) cannot win.
    """
    finite = sorted((v[0], k) for k, v in measured.items() if math.isfinite(v[0]))
    rows: list[dict[str, Any]] = []
    inverse: dict[str, tuple[float, tuple[float, float] | None]] = {}
    for screened_ms, key in finite[:top]:
        point = space.by_key(key)
        outcome = _evaluate(space.template_of(point), point, lambda src, _cfg: rank(src))
        ok = outcome.ok and bool(outcome.speedup) and outcome.speedup_ci is not None
        rows.append({"key": key, "config": config_of(point), "template": point[TEMPLATE_KEY],
                     "screened_ms": screened_ms, "ok": ok, "median_ms": outcome.median_ms,
                     "baseline_ms": outcome.baseline_ms, "speedup": outcome.speedup,
                     "speedup_ci": list(outcome.speedup_ci) if outcome.speedup_ci else None,
                     "reason": outcome.reason})  # fmt: skip
        if ok:
            assert outcome.speedup is not None and outcome.speedup_ci is not None
            lo, hi = outcome.speedup_ci
            # pick_winner minimizes: 1/speedup is the time relative to the baseline
            inverse[key] = (1.0 / outcome.speedup, (1.0 / hi, 1.0 / lo) if lo > 0 else None)
        else:
            inverse[key] = (math.inf, None)
    return pick_winner(inverse, tie_rel), rows


def _evaluate(
    template: Template, point: Point, evaluator: Evaluator | Callable[[str, Point], EvalOutcome]
) -> EvalOutcome:
    """Render and evaluate one point; any exception becomes a failure with its reason."""
    try:
        source = template.render(point)
    except Exception as exc:  # a template bug is data too: this config scores inf
        log.warning("render failed for %s: %s", point_key(point), exc)
        return EvalOutcome.failure(f"render error: {type(exc).__name__}: {exc}")
    try:
        evaluate = evaluator if callable(evaluator) else evaluator.evaluate
        outcome = evaluate(source, dict(point))
    except Exception as exc:
        log.warning("evaluation raised for %s: %s", point_key(point), exc)
        return EvalOutcome.failure(f"evaluator error: {type(exc).__name__}: {exc}")
    if outcome.ok and (
        outcome.median_ms is None or not math.isfinite(outcome.median_ms) or outcome.median_ms <= 0
    ):
        return EvalOutcome.failure(f"evaluator returned ok without a valid time ({outcome.median_ms})")
    return outcome
