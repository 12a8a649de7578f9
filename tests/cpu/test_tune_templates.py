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
import torch

from kernelarena.search.hwinfo import hardware
from kernelarena.search.loop import tune
from kernelarena.search.store import TuneStore
from kernelarena.search.templates import available_templates, load_template
from kernelarena.search.types import TuneRequest
from kernelarena.session import TuningSession
from kernelarena.tasks.loader import exec_task_module, footprint_bytes, load_task
from kernelarena.types import TimingOptions

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(300)]

TASKS = Path(__file__).resolve().parents[2] / "src/kernelarena/tasks/suites/llm"
TINY = TimingOptions(budget_s=0.02, min_rounds=2, max_rounds=2, input_sets=2)


def _case_bytes(task_path: Path, overrides: dict[str, Any]) -> int:
    """Inputs + parameters of a variant: the loader's meta-device footprint, else built for real
    (grouped_expert_ffn's inputs use ops the meta device lacks)."""
    known = footprint_bytes(task_path, overrides)[0]
    if known is not None:
        return known
    module = exec_task_module(task_path, overrides)
    model = module.Model(*module.get_init_inputs())
    tensors = [*model.parameters(), *model.buffers(), *module.get_inputs()]
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def _small_variants(task_path: Path) -> list[dict[str, Any]]:
    variants = [v.overrides for v in load_task(task_path, max_bytes=None).variants]
    # by the whole case (a decode variant has tiny inputs and all of a layer's parameters)
    return sorted(variants, key=lambda v: _case_bytes(task_path, v))[:2]


@pytest.mark.parametrize("name", available_templates())
def test_template_configs_compile_and_match_the_reference(name: str) -> None:
    t = load_template(name)
    task_path = TASKS / f"{t.task}.py"
    smallest, second = _small_variants(task_path)
    configs = [t.lite_configs(hardware())[0], random.Random(name).choice(t.configs())]
    with TuningSession(task_path, shape=smallest, check=[second], timing_options=TINY) as ev:
        for cfg in configs:
            out = ev.evaluate(t.render(cfg), t.point(cfg))
            assert out.ok, f"{name} {cfg}: {out.reason}"
            assert out.median_ms is not None and out.median_ms > 0


def test_a_broken_config_is_rejected_by_the_search_evaluator() -> None:
    """The evaluator the search runs on must catch a wrong kernel (here: the weight not applied),
    or the search would optimize garbage."""
    t = load_template("rmsnorm")
    task_path = TASKS / "rmsnorm.py"
    cfg = t.lite_configs(hardware())[0]
    src = t.render(cfg).replace("yr[c] = (xr[c] * inv) * w[c];", "yr[c] = xr[c] * inv;")
    assert src != t.render(cfg)
    with TuningSession(
        task_path, shape={"rows": 5, "dim": 3}, check=[{"rows": 37, "dim": 1001}], timing_options=TINY
    ) as ev:
        out = ev.evaluate(src, t.point(cfg))
    assert not out.ok and out.reason and "outside tolerance" in out.reason


def test_short_real_tuning_run_end_to_end(tmp_path: Path) -> None:
    task_path = TASKS / "rmsnorm.py"
    out = tmp_path / "best_rmsnorm.py"
    db = tmp_path / "karena.db"
    req = TuneRequest(
        task_path=task_path, lite=True, strategy="random", budget_evals=3, out=out, seed=0, rank_top=2
    )
    rank = TimingOptions(budget_s=0.1, min_rounds=2, max_rounds=4, input_sets=2)
    with TuningSession(
        task_path, shape={"rows": 64, "dim": 1001}, check=[{"rows": 5, "dim": 3}], timing_options=TINY,
        rank_options=rank,
    ) as ev:  # fmt: skip
        res = tune(req, ev, TuneStore(db))
        assert res.evaluations == 3 and res.failures == 0 and res.best_speedup and res.best_speedup > 0
        # the reported figure is the interleaved ranking's, with its CI
        assert len(res.ranking) == 2 and res.best_speedup_ci is not None
        assert res.best_speedup_ci[0] <= res.best_speedup <= res.best_speedup_ci[1]
        # the winner file is an ordinary solution: it loads and passes the same check again
        again = ev.evaluate(out.read_text(), res.best_config or {})
        assert again.ok, again.reason
        # a second run resumes from the store and measures 3 new configs
        res2 = tune(req, ev, TuneStore(db))
    assert res2.reused == 3 and res2.evaluations == 3
