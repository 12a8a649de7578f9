"""The learned cost model: features, targets, training on synthetic data, ranking quality."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from kernelarena.search.cost_model import CostModel, featurize, holdout_correlation, rank_correlation, targets
from kernelarena.search.space import SearchSpace
from kernelarena.search.strategies import SearchContext, TrainingRecord, make_strategy
from kernelarena.search.testing import toy_hw, toy_ms, toy_templates

pytestmark = pytest.mark.unit


def test_featurize_describes_template_params_shape_and_machine() -> None:
    a, _ = toy_templates()
    f = featurize(
        {"template": "toy_a", "x": 8, "y": 2, "mode": "q"}, a, toy_hw(), {"flops": 1024.0, "bytes": 256.0}
    )
    assert f["tpl=toy_a"] == 1.0 and f["task=toy"] == 1.0
    assert f["p.x"] == 8.0 and f["lg.x"] == 3.0 and f["p.mode=q"] == 1.0
    assert f["f.x_over_lanes"] == 1.0  # the template's own feature: 8 / 8 lanes (AVX2)
    assert f["s.flops"] == 10.0 and f["s.log2_intensity"] == 2.0
    assert f["hw_simd_floats"] == 8.0


def test_targets_normalize_by_baseline_and_penalize_failures() -> None:
    recs = [
        TrainingRecord({}, 1.0, 4.0, "g1"),
        TrainingRecord({}, 2.0, 4.0, "g1"),
        TrainingRecord({}, math.inf, 4.0, "g1"),
        TrainingRecord({}, 10.0, 10.0, "g2"),
        TrainingRecord({}, math.inf, 10.0, "g3"),
    ]
    y = targets(recs)
    assert y[0] == pytest.approx(math.log(0.25)) and y[1] == pytest.approx(math.log(0.5))
    assert y[2] > y[1]  # a failure ranks below its group's worst success
    assert y[3] == pytest.approx(0.0)
    assert math.isfinite(y[4])


def test_model_learns_a_synthetic_landscape_and_ranks_held_out_points() -> None:
    rng = random.Random(0)
    rows, y = [], []
    for _ in range(400):
        a, b, c = rng.uniform(0, 8), rng.uniform(0, 8), rng.choice(["u", "v"])
        rows.append({"a": a, "b": b, f"c={c}": 1.0})
        y.append((a - 3) ** 2 + 0.5 * abs(b - 5) + (1.5 if c == "v" else 0.0))
    model = CostModel(seed=0).fit(rows[:300], y[:300])
    corr = rank_correlation(model.predict(rows[300:]), y[300:])
    assert corr["spearman"] > 0.9 and corr["kendall"] > 0.75
    # an unseen column at prediction time is ignored, a missing one is treated as missing
    pred = model.predict([{"a": 3.0, "b": 5.0, "zzz": 1.0}, {"a": 3.0}])
    assert np.isfinite(pred).all()


def test_rank_correlation_of_a_constant_model_is_poor() -> None:
    corr = rank_correlation([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0])
    assert corr["spearman"] == pytest.approx(-1.0) and corr["kendall"] == pytest.approx(-1.0)
    assert math.isnan(rank_correlation([1.0, 2.0], [1.0, 2.0])["spearman"])


def _toy_records(scale: float, group: str) -> list[TrainingRecord]:
    a, b = toy_templates()
    space = SearchSpace.full([a, b])
    hw = toy_hw()
    return [
        TrainingRecord(
            featurize(p, space.template_of(p), hw, {"flops": 1e6}), toy_ms(p) * scale, 4.0 * scale, group
        )
        for p in space.points
    ]


def test_holdout_correlation_on_toy_records_and_transfer_across_shapes() -> None:
    recs = _toy_records(1.0, "shape-1")
    rng = random.Random(1)
    rng.shuffle(recs)
    within = holdout_correlation(recs[:50], recs[50:])
    assert within["spearman"] > 0.8
    # another "shape" of the same task (all times x3, baseline x3): normalized targets transfer
    across = holdout_correlation(_toy_records(1.0, "shape-1"), _toy_records(3.0, "shape-2"))
    assert across["spearman"] > 0.9


def test_guided_strategy_with_a_prior_finds_the_best_at_once() -> None:
    """Records of another shape of the task (the store's prior) let the model rank from the start."""
    space = SearchSpace.full(toy_templates())
    best = min(toy_ms(p) for p in space.points)
    prior = _toy_records(2.0, "other-shape")
    ctx = SearchContext(hw=toy_hw(), baseline_ms=4.0, shape_features={"flops": 1e6}, prior=prior)
    with_prior = make_strategy("model", space, 0, ctx)
    found = None
    for i in range(10):
        (p,) = with_prior.ask(1)
        with_prior.tell(p, toy_ms(p))
        if toy_ms(p) <= best * 1.02:
            found = i + 1
            break
    assert found is not None and found <= 5, found


def test_epsilon_one_is_pure_exploration() -> None:
    from kernelarena.search.strategies.guided import ModelGuided

    space = SearchSpace.full(toy_templates())
    ctx = SearchContext(hw=toy_hw(), baseline_ms=4.0)
    greedy = ModelGuided(space, 0, ctx, epsilon=0.0, n_init=8)
    explore = ModelGuided(space, 0, ctx, epsilon=1.0, n_init=8)
    for s in (greedy, explore):
        for _ in range(20):
            (p,) = s.ask(1)
            s.tell(p, toy_ms(p))
    order = greedy.predicted_order()
    # the greedy strategy's next pick is the model's top-ranked unmeasured point
    (nxt,) = greedy.ask(1)
    from kernelarena.search.space import point_key

    assert point_key(nxt) == order[0]
    assert len(explore.observed) == 20
