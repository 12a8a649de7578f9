"""Simulation mode: replay strategies and the cost model against recorded measurements.

A :class:`Recording` holds one task's measured points on one shape (from a JSON file or the store).
:class:`RecordedEvaluator` answers ``evaluate`` from it, with a virtual clock that advances by each
record's measured evaluation time, so ``tune(..., clock=ev.clock)`` replays a time budget too;
:func:`replay` runs a strategy's ask/tell directly against a recording (no task file, no kernels),
which is what the benchmark and the strategy tests use. Both are deterministic for a seed.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernelarena.search.hwinfo import HwInfo, hardware
from kernelarena.search.space import SearchSpace, Template, point_key
from kernelarena.search.store import TuneStore
from kernelarena.search.strategies import SearchContext, TrainingRecord, make_strategy
from kernelarena.search.templates import load_template
from kernelarena.search.types import TEMPLATE_KEY, EvalOutcome, Point


@dataclass(frozen=True)
class RecordedPoint:
    point: Point
    ok: bool
    median_ms: float | None
    ci_ms: tuple[float, float] | None = None
    reason: str | None = None
    eval_s: float = 0.0

    @property
    def score_ms(self) -> float:
        if not self.ok or self.median_ms is None or not math.isfinite(self.median_ms):
            return math.inf
        return float(self.median_ms)


@dataclass(frozen=True)
class Recording:
    """Measured points of one task on one shape and machine."""

    task: str
    shape_id: str
    baseline_ms: float
    machine_id: str = ""
    shape_features: Mapping[str, float] = field(default_factory=dict)
    points: tuple[RecordedPoint, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "shape_id": self.shape_id,
            "baseline_ms": self.baseline_ms,
            "machine_id": self.machine_id,
            "shape_features": dict(self.shape_features),
            "points": [
                {
                    "point": p.point,
                    "ok": p.ok,
                    "median_ms": p.median_ms,
                    "ci_ms": list(p.ci_ms) if p.ci_ms else None,
                    "reason": p.reason,
                    "eval_s": p.eval_s,
                }
                for p in self.points
            ],
        }

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Recording:
        pts = tuple(
            RecordedPoint(
                point=dict(p["point"]),
                ok=bool(p["ok"]),
                median_ms=p.get("median_ms"),
                ci_ms=tuple(p["ci_ms"]) if p.get("ci_ms") else None,
                reason=p.get("reason"),
                eval_s=float(p.get("eval_s") or 0.0),
            )
            for p in data["points"]
        )
        return Recording(
            task=str(data["task"]),
            shape_id=str(data["shape_id"]),
            baseline_ms=float(data["baseline_ms"]),
            machine_id=str(data.get("machine_id", "")),
            shape_features={k: float(v) for k, v in dict(data.get("shape_features") or {}).items()},
            points=pts,
        )

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1, sort_keys=True))

    @staticmethod
    def load(path: Path) -> Recording:
        return Recording.from_json(json.loads(Path(path).read_text()))

    @property
    def best_ms(self) -> float:
        return min((p.score_ms for p in self.points), default=math.inf)

    def templates(self) -> list[Template]:
        return [load_template(n) for n in sorted({str(p.point[TEMPLATE_KEY]) for p in self.points})]

    def space(self, lite: bool = False, hw: HwInfo | None = None) -> SearchSpace:
        """The recorded points that are valid in the current templates (lite: also in the lite space)."""
        templates = self.templates()
        hw = hw or hardware()
        ref = SearchSpace.lite(templates, hw) if lite else SearchSpace.full(templates, hw)
        return SearchSpace(templates, [p.point for p in self.points if p.point in ref], ref.hints)

    def training_records(self, hw: HwInfo | None = None) -> list[TrainingRecord]:
        """All points as cost-model training data (featurized against ``hw``)."""
        from kernelarena.search.cost_model import featurize

        hw = hw or hardware()
        tpls = {t.name: t for t in self.templates()}
        group = f"{self.task}|{self.shape_id}|{self.machine_id}"
        return [
            TrainingRecord(
                featurize(p.point, tpls[p.point[TEMPLATE_KEY]], hw, self.shape_features),
                p.score_ms,
                self.baseline_ms,
                group,
            )
            for p in self.points
        ]


def recording_from_store(store: TuneStore, task: str, shape_id: str, machine_id: str) -> Recording:
    """Collect a task's stored evaluations on one shape and machine into a :class:`Recording`."""
    recs = store.records(task=task, shape_id=shape_id, machine_id=machine_id)
    if not recs:
        raise ValueError(f"no stored evaluations of {task} on {shape_id} ({machine_id})")
    baseline = next((r.baseline_ms for r in reversed(recs) if r.baseline_ms), math.nan)
    pts = {
        r.config_json: RecordedPoint(r.point, r.ok, r.median_ms, r.ci_ms, r.reason, r.eval_s or 0.0)
        for r in recs
    }
    shape = {
        k[2:]: 2.0**v for k, v in recs[-1].features.items() if k.startswith("s.") and k != "s.log2_intensity"
    }
    return Recording(task, shape_id, float(baseline), machine_id, shape, tuple(pts.values()))


class RecordedEvaluator:
    """An :class:`~kernelarena.search.types.Evaluator` that looks measurements up in a recording."""

    def __init__(self, recording: Recording):
        self.recording = recording
        self._by_key = {point_key(p.point): p for p in recording.points}
        self._now = 0.0
        self.calls = 0

    @property
    def baseline_ms(self) -> float:
        return self.recording.baseline_ms

    @property
    def shape_id(self) -> str:
        return self.recording.shape_id

    @property
    def shape_features(self) -> Mapping[str, float]:
        return self.recording.shape_features

    def clock(self) -> float:
        """Virtual seconds: the recorded evaluation time of everything evaluated so far."""
        return self._now

    def evaluate(self, source: str, config: Mapping[str, Any]) -> EvalOutcome:
        self.calls += 1
        rec = self._by_key.get(point_key(config))
        if rec is None:
            return EvalOutcome.failure("not in the recording")
        self._now += rec.eval_s
        return EvalOutcome(rec.ok, rec.median_ms, rec.ci_ms, rec.reason)


@dataclass(frozen=True)
class ReplayTrace:
    """What a strategy measured, in order, when replayed against a recording."""

    strategy: str
    seed: int
    values_ms: tuple[float, ...]
    keys: tuple[str, ...]
    elapsed_s: tuple[
        float, ...
    ]  # virtual time after each evaluation (recorded eval time + strategy overhead)

    def best_after(self, n: int) -> float:
        return min(self.values_ms[:n], default=math.inf)

    def evals_to_reach(self, target_ms: float) -> int | None:
        """Evaluations until a time <= target was measured (None: never)."""
        for i, v in enumerate(self.values_ms):
            if v <= target_ms:
                return i + 1
        return None

    def best_within(self, seconds: float) -> float:
        return min((v for v, t in zip(self.values_ms, self.elapsed_s) if t <= seconds), default=math.inf)


def replay(
    recording: Recording,
    strategy: str,
    *,
    budget_evals: int | None = None,
    budget_s: float | None = None,
    seed: int = 0,
    lite: bool = False,
    hw: HwInfo | None = None,
    prior: Sequence[TrainingRecord] = (),
    space: SearchSpace | None = None,
    stop_at_ms: float | None = None,
) -> ReplayTrace:
    """Run ``strategy`` against ``recording`` (ask one, tell one) until a budget or the space runs out
    (or, with ``stop_at_ms``, until a time at or below it was measured)."""
    hw = hw or hardware()
    space = space or recording.space(lite=lite, hw=hw)
    by_key = {point_key(p.point): p for p in recording.points}
    ctx = SearchContext(
        hw=hw, baseline_ms=recording.baseline_ms, shape_features=recording.shape_features, prior=prior
    )
    strat = make_strategy(strategy, space, seed, ctx)
    values: list[float] = []
    keys: list[str] = []
    times: list[float] = []
    now = 0.0
    while budget_evals is None or len(values) < budget_evals:
        if budget_s is not None and now >= budget_s:
            break
        t0 = time.perf_counter()
        asked = strat.ask(1)
        now += time.perf_counter() - t0
        if not asked:
            break
        rec = by_key[point_key(asked[0])]
        now += rec.eval_s
        t0 = time.perf_counter()
        strat.tell(asked[0], rec.score_ms)
        now += time.perf_counter() - t0
        values.append(rec.score_ms)
        keys.append(point_key(asked[0]))
        times.append(now)
        if stop_at_ms is not None and rec.score_ms <= stop_at_ms:
            break
    return ReplayTrace(strategy, seed, tuple(values), tuple(keys), tuple(times))
