"""Baselines: exhaustive (every point in space order) and uniform random without replacement."""

from __future__ import annotations

from kernelarena.search.space import SearchSpace
from kernelarena.search.strategies.base import SearchContext, Strategy
from kernelarena.search.types import Point


class Exhaustive(Strategy):
    """Every point once, in the space's deterministic order (the reference for "the best")."""

    name = "exhaustive"

    def __init__(self, space: SearchSpace, seed: int = 0, context: SearchContext | None = None):
        super().__init__(space, seed, context)
        self._cursor = 0

    def _propose(self, n: int) -> list[Point]:
        out: list[Point] = []
        pts = self.space.points
        while self._cursor < len(pts) and len(out) < n:
            p = pts[self._cursor]
            self._cursor += 1
            if self._is_free(p):
                out.append(dict(p))
        return out


class RandomSearch(Strategy):
    """Uniform sampling without replacement (a seeded permutation of the space)."""

    name = "random"

    def __init__(self, space: SearchSpace, seed: int = 0, context: SearchContext | None = None):
        super().__init__(space, seed, context)
        self._order = list(range(len(space)))
        self.rng.shuffle(self._order)
        self._cursor = 0

    def _propose(self, n: int) -> list[Point]:
        out: list[Point] = []
        while self._cursor < len(self._order) and len(out) < n:
            p = self.space.points[self._order[self._cursor]]
            self._cursor += 1
            if self._is_free(p):
                out.append(dict(p))
        return out
