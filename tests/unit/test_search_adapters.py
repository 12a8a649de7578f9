"""Adapting the harness's TuningSession (``.evaluate(source)``, ``.baseline_ms``) to the Evaluator."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from kernelarena.search.adapters import SessionEvaluator, to_outcome
from kernelarena.search.loop import tune
from kernelarena.search.testing import toy_hw, toy_ms, toy_templates
from kernelarena.search.types import EvalOutcome, Evaluator, TuneRequest

pytestmark = pytest.mark.unit


@dataclass(frozen=True)
class _SessionOutcome:  # shaped like the lead's outcome object
    ok: bool
    median_ms: float | None
    ci_ms: tuple[float, float] | None
    reason: str | None


class _FakeSession:
    baseline_ms = 3.0
    shape_id = "rows=8,dim=16"

    def __init__(self) -> None:
        self.sources: list[str] = []

    def evaluate(self, source: str) -> _SessionOutcome:
        self.sources.append(source)
        cfg = eval(source.split("CONFIG = ", 1)[1])  # the toy template bakes its config in
        name = "toy_a" if "toy_a" in source else "toy_b"
        ms = toy_ms({"template": name, **cfg})
        if ms == float("inf"):
            return _SessionOutcome(False, None, None, "wrong result on rows=5")
        return _SessionOutcome(True, ms, (ms * 0.99, ms * 1.01), None)


def test_to_outcome_accepts_objects_and_dicts() -> None:
    assert to_outcome(EvalOutcome(True, 1.0)) == EvalOutcome(True, 1.0)
    o = to_outcome({"verdict": "fail", "reasons": ["a", "b"]})
    assert not o.ok and o.reason == "a; b"
    o = to_outcome(_SessionOutcome(True, 2.0, (1.9, 2.1), None))
    assert o == EvalOutcome(True, 2.0, (1.9, 2.1), None)


def test_session_evaluator_drives_the_loop(tmp_path: Path) -> None:
    session = _FakeSession()
    ev = SessionEvaluator(session)
    assert isinstance(ev, Evaluator) and ev.shape_id == "rows=8,dim=16" and ev.baseline_ms == 3.0
    task = tmp_path / "toy.py"
    task.write_text("#")
    req = TuneRequest(task_path=task, task_name="toy", strategy="exhaustive")
    res = tune(req, ev, None, None, hw=toy_hw(), templates=toy_templates())
    assert res.evaluations == len(session.sources) and res.failures > 0
    assert res.best_speedup == pytest.approx(3.0 / res.best_ms)
    assert SessionEvaluator(object(), shape_id="s").shape_id == "s"
