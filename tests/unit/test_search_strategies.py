"""Every strategy behind the ask/tell interface: no repeats, failures as inf, warm starts, quality."""

from __future__ import annotations

import importlib.util
import math
import statistics

import pytest

from kernelarena.search.space import SearchSpace, point_key
from kernelarena.search.strategies import STRATEGIES, SearchContext, make_strategy
from kernelarena.search.testing import toy_hw, toy_ms, toy_templates

pytestmark = pytest.mark.unit

# CMA-ES needs the optional `cmaes` package (not yet in pyproject's "search" extra)
HAS_CMAES = importlib.util.find_spec("cmaes") is not None
ALL = [s for s in STRATEGIES if s != "cmaes" or HAS_CMAES]


def _space() -> SearchSpace:
    return SearchSpace.full(toy_templates())


def _ctx() -> SearchContext:
    return SearchContext(hw=toy_hw(), baseline_ms=4.0, shape_features={"flops": 1e6, "bytes": 4e6})


def _run(name: str, seed: int, budget: int | None = None, batch: int = 1, stop_at: float = -1.0) -> list[str]:
    space = _space()
    strat = make_strategy(name, space, seed, _ctx())
    order: list[str] = []
    while (budget is None or len(order) < budget) and not (
        order and toy_ms(space.by_key(order[-1])) <= stop_at
    ):
        asked = strat.ask(batch)
        if not asked:
            break
        assert len({point_key(p) for p in asked}) == len(asked), "one batch holds each point once"
        for p in asked:
            assert p in space
            order.append(point_key(p))
            strat.tell(p, toy_ms(p))
    return order


@pytest.mark.parametrize("name", ALL)
def test_covers_the_space_without_repeats(name: str) -> None:
    order = _run(name, seed=3)
    assert len(order) == len(set(order)), "a point was proposed twice"
    assert len(order) == len(_space()), "the strategy stopped before the space was exhausted"


@pytest.mark.parametrize("name", ALL)
def test_batches_and_pending_points_are_not_reproposed(name: str) -> None:
    space = _space()
    strat = make_strategy(name, space, 0, _ctx())
    first = strat.ask(4)
    second = strat.ask(4)  # nothing told yet: the first batch is pending
    keys = [point_key(p) for p in first + second]
    assert len(first) == len(second) == 4 and len(set(keys)) == 8


@pytest.mark.parametrize("name", ALL)
def test_failures_score_inf_and_search_goes_on(name: str) -> None:
    space = _space()
    strat = make_strategy(name, space, 1, _ctx())
    told = 0
    fails = 0
    while told < 40:
        (p,) = strat.ask(1)
        value = toy_ms(p)
        # besides the toy's own failures, every third point "crashes"
        if told % 3 == 0:
            value = math.inf
        fails += not math.isfinite(value)
        strat.tell(p, value)
        told += 1
    assert fails >= 13
    best = strat.best()
    assert best is not None and math.isfinite(best[1])


@pytest.mark.parametrize("name", ALL)
def test_warm_start_points_are_never_proposed(name: str) -> None:
    space = _space()
    strat = make_strategy(name, space, 2, _ctx())
    stored = list(space.points[::3])
    for p in stored:  # as the loop does when it resumes from the store
        strat.tell(p, toy_ms(p))
    proposed = set()
    while asked := strat.ask(1):
        proposed.add(point_key(asked[0]))
        strat.tell(asked[0], toy_ms(asked[0]))
    assert not proposed & {point_key(p) for p in stored}
    assert len(proposed) == len(space) - len(stored)


@pytest.mark.parametrize("name", ALL)
def test_same_seed_same_sequence(name: str) -> None:
    assert _run(name, seed=5, budget=25) == _run(name, seed=5, budget=25)


def test_exhaustive_follows_space_order() -> None:
    assert _run("exhaustive", 0) == [point_key(p) for p in _space().points]


@pytest.mark.parametrize("name", ["tpe", "evolution", "model"])
def test_guided_strategies_beat_random_on_the_toy_landscape(name: str) -> None:
    """Evaluations to come within 5% of the optimum, median over seeds: clearly fewer than random."""
    space = _space()
    best = 1.05 * min(toy_ms(p) for p in space.points)

    def evals_to_best(strategy: str, seed: int) -> int:
        order = _run(strategy, seed, stop_at=best)
        values = [toy_ms(space.by_key(k)) for k in order]
        return next(i + 1 for i, v in enumerate(values) if v <= best)

    seeds = range(6)
    guided = statistics.median(evals_to_best(name, s) for s in seeds)
    rand = statistics.median(evals_to_best("random", s) for s in seeds)
    assert guided < 0.8 * rand, f"{name}: {guided} evaluations vs random {rand}"


def test_unknown_strategy_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        make_strategy("annealing", _space())
