"""Figures for the search engine: strategies vs exhaustive, lite vs full, the cost model.

Works on recordings made by ``bench/search_record.py`` (every config of a template's full space,
measured once on a moderate shape), in simulation mode: each strategy is replayed against the
recorded times, so the comparison is deterministic for a seed and costs no kernel runs. The
"seconds" of a replay are the recorded evaluation times (compile + check + timing) plus the
strategy's own overhead measured now. Optionally (``--live``) it also runs the real loop on the lite
space for 30 s per task, from an empty build cache, and compares with the recorded full-space best.

    .venv/bin/python bench/search_benchmark.py [--recordings DIR] [--seeds 5] [--live] [--out FILE]

Goals checked: lite reaches 95% of the full-space best within 30 s; cost-model-guided search needs
at most a quarter of random search's evaluations to reach 95% of the exhaustive best.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kernelarena.search.cost_model import rank_correlation
from kernelarena.search.hwinfo import hardware
from kernelarena.search.simulate import Recording, replay
from kernelarena.search.strategies import TrainingRecord

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ["random", "tpe", "cmaes", "evolution", "model"]
QUALITY = 0.95  # "reaches 95% of the exhaustive best": best_ms_exhaustive / best_found_ms >= 0.95


def quality(found_ms: float, best_ms: float) -> float:
    return best_ms / found_ms if math.isfinite(found_ms) and found_ms > 0 else 0.0


def run_strategies(rec: Recording, seeds: int, prior: list[TrainingRecord], hw: Any) -> dict[str, Any]:
    n = len(rec.space(hw=hw))
    best = rec.best_ms
    target = best / QUALITY
    n10, n25 = max(1, math.ceil(0.10 * n)), max(1, math.ceil(0.25 * n))
    out: dict[str, Any] = {"space": n, "n10": n10, "n25": n25}
    names = [*STRATEGIES, "model+prior"]
    for name in names:
        q10, q25, q30s, reach = [], [], [], []
        t0 = time.time()
        for seed in range(seeds):
            strat, pri = ("model", prior) if name == "model+prior" else (name, [])
            # long enough for 25% of the space and 30 simulated seconds; the cheap strategies run on
            # until they reach the 95% target so that "evaluations to 95%" is known for them
            cheap = name in ("random", "evolution", "model", "model+prior", "exhaustive")
            trace = replay(rec, strat, seed=seed, hw=hw, prior=pri,
                           budget_evals=None if cheap else max(n25, 1),
                           stop_at_ms=None)  # fmt: skip
            if not cheap and trace.elapsed_s and trace.elapsed_s[-1] < 30 and len(trace.values_ms) < n:
                trace = replay(rec, strat, seed=seed, hw=hw, prior=pri, budget_s=30.0)
            q10.append(quality(trace.best_after(n10), best))
            q25.append(quality(trace.best_after(n25), best))
            q30s.append(quality(trace.best_within(30.0), best))
            reach.append(trace.evals_to_reach(target))
        reached = [r for r in reach if r is not None]
        out[name] = {
            "q10_mean": statistics.mean(q10),
            "q25_mean": statistics.mean(q25),
            "q30s_mean": statistics.mean(q30s),
            "q30s_min": min(q30s),
            "evals_to_95_median": statistics.median(reached) if len(reached) == len(reach) else None,
            "evals_to_95": reach,
            "wall_s": time.time() - t0,
        }
    return out


def lite_figures(rec: Recording, hw: Any) -> dict[str, Any]:
    lite = rec.space(lite=True, hw=hw)
    keys = {json.dumps(p, sort_keys=True, separators=(",", ":")) for p in lite.points}
    pts = [p for p in rec.points if json.dumps(p.point, sort_keys=True, separators=(",", ":")) in keys]
    lite_best = min(p.score_ms for p in pts)
    trace = replay(rec, "exhaustive", lite=True, hw=hw)
    return {
        "lite_size": len(pts),
        "lite_best_ms": lite_best,
        "lite_over_full": quality(lite_best, rec.best_ms),
        "lite_all_s": sum(p.eval_s for p in pts),
        "lite_q30s_in_order": quality(trace.best_within(30.0), rec.best_ms),
    }


def model_correlation(rec: Recording, others: list[TrainingRecord], hw: Any, seeds: int) -> dict[str, float]:
    """Held-out rank correlation: within the task (train on 25% of its points) and across tasks."""
    from kernelarena.search.cost_model import CostModel

    own = rec.training_records(hw)
    ok = [r for r in own if math.isfinite(r.median_ms)]
    rho, tau = [], []
    for seed in range(seeds):
        rows = list(own)
        random.Random(seed).shuffle(rows)
        k = max(8, len(rows) // 4)
        train, test = rows[:k], [r for r in rows[k:] if math.isfinite(r.median_ms)]
        m = CostModel(seed=seed).fit_records(train)
        c = rank_correlation(m.predict([r.features for r in test]), [math.log(r.median_ms) for r in test])
        rho.append(c["spearman"])
        tau.append(c["kendall"])
    res = {"within_spearman": statistics.mean(rho), "within_kendall": statistics.mean(tau)}
    if others:
        m = CostModel(seed=0).fit_records(others)
        c = rank_correlation(m.predict([r.features for r in ok]), [math.log(r.median_ms) for r in ok])
        res["cross_task_spearman"] = c["spearman"]
        res["cross_task_kendall"] = c["kendall"]
    return res


def live_lite(task: str, rec: Recording, seconds: float) -> dict[str, Any]:
    """A real 30 s lite tune (empty build cache, fresh store), compared with the recorded full best."""
    sys.path.insert(0, str(ROOT / "bench"))
    from search_record import SHAPES, TASKS_DIR  # type: ignore[import-not-found]

    from kernelarena.search.loop import tune
    from kernelarena.search.store import TuneStore
    from kernelarena.search.types import TuneRequest
    from kernelarena.session import TuningSession
    from kernelarena.types import TimingOptions

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["KARENA_BUILD_CACHE"] = str(Path(tmp) / "builds")  # no help from earlier builds
        path = TASKS_DIR / f"{task}.py"
        timing = TimingOptions(budget_s=0.05, min_rounds=3, max_rounds=3)
        with TuningSession(path, shape=SHAPES[task], timing_options=timing) as ev:
            req = TuneRequest(task_path=path, lite=True, strategy="model", budget_s=seconds)
            res = tune(req, ev, TuneStore(Path(tmp) / "k.db"))
        os.environ.pop("KARENA_BUILD_CACHE")
    best_found = min((h["median_ms"] for h in res.history if h["ok"]), default=math.inf)
    return {
        "evaluations": res.evaluations,
        "elapsed_s": res.elapsed_s,
        "best_ms": best_found,
        "winner_ms": res.best_ms,
        "baseline_ms": res.baseline_ms,
        "live_speedup": res.best_speedup,
        "vs_recorded_full_best": quality(best_found, rec.best_ms),
        "winner_vs_recorded_full_best": quality(res.best_ms or math.inf, rec.best_ms),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--recordings", type=Path, default=ROOT / ".karena/search_recordings")
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--live", action="store_true", help="also run a real 30 s lite tune per task")
    ap.add_argument("--live-seconds", type=float, default=30.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    hw = hardware()
    recs = {p.stem: Recording.load(p) for p in sorted(args.recordings.glob("*.json"))}
    if not recs:
        sys.exit(f"no recordings in {args.recordings}: run bench/search_record.py first")
    train_all = {t: r.training_records(hw) for t, r in recs.items()}
    report: dict[str, Any] = {"machine": hw.cpu_model, "seeds": args.seeds, "tasks": {}}
    for task, rec in recs.items():
        others = [r for t, rs in train_all.items() if t != task for r in rs]
        t0 = time.time()
        entry: dict[str, Any] = {
            "shape": rec.shape_id,
            "baseline_ms": rec.baseline_ms,
            "exhaustive_best_ms": rec.best_ms,
            "exhaustive_speedup": rec.baseline_ms / rec.best_ms,
            "failures": sum(not p.ok for p in rec.points),
            "exhaustive_s": sum(p.eval_s for p in rec.points),
        }
        entry["lite"] = lite_figures(rec, hw)
        entry["cost_model"] = model_correlation(rec, others, hw, args.seeds)
        entry["strategies"] = run_strategies(rec, args.seeds, others, hw)
        if args.live:
            entry["live_lite"] = live_lite(task, rec, args.live_seconds)
        report["tasks"][task] = entry
        print_task(task, entry, time.time() - t0)
    print_summary(report)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1, default=str))


def print_task(task: str, e: dict[str, Any], wall: float) -> None:
    s = e["strategies"]
    print(f"\n== {task} [{e['shape']}] space {s['space']} configs, {e['failures']} failed; exhaustive "
          f"{e['exhaustive_s']:.0f} s; best {e['exhaustive_best_ms']:.3f} ms = x{e['exhaustive_speedup']:.2f} "
          f"vs eager ({e['baseline_ms']:.3f} ms)   [{wall:.0f} s]")  # fmt: skip
    lite = e["lite"]
    print(f"   lite: {lite['lite_size']} configs, best = {100 * lite['lite_over_full']:.1f}% of full best; "
          f"measuring all of it takes {lite['lite_all_s']:.0f} s; in 30 s (space order) "
          f"{100 * lite['lite_q30s_in_order']:.1f}%")  # fmt: skip
    cm = e["cost_model"]
    cross = ""
    if "cross_task_spearman" in cm:
        if math.isnan(cm["cross_task_spearman"]):
            cross = ", other tasks -> this one: n/a (constant prediction: no shared features)"
        else:
            cross = f", other tasks -> this one: Spearman {cm['cross_task_spearman']:.2f} Kendall {cm['cross_task_kendall']:.2f}"
    print(f"   cost model held-out: within task (25% train) Spearman {cm['within_spearman']:.2f} "
          f"Kendall {cm['within_kendall']:.2f}{cross}")  # fmt: skip
    print(f"   {'strategy':<12} {'@10% (' + str(s['n10']) + ')':>12} {'@25% (' + str(s['n25']) + ')':>12} "
          f"{'@30 s':>8} {'min@30s':>8} {'evals to 95%':>14}")  # fmt: skip
    for name in [*STRATEGIES, "model+prior"]:
        r = s[name]
        ev = r["evals_to_95_median"]
        ev_s = f"{ev:.0f}" if ev is not None else "not all seeds"
        print(f"   {name:<12} {100 * r['q10_mean']:>11.1f}% {100 * r['q25_mean']:>11.1f}% {100 * r['q30s_mean']:>7.1f}% "
              f"{100 * r['q30s_min']:>7.1f}% {ev_s:>14}")  # fmt: skip
    if "live_lite" in e:
        lv = e["live_lite"]
        print(f"   live lite tune ({lv['elapsed_s']:.0f} s, {lv['evaluations']} evals, cold build cache): best "
              f"{lv['best_ms']:.3f} ms = {100 * lv['vs_recorded_full_best']:.1f}% of the recorded full best "
              f"(winner after tie rule {100 * lv['winner_vs_recorded_full_best']:.1f}%), x{lv['live_speedup']:.2f} vs eager")  # fmt: skip


def print_summary(report: dict[str, Any]) -> None:
    tasks = report["tasks"]
    print("\n== summary")
    ratios = []
    for task, e in tasks.items():
        s = e["strategies"]
        m, r = s["model"]["evals_to_95_median"], s["random"]["evals_to_95_median"]
        ratio = m / r if m and r else None
        ratios.append(ratio)
        lite_ok = e["lite"]["lite_q30s_in_order"] >= QUALITY
        live = e.get("live_lite", {}).get("vs_recorded_full_best")
        print(f"   {task:<18} model/random evals to 95%: {m}/{r} = {ratio if ratio is None else round(ratio, 2)}"
              f" (goal <= 0.25: {'met' if ratio is not None and ratio <= 0.25 else 'MISSED'}); lite 95% in 30 s "
              f"(replay): {'met' if lite_ok else 'MISSED'}"
              + (f"; live: {100 * live:.1f}% ({'met' if live >= QUALITY else 'MISSED'})" if live is not None else ""))  # fmt: skip
    valid = [x for x in ratios if x is not None]
    if valid:
        geo = math.exp(statistics.mean(math.log(x) for x in valid))
        print(f"   geomean model/random evaluation ratio: {geo:.2f}")


if __name__ == "__main__":
    main()
