"""Every built-in template renders solutions that compile and match the task's reference.

Each template is checked with two configs (its first lite config and a seeded random one from the
full space) on the task's two smallest variants, so odd sizes and tails are exercised; then one
short real tuning run goes end to end (render, compile, check, time, store, winner file).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from kernelarena.search.hwinfo import hardware
from kernelarena.search.local_eval import LocalEvaluator, load_task_module, variants_of
from kernelarena.search.loop import tune
from kernelarena.search.store import TuneStore
from kernelarena.search.templates import available_templates, load_template
from kernelarena.search.types import TuneRequest

pytestmark = pytest.mark.cpu

TASKS = Path(__file__).resolve().parents[2] / "src/kernelarena/tasks/suites/llm"


def _small_variants(task_path: Path) -> list[dict[str, Any]]:
    import torch

    def size(v: dict[str, Any]) -> int:
        mod = load_task_module(task_path, v)
        torch.manual_seed(0)
        return sum(x.numel() for x in mod.get_inputs() if isinstance(x, torch.Tensor))

    return sorted(variants_of(load_task_module(task_path)), key=size)[:2]


@pytest.mark.parametrize("name", available_templates())
def test_template_configs_compile_and_match_the_reference(name: str) -> None:
    t = load_template(name)
    task_path = TASKS / f"{t.task}.py"
    smallest, second = _small_variants(task_path)
    ev = LocalEvaluator(task_path, shape=smallest, check=[second], time_budget_s=0.005, min_reps=2)
    configs = [t.lite_configs(hardware())[0], random.Random(name).choice(t.configs())]
    for cfg in configs:
        out = ev.evaluate(t.render(cfg), t.point(cfg))
        assert out.ok, f"{name} {cfg}: {out.reason}"
        assert out.median_ms is not None and out.median_ms > 0


def test_a_broken_config_is_rejected_by_the_local_evaluator() -> None:
    """The evaluator the search is benchmarked with must catch a wrong kernel (here: eps ignored
    and the weight not applied), or the search would optimize garbage."""
    t = load_template("rmsnorm")
    task_path = TASKS / "rmsnorm.py"
    cfg = t.lite_configs(hardware())[0]
    src = t.render(cfg).replace("y[j] = (x[j] * inv) * w[j];", "y[j] = x[j] * inv;")
    assert src != t.render(cfg)
    ev = LocalEvaluator(
        task_path, shape={"rows": 5, "dim": 3}, check=[{"rows": 37, "dim": 1001}], time_budget_s=0.005
    )
    out = ev.evaluate(src, t.point(cfg))
    assert not out.ok and out.reason and "wrong result" in out.reason


def test_short_real_tuning_run_end_to_end(tmp_path: Path) -> None:
    task_path = TASKS / "rmsnorm.py"
    ev = LocalEvaluator(
        task_path, shape={"rows": 64, "dim": 1001}, check=[{"rows": 5, "dim": 3}], time_budget_s=0.01
    )
    out = tmp_path / "best_rmsnorm.py"
    db = tmp_path / "karena.db"
    req = TuneRequest(task_path=task_path, lite=True, strategy="random", budget_evals=3, out=out, seed=0)
    res = tune(req, ev, TuneStore(db))
    assert res.evaluations == 3 and res.failures == 0 and res.best_speedup and res.best_speedup > 0
    # the winner file is an ordinary solution: it loads and passes the same check again
    again = ev.evaluate(out.read_text(), res.best_config or {})
    assert again.ok, again.reason
    # a second run resumes from the store and measures 3 new configs
    res2 = tune(req, ev, TuneStore(db))
    assert res2.reused == 3 and res2.evaluations == 3
