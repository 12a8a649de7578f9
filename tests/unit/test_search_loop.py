"""The tuning loop with a fake evaluator and a real SQLite file: budgets, resume, winners, failures."""

from __future__ import annotations

import json
import math
import sqlite3
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kernelarena.search.loop import pick_winner, tune
from kernelarena.search.space import SearchSpace, point_key
from kernelarena.search.store import TuneStore
from kernelarena.search.testing import ToyEvaluator, toy_hw, toy_ms, toy_templates
from kernelarena.search.types import EvalOutcome, TuneProgress, TuneRequest

pytestmark = pytest.mark.unit


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    p = tmp_path / "toy.py"
    p.write_text("# toy task\n")
    return p


def _tune(task_file: Path, store: TuneStore | None, ev: Any, **kw: Any) -> Any:
    progress = kw.pop("progress", None)
    clock = kw.pop("clock", None)
    extra = {"clock": clock} if clock else {}
    req = TuneRequest(task_path=task_file, task_name="toy", **kw)
    return tune(req, ev, store, progress, hw=toy_hw(), templates=toy_templates(), **extra)


def test_budget_in_evaluations_and_the_json_result(task_file: Path, tmp_path: Path) -> None:
    ev = ToyEvaluator()
    res = _tune(task_file, TuneStore(tmp_path / "k.db"), ev, strategy="random", budget_evals=12, seed=1)
    assert res.evaluations == 12 and res.stop_reason == "budget_evals" and res.reused == 0
    assert sum(ev.calls.values()) == 12
    doc = json.loads(json.dumps(res.to_json()))
    assert {"best_speedup", "best_config", "evaluations", "history"} <= set(doc)
    assert len(doc["history"]) == 12
    assert doc["best_speedup"] == pytest.approx(4.0 / res.best_ms)
    best_hist = min(h["median_ms"] for h in doc["history"] if h["ok"])
    assert res.best_ms <= best_hist * 1.01


def test_resume_continues_and_never_remeasures(task_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "karena.db"
    ev = ToyEvaluator()
    first = _tune(task_file, TuneStore(db), ev, strategy="evolution", budget_evals=15, seed=0)
    second = _tune(task_file, TuneStore(db), ev, strategy="evolution", budget_evals=15, seed=0)
    assert first.evaluations == 15 and second.evaluations == 15 and second.reused == 15
    assert max(ev.calls.values()) == 1, "a stored config was measured again"
    third = _tune(task_file, TuneStore(db), ev, strategy="exhaustive")
    space_size = len(SearchSpace.full(toy_templates()))
    assert third.reused == 30 and third.evaluations == space_size - 30 and third.stop_reason == "exhausted"
    assert max(ev.calls.values()) == 1
    assert third.best_ms == pytest.approx(min(toy_ms(p) for p in SearchSpace.full(toy_templates()).points))


def test_records_are_keyed_by_shape_template_source_and_task_source(task_file: Path, tmp_path: Path) -> None:
    db = tmp_path / "karena.db"
    _tune(task_file, TuneStore(db), ToyEvaluator(), strategy="random", budget_evals=5)
    other_shape = ToyEvaluator(shape_id="another-shape")
    res = _tune(task_file, TuneStore(db), other_shape, strategy="random", budget_evals=5)
    assert res.reused == 0
    # a changed template source is a different kernel: its old records are not reused
    changed = [replace(t, source_hash="0" * 16) for t in toy_templates()]
    req = TuneRequest(task_path=task_file, task_name="toy", strategy="random", budget_evals=5)
    res = tune(req, ToyEvaluator(), TuneStore(db), None, hw=toy_hw(), templates=changed)
    assert res.reused == 0
    # an edited task file too
    task_file.write_text("# toy task, edited\n")
    assert _tune(task_file, TuneStore(db), ToyEvaluator(), strategy="random", budget_evals=1).reused == 0
    rows = (
        sqlite3.connect(db).execute("SELECT COUNT(*), COUNT(DISTINCT task_hash) FROM tune_evals").fetchone()
    )
    assert rows == (16, 2)


def test_the_table_is_shared_politely(tmp_path: Path, task_file: Path) -> None:
    db = tmp_path / "karena.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE verdicts (id INTEGER PRIMARY KEY, v TEXT)")
    con.execute("INSERT INTO verdicts (v) VALUES ('pass')")
    con.commit()
    store = TuneStore(db)
    _tune(task_file, store, ToyEvaluator(), strategy="random", budget_evals=3)
    assert con.execute("SELECT v FROM verdicts").fetchall() == [("pass",)]
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    TuneStore(db)  # opening again is harmless (CREATE TABLE IF NOT EXISTS)
    assert store.count() == 3


class _FlakyEvaluator(ToyEvaluator):
    """Fails every config with y == 4 (a "compile error") and raises for y == 8."""

    def evaluate(self, source: str, config: Mapping[str, Any]) -> EvalOutcome:
        if config.get("y") == 4:
            super().evaluate(source, config)
            return EvalOutcome.failure("gcc: error: bad tile")
        if config.get("y") == 8:
            raise RuntimeError("worker died")
        return super().evaluate(source, config)


def test_failures_are_stored_with_reasons_and_search_goes_on(task_file: Path, tmp_path: Path) -> None:
    store = TuneStore(tmp_path / "k.db")
    res = _tune(task_file, store, _FlakyEvaluator(), strategy="exhaustive")
    assert res.stop_reason == "exhausted" and res.failures > 10
    reasons = {r.reason for r in store.records() if not r.ok}
    assert "gcc: error: bad tile" in reasons
    assert any(r and r.startswith("evaluator error: RuntimeError: worker died") for r in reasons)
    assert any(r and r.startswith("toy failure") for r in reasons)
    assert res.best_config is not None and res.best_config.get("y") not in (4, 8)
    failed = [h for h in res.history if not h["ok"]]
    assert all(h["speedup"] is None and h["reason"] for h in failed)


def test_budget_in_seconds_uses_the_injected_clock(task_file: Path) -> None:
    now = [0.0]

    class SlowEvaluator(ToyEvaluator):
        def evaluate(self, source: str, config: Mapping[str, Any]) -> EvalOutcome:
            now[0] += 1.5
            return super().evaluate(source, config)

    res = _tune(task_file, None, SlowEvaluator(), strategy="random", budget_s=10.0, clock=lambda: now[0])
    assert res.stop_reason == "budget_s" and res.evaluations == 7  # 7 x 1.5 s crosses 10 s
    assert res.elapsed_s == pytest.approx(10.5)


def test_progress_reports_best_so_far(task_file: Path) -> None:
    seen: list[TuneProgress] = []
    _tune(task_file, None, ToyEvaluator(), strategy="random", budget_evals=20, progress=seen.append, seed=4)
    assert len(seen) == 20
    bests = [p.best_speedup or 0.0 for p in seen]
    assert bests == sorted(bests), "best-so-far must never decrease"
    assert seen[-1].evaluations == 20


def test_winner_is_written_to_out(task_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "best.py"
    res = _tune(task_file, None, ToyEvaluator(), strategy="exhaustive", out=out)
    assert res.out == str(out) and out.read_text() == res.best_source
    assert (
        f"CONFIG = {dict(sorted({k: v for k, v in res.best_config.items() if k != 'template'}.items()))!r}"
        in out.read_text()
    )


def test_pick_winner_breaks_near_ties_by_the_smallest_key() -> None:
    measured = {
        '{"b":1}': (1.000, (0.99, 1.01)),
        '{"a":1}': (1.008, (1.0, 1.016)),  # within the CI of the fastest: a near-tie
        '{"a":0}': (1.3, (1.29, 1.31)),
        '{"0":0}': (math.inf, None),
    }
    assert pick_winner(measured) == '{"a":1}'
    assert pick_winner(measured, tie_rel=0.0) == '{"a":1}'  # the CI alone makes it a tie
    measured['{"a":1}'] = (1.05, (1.04, 1.06))
    assert pick_winner(measured) == '{"b":1}'
    # a very noisy measurement does not tie a config 20% slower
    measured['{"a":1}'] = (1.2, (0.5, 3.0))
    assert pick_winner(measured) == '{"b":1}'
    assert pick_winner({"x": (math.inf, None)}) is None


def test_deterministic_winner_across_strategies_and_orders(task_file: Path) -> None:
    """Two near-equal optima (the noise decides which measures faster): the same one always wins."""

    class TwinOptima(ToyEvaluator):
        def __init__(self, jitter: float):
            super().__init__()
            self.jitter = jitter

        def evaluate(self, source: str, config: Mapping[str, Any]) -> EvalOutcome:
            out = super().evaluate(source, config)
            if config.get("template") == "toy_b" and config.get("x") == 4 and config.get("z") == 1:
                ms = 0.5 + self.jitter
                return EvalOutcome(True, ms, (ms - 0.003, ms + 0.003))
            if config == {"template": "toy_a", "x": 8, "y": 2, "mode": "p"}:
                return EvalOutcome(True, 0.5, (0.497, 0.503))
            return out

    winners = set()
    for strategy in ("exhaustive", "random", "evolution"):
        for seed, jitter in ((0, -0.002), (1, 0.002), (2, -0.001)):
            res = _tune(task_file, None, TwinOptima(jitter), strategy=strategy, seed=seed)
            winners.add(point_key(res.best_config))
    # toy_b measured faster in two of the three runs, but it is a near-tie: the smaller key wins
    assert winners == {point_key({"template": "toy_a", "x": 8, "y": 2, "mode": "p"})}


def test_lite_flag_searches_the_lite_space_only(task_file: Path) -> None:
    ev = ToyEvaluator()
    res = _tune(task_file, None, ev, strategy="exhaustive", lite=True)
    assert res.space_size == 12 and res.evaluations == 12 and res.lite
    lite = SearchSpace.lite(toy_templates(), toy_hw())
    assert set(ev.calls) == {point_key(p) for p in lite.points}


def test_unknown_template_or_task_is_an_error(task_file: Path) -> None:
    with pytest.raises(ValueError, match="no template"):
        _tune(task_file, None, ToyEvaluator(), templates=("nope",))
    with pytest.raises(ValueError, match="no search templates"):
        tune(TuneRequest(task_path=task_file, task_name="no_such_task"), ToyEvaluator())


def test_stored_records_of_other_shapes_become_the_cost_model_prior(task_file: Path, tmp_path: Path) -> None:
    from kernelarena.search.loop import task_source_hash, training_prior

    store = TuneStore(tmp_path / "k.db")
    _tune(task_file, store, ToyEvaluator(shape_id="shape-a"), strategy="random", budget_evals=10)
    _tune(task_file, store, ToyEvaluator(shape_id="shape-b"), strategy="random", budget_evals=4)
    own = f"{task_source_hash(task_file)}|shape-b|toy-machine"
    prior = training_prior(store, own)
    assert len(prior) == 10 and all(r.group.endswith("shape-a|toy-machine") for r in prior)
    assert all(r.features and r.baseline_ms == 4.0 for r in prior)
    # a model run on shape b trains on them from its first proposals
    res = _tune(task_file, store, ToyEvaluator(shape_id="shape-b"), strategy="model", budget_evals=3)
    assert res.reused == 4 and res.evaluations == 3


class _RankingToy(ToyEvaluator):
    """Screening says config A is fastest; the interleaved ranking says otherwise (drift)."""

    def __init__(self) -> None:
        super().__init__()
        self.ranked: list[str] = []

    def rank(self, source: str) -> EvalOutcome:
        self.ranked.append(source)
        # the reverse of the screening order among the ranked: the last-ranked is the real winner
        n = len(self.ranked)
        s = 2.0 + n
        return EvalOutcome(True, 4.0 / s, (3.9 / s, 4.1 / s), None, s, (s * 0.98, s * 1.02), 4.0)


def test_the_winner_and_its_figure_come_from_the_interleaved_ranking(task_file: Path) -> None:
    # Regression (issue 11): the reported speedup was the screening time over a baseline timed at
    # another moment, so two runs reported 2.50x and 3.59x for the same config.
    ev = _RankingToy()
    res = _tune(task_file, None, ev, strategy="exhaustive", rank_top=3)
    assert len(ev.ranked) == 3 and len(res.ranking) == 3
    screened = sorted(res.ranking, key=lambda r: r["screened_ms"])
    assert [r["key"] for r in res.ranking] == [r["key"] for r in screened]  # the top 3 by screening
    assert point_key(res.best_config) == res.ranking[-1]["key"]  # ranked fastest wins, not screened
    assert res.best_speedup == pytest.approx(5.0) and res.best_speedup_ci == pytest.approx((4.9, 5.1))
    assert res.to_json()["best_speedup_ci"] == pytest.approx([4.9, 5.1])
    none = _tune(task_file, None, _RankingToy(), strategy="exhaustive", rank_top=0)
    assert none.ranking == () and none.best_speedup_ci is None
