"""Search strategies behind one ask/tell interface, created by name through a lazy registry.

========== ============================================================================
name       what it does
========== ============================================================================
exhaustive every valid point, in space order (the reference best)
random     uniform without replacement
tpe        Optuna's TPE sampler (ask-and-tell), conditional on the template choice
cmaes      Optuna's CMA-ES sampler over index-encoded numeric parameters (needs ``cmaes``)
evolution  genetic algorithm: tournament, crossover, mutation (also over the template)
model      XGBoost cost model ranks all unmeasured points; top-k measured, epsilon-greedy
========== ============================================================================
"""

from __future__ import annotations

import importlib

from kernelarena.search.space import SearchSpace
from kernelarena.search.strategies.base import SearchContext, Strategy, TrainingRecord

_REGISTRY: dict[str, tuple[str, str]] = {
    "exhaustive": ("kernelarena.search.strategies.simple", "Exhaustive"),
    "random": ("kernelarena.search.strategies.simple", "RandomSearch"),
    "tpe": ("kernelarena.search.strategies.optuna_samplers", "TPEStrategy"),
    "cmaes": ("kernelarena.search.strategies.optuna_samplers", "CmaEsStrategy"),
    "evolution": ("kernelarena.search.strategies.evolution", "Evolution"),
    "model": ("kernelarena.search.strategies.guided", "ModelGuided"),
}

STRATEGIES: tuple[str, ...] = tuple(_REGISTRY)


def make_strategy(
    name: str, space: SearchSpace, seed: int = 0, context: SearchContext | None = None
) -> Strategy:
    """Instantiate a strategy by name (imports its module, and so Optuna/XGBoost, only when used)."""
    try:
        module, cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}") from None
    strategy: Strategy = getattr(importlib.import_module(module), cls)(space, seed, context)
    return strategy


__all__ = ["STRATEGIES", "SearchContext", "Strategy", "TrainingRecord", "make_strategy"]
