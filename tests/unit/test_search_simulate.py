"""Simulation mode: strategies and the loop replayed against recorded measurements, no kernels run."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from kernelarena.search.loop import tune
from kernelarena.search.simulate import (
    RecordedEvaluator,
    RecordedPoint,
    Recording,
    recording_from_store,
    replay,
)
from kernelarena.search.space import SearchSpace, point_key
from kernelarena.search.store import TuneStore
from kernelarena.search.templates import load_template
from kernelarena.search.testing import toy_hw
from kernelarena.search.types import TuneRequest

pytestmark = pytest.mark.unit

TASK_FILE = Path(__file__).resolve().parents[2] / "src/kernelarena/tasks/suites/llm/rmsnorm.py"


def _synthetic_ms(p: dict) -> float:
    if p["reduce"] == "1x4" and p["acc"] == "double":
        return math.inf  # pretend these never compiled
    simd = p["reduce"] == "simd"  # the simd loop scores like 16 lanes x 2 chains, chains pay a little more
    vec, unroll = (16, 2) if simd else (int(v) for v in p["reduce"].split("x"))
    return (
        1.0
        + (0.0 if simd else 0.04)
        + 0.08 * abs(math.log2(vec) - 4)
        + (0.3 if unroll == 1 else 0.0)
        + (0.25 if p["acc"] == "double" else 0.0)
        + (0.05 if p["prefetch"] else 0.0)
        + 0.01 * math.log2(max(p["rows_block"], 1))  # 0: one contiguous share per thread
        + (0.02 if p["schedule"] == "dynamic" else 0.0)
    )


def _recorded(p: dict) -> RecordedPoint:
    ms = _synthetic_ms(p)
    if math.isfinite(ms):
        return RecordedPoint(p, True, ms, None, None, eval_s=0.5)
    return RecordedPoint(p, False, None, None, "gcc: error", eval_s=0.5)


@pytest.fixture(scope="module")
def recording() -> Recording:
    space = SearchSpace.full([load_template("rmsnorm")])
    pts = tuple(_recorded(p) for p in space.points)
    return Recording("rmsnorm", "rows=512,dim=2048", 5.0, "m", {"flops": 4e6, "bytes": 8e6}, pts)


def test_json_round_trip(recording: Recording, tmp_path: Path) -> None:
    path = tmp_path / "rec.json"
    recording.save(path)
    back = Recording.load(path)
    assert back == recording
    assert back.best_ms == pytest.approx(1.0)


def test_replay_is_deterministic_and_exhaustive_finds_the_best(recording: Recording) -> None:
    hw = toy_hw()
    a = replay(recording, "evolution", budget_evals=40, seed=3, hw=hw)
    b = replay(recording, "evolution", budget_evals=40, seed=3, hw=hw)
    assert a.keys == b.keys and len(a.keys) == 40 and len(set(a.keys)) == 40
    ex = replay(recording, "exhaustive", hw=hw)
    assert (
        len(ex.values_ms) == len(recording.points) and ex.best_after(len(ex.values_ms)) == recording.best_ms
    )
    assert ex.elapsed_s[-1] >= 0.5 * len(recording.points)  # the recorded evaluation time is replayed
    assert ex.best_within(10.0) == min(ex.values_ms[:20])


@pytest.mark.parametrize(
    "strategy",
    ["random", "tpe", "evolution", "model"] + (["cmaes"] if importlib.util.find_spec("cmaes") else []),
)
def test_every_strategy_replays_with_failures_in_the_recording(recording: Recording, strategy: str) -> None:
    t = replay(recording, strategy, budget_evals=50, seed=0, hw=toy_hw())
    assert len(t.values_ms) == 50 and len(set(t.keys)) == 50
    assert t.best_after(50) <= 1.2 * recording.best_ms


def test_model_needs_fewer_evaluations_than_random_on_the_recording(recording: Recording) -> None:
    target = recording.best_ms * 1.02
    hw = toy_hw()
    model = [
        replay(recording, "model", seed=s, hw=hw, stop_at_ms=target).evals_to_reach(target) for s in range(3)
    ]
    rand = [
        replay(recording, "random", seed=s, hw=hw, stop_at_ms=target).evals_to_reach(target) for s in range(3)
    ]
    assert all(m is not None for m in model) and all(r is not None for r in rand)
    assert sum(model) < 0.5 * sum(rand), (model, rand)  # type: ignore[arg-type]


def test_lite_replay_uses_the_lite_points(recording: Recording) -> None:
    hw = toy_hw()
    t = replay(recording, "exhaustive", lite=True, hw=hw)
    lite = {point_key(load_template("rmsnorm").point(c)) for c in load_template("rmsnorm").lite_configs(hw)}
    assert set(t.keys) == lite


def test_tune_loop_against_a_recording_with_a_virtual_clock(recording: Recording) -> None:
    ev = RecordedEvaluator(recording)
    req = TuneRequest(task_path=TASK_FILE, strategy="random", budget_s=30.0, seed=1)
    res = tune(req, ev, None, None, clock=ev.clock, hw=toy_hw())
    assert res.stop_reason == "budget_s" and res.evaluations == 60  # 60 x 0.5 recorded seconds
    assert ev.calls == 60
    assert res.best_speedup == pytest.approx(5.0 / res.best_ms)


def test_recording_from_store_after_a_tune(recording: Recording, tmp_path: Path) -> None:
    store = TuneStore(tmp_path / "k.db")
    ev = RecordedEvaluator(recording)
    req = TuneRequest(task_path=TASK_FILE, strategy="exhaustive", budget_evals=30)
    tune(req, ev, store, None, hw=toy_hw())
    back = recording_from_store(store, "rmsnorm", recording.shape_id, "toy-machine")
    assert len(back.points) == 30 and back.baseline_ms == 5.0
    assert back.shape_features["flops"] == pytest.approx(4e6)
    by_key = {point_key(p.point): p for p in recording.points}
    for p in back.points:
        assert p.median_ms == by_key[point_key(p.point)].median_ms
    with pytest.raises(ValueError):
        recording_from_store(store, "rmsnorm", "other-shape", "toy-machine")
