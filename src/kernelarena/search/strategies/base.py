"""The ask/tell interface every search strategy implements, and its bookkeeping.

``ask(n)`` returns up to ``n`` points of the space that were neither told nor are pending (asked and
not yet told); an empty list means the strategy has nothing left. ``tell(point, value_ms)`` reports
a time in ms, ``inf`` for a failure; any point of the space may be told, asked or not (that is how
stored records from an earlier run warm-start a strategy).
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from kernelarena.search.hwinfo import HwInfo, hardware
from kernelarena.search.space import SearchSpace, point_key
from kernelarena.search.types import Point


@dataclass(frozen=True)
class TrainingRecord:
    """One past measurement as the cost model sees it: features, time and baseline of its group."""

    features: Mapping[str, float]
    median_ms: float  # inf for failures
    baseline_ms: float
    group: str  # records compare only within a group (task, shape, machine)


@dataclass(frozen=True)
class SearchContext:
    """What a strategy may know beyond the space: the machine, the shape and past records."""

    hw: HwInfo = field(default_factory=hardware)
    baseline_ms: float = 1.0
    shape_features: Mapping[str, float] = field(default_factory=dict)
    prior: Sequence[TrainingRecord] = ()  # records of other tasks/shapes/machines (cost-model transfer)


class Strategy(ABC):
    """Base class: keeps what was told and what is pending, and guarantees no repeats."""

    name: ClassVar[str] = "base"

    def __init__(self, space: SearchSpace, seed: int = 0, context: SearchContext | None = None):
        self.space = space
        self.seed = seed
        self.context = context or SearchContext()
        self.rng = random.Random(seed)
        self.observed: dict[str, float] = {}
        self.pending: set[str] = set()

    # -- interface ------------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Point]:
        out: list[Point] = []
        for p in self._propose(n):
            k = point_key(p)
            if k in self.observed or k in self.pending or p not in self.space:
                continue  # a proposal bug must not cost a measurement
            self.pending.add(k)
            out.append(dict(p))
            if len(out) == n:
                break
        return out

    def tell(self, point: Mapping[str, Any], value_ms: float) -> None:
        k = point_key(point)
        if k in self.observed:
            return
        value = float(value_ms) if math.isfinite(value_ms) and value_ms > 0 else math.inf
        self.pending.discard(k)
        self.observed[k] = value
        self._on_tell(dict(point), value)

    @property
    def exhausted(self) -> bool:
        return len(self.observed) + len(self.pending) >= len(self.space)

    # -- for subclasses -------------------------------------------------------------------------
    @abstractmethod
    def _propose(self, n: int) -> list[Point]:
        """Up to ``n`` new points (the base class filters anything seen or pending)."""

    def _on_tell(self, point: Point, value_ms: float) -> None:  # noqa: B027 - optional hook
        """Learn from one observation (default: nothing)."""

    def _is_free(self, point: Mapping[str, Any]) -> bool:
        k = point_key(point)
        return k not in self.observed and k not in self.pending

    def _unseen(self) -> list[Point]:
        return [p for p in self.space.points if self._is_free(p)]

    def _random_unseen(self, n: int) -> list[Point]:
        free = self._unseen()
        return self.rng.sample(free, min(n, len(free)))

    def _hinted_unseen(self, n: int) -> list[Point]:
        """Random unmeasured points, drawn from the space's hints (lite configs) while any are left."""
        hints = [p for p in self.space.hints if self._is_free(p)]
        out = self.rng.sample(hints, min(n, len(hints)))
        if len(out) < n:
            taken = {point_key(p) for p in out}
            out += [p for p in self._random_unseen(n + len(out)) if point_key(p) not in taken][: n - len(out)]
        return out

    def best(self) -> tuple[Point, float] | None:
        """The best observation so far (value, then key: deterministic)."""
        finite = [(v, k) for k, v in self.observed.items() if math.isfinite(v)]
        if not finite:
            return None
        v, k = min(finite)
        return self.space.by_key(k), v
