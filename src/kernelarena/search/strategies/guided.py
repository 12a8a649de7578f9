"""Cost-model-guided search (after TVM MetaSchedule): rank every unmeasured point with the learned
model and measure only the predicted top-k, with epsilon-greedy exploration.

The model (XGBoost, tens of ms to fit here) is retrained whenever this run's measurements have
grown by ~12%, on them plus ``context.prior`` (records of other tasks, shapes and machines from
the store, weighted so that together they never outweigh this run's own data). Until it has
``n_init`` measurements it samples at random, from the space's hints (the hardware-chosen lite
configs) first. Spaces here are enumerable, so the
"proposal pool" is every unmeasured point; an evolutionary proposal stage would only matter for
spaces too large to score exhaustively.
"""

from __future__ import annotations

import math

import numpy as np

from kernelarena.search.cost_model import CostModel, featurize
from kernelarena.search.space import SearchSpace, point_key
from kernelarena.search.strategies.base import SearchContext, Strategy, TrainingRecord
from kernelarena.search.types import Point

_GROUP = "__current__"


class ModelGuided(Strategy):
    """Measure the model's top-k of all unmeasured points; explore at random with prob. epsilon."""

    name = "model"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        context: SearchContext | None = None,
        *,
        epsilon: float = 0.1,
        n_init: int = 8,
        prior_weight: float = 0.3,
    ):
        super().__init__(space, seed, context)
        self.epsilon = epsilon
        self.n_init = n_init if not self.context.prior else max(2, n_init // 2)
        self.prior_weight = prior_weight
        self.model = CostModel(seed=seed)
        self._features = [
            featurize(p, space.template_of(p), self.context.hw, self.context.shape_features)
            for p in space.points
        ]
        self._trained_on = 0

    def features_of(self, point: Point) -> dict[str, float]:
        return self._features[self.space.index(point)]

    def _training_set(self) -> tuple[list[TrainingRecord], list[float]]:
        base = self.context.baseline_ms
        own = [
            TrainingRecord(self.features_of(self.space.by_key(k)), float(v), base, _GROUP)
            for k, v in self.observed.items()
        ]
        prior = list(self.context.prior)
        # the prior (other tasks/shapes/machines) may shape the first rankings but must not swamp
        # this run's own measurements: its total weight never exceeds theirs (at least 4)
        w = min(self.prior_weight, max(len(own), 4) / len(prior)) if prior else 0.0
        return prior + own, [w] * len(prior) + [1.0] * len(own)

    def _retrain(self, force: bool = False) -> None:
        # retrain after every ~12% growth of the data (each fit costs tens of ms; a few new points
        # barely move the ranking), always on the first call and when asked to
        new = len(self.observed) - self._trained_on
        if new <= 0 or (not force and self._trained_on > 0 and new < max(1, self._trained_on // 8)):
            return
        records, weights = self._training_set()
        self.model.fit_records(records, weights)
        self._trained_on = len(self.observed)

    def _ready(self) -> bool:
        if self.context.prior:  # a model trained on other tasks/shapes can rank from the start
            return len(self.observed) >= self.n_init
        return sum(1 for v in self.observed.values() if math.isfinite(v)) >= self.n_init

    def _propose(self, n: int) -> list[Point]:
        if not self._ready():
            return self._hinted_unseen(n)
        self._retrain()
        free_idx = [i for i, p in enumerate(self.space.points) if self._is_free(p)]
        if not free_idx:
            return []
        pred = self.model.predict([self._features[i] for i in free_idx])
        # ties broken by space order (stable sort) so the choice is deterministic for a seed
        ranked = [free_idx[j] for j in np.argsort(pred, kind="stable")]
        out: list[Point] = []
        taken: set[int] = set()
        cursor = 0
        for _ in range(min(n, len(free_idx))):
            if self.rng.random() < self.epsilon:
                choices = [i for i in free_idx if i not in taken]
                i = self.rng.choice(choices)
            else:
                while ranked[cursor] in taken:
                    cursor += 1
                i = ranked[cursor]
            taken.add(i)
            out.append(dict(self.space.points[i]))
        return out

    def predicted_order(self) -> list[str]:
        """Keys of all unmeasured points, best predicted first (for inspection and tests)."""
        self._retrain(force=True)
        free = [p for p in self.space.points if self._is_free(p)]
        pred = self.model.predict([self.features_of(p) for p in free])
        return [point_key(free[j]) for j in np.argsort(pred, kind="stable")]
