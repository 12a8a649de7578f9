"""A steady-state genetic algorithm over points: tournament selection, crossover and mutation.

Crossover and mutation also act on the template choice: a child may take its template from either
parent (keeping the other parent's values for parameters the two templates share), and mutation
sometimes moves a point to another template. Ordered numeric parameters mostly mutate to a
neighbouring value (tile 32 -> 64), which is how performance landscapes are usually smooth.
"""

from __future__ import annotations

import math
from typing import Any

from kernelarena.search.space import SearchSpace, point_key
from kernelarena.search.strategies.base import SearchContext, Strategy
from kernelarena.search.types import TEMPLATE_KEY, Point


def _is_numeric(values: tuple[Any, ...]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


class Evolution(Strategy):
    """Elitist steady-state GA seeded with random points (the space's hints, i.e. lite configs, first)."""

    name = "evolution"

    def __init__(
        self,
        space: SearchSpace,
        seed: int = 0,
        context: SearchContext | None = None,
        *,
        population: int = 12,
        tournament: int = 3,
        p_crossover: float = 0.7,
        p_template_switch: float = 0.15,
    ):
        super().__init__(space, seed, context)
        self.population = population
        self.tournament = tournament
        self.p_crossover = p_crossover
        self.p_template_switch = p_template_switch if len(space.template_names) > 1 else 0.0

    def _elite(self) -> list[Point]:
        finite = sorted((v, k) for k, v in self.observed.items() if math.isfinite(v))
        return [self.space.by_key(k) for _, k in finite[: self.population]]

    def _select(self, elite: list[Point]) -> Point:
        # elite is sorted best-first, so the smallest drawn index wins the tournament
        return elite[min(self.rng.randrange(len(elite)) for _ in range(self.tournament))]

    def _random_value(self, tpl: str, param: str) -> Any:
        return self.rng.choice(self.space.dims(tpl)[param])

    def _crossover(self, a: Point, b: Point) -> Point:
        if self.rng.random() < 0.5:
            a, b = b, a
        tpl = str(a[TEMPLATE_KEY])
        child: Point = {TEMPLATE_KEY: tpl}
        dims = self.space.dims(tpl)
        for param, values in dims.items():
            take_b = param in b and b[param] in values and self.rng.random() < 0.5
            child[param] = b[param] if take_b else a[param]
        return child

    def _switch_template(self, p: Point) -> Point:
        others = [t for t in self.space.template_names if t != p[TEMPLATE_KEY]]
        tpl = self.rng.choice(others)
        child: Point = {TEMPLATE_KEY: tpl}
        for param, values in self.space.dims(tpl).items():
            child[param] = p[param] if param in p and p[param] in values else self.rng.choice(values)
        return child

    def _mutate(self, p: Point) -> Point:
        if self.p_template_switch and self.rng.random() < self.p_template_switch:
            return self._switch_template(p)
        tpl = str(p[TEMPLATE_KEY])
        dims = self.space.dims(tpl)
        free = [k for k, v in dims.items() if len(v) > 1]
        child = dict(p)
        if not free:
            return child
        rate = 1.0 / len(free)
        changed = False
        for param in free:
            if self.rng.random() >= rate:
                continue
            child[param] = self._mutate_value(dims[param], child[param])
            changed = True
        if not changed:  # always move: a copy of a parent is never new
            param = self.rng.choice(free)
            child[param] = self._mutate_value(dims[param], child[param])
        return child

    def _mutate_value(self, values: tuple[Any, ...], current: Any) -> Any:
        if _is_numeric(values) and current in values and self.rng.random() < 0.7:
            i = values.index(current) + self.rng.choice((-2, -1, 1, 2))
            return values[min(max(i, 0), len(values) - 1)]
        return self.rng.choice([v for v in values if v != current] or list(values))

    def _propose(self, n: int) -> list[Point]:
        elite = self._elite()
        if len(elite) < min(self.population, 4):
            return self._hinted_unseen(n)
        out: list[Point] = []
        taken: set[str] = set()
        for _ in range(n):
            child = None
            for _try in range(64):
                a = self._select(elite)
                cand = self._crossover(a, self._select(elite)) if self.rng.random() < self.p_crossover else a
                cand = self._mutate(cand)
                k = point_key(cand)
                if cand in self.space and self._is_free(cand) and k not in taken:
                    child = cand
                    break
            if child is None:  # the neighbourhood is used up: a random immigrant
                rest = [p for p in self._random_unseen(n + len(taken)) if point_key(p) not in taken]
                if not rest:
                    break
                child = rest[0]
            taken.add(point_key(child))
            out.append(child)
        return out
