"""Cheap test doubles for the search engine: toy templates with a known landscape and a fake evaluator.

The toy task has two templates (so template choice is part of the space) whose "time" is a smooth
function of the config with a unique optimum, plus configs that always fail: enough structure for
strategies and the cost model to show they learn, at no cost. Used by the unit tests and benchmarks.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.space import Template
from kernelarena.search.types import TEMPLATE_KEY, EvalOutcome

_MODE_COST = {"p": 0.0, "q": 0.35, "r": 0.9}


def _toy_a_ms(c: Mapping[str, Any]) -> float:
    lx, ly = math.log2(c["x"]), math.log2(c["y"])
    return (
        1.0
        + 0.2 * (lx - 3.0) ** 2
        + 0.15 * (ly - 1.0) ** 2
        + 0.1 * lx * (c["mode"] == "q")
        + _MODE_COST[c["mode"]]
    )


def _toy_b_ms(c: Mapping[str, Any]) -> float:
    return 1.3 + 0.1 * (math.log2(c["x"]) - 2.0) ** 2 + (0.0 if c["z"] else 0.2)


def _module(name: str, space: dict[str, list[Any]], constraints: Any, lite: Any) -> types.ModuleType:
    mod = types.ModuleType(f"kernelarena.search.testing.{name}")
    mod.TASK = "toy"  # type: ignore[attr-defined]
    mod.SPACE = space  # type: ignore[attr-defined]
    mod.SOURCE_TAG = f"{name}-v1"  # type: ignore[attr-defined]
    mod.constraints = constraints  # type: ignore[attr-defined]
    mod.lite_space = lite  # type: ignore[attr-defined]
    mod.render = lambda config: f"# toy solution {name}\nCONFIG = {dict(sorted(config.items()))!r}\n"  # type: ignore[attr-defined]
    mod.features = lambda config, hw: {"x_over_lanes": config["x"] / hw.simd_floats}  # type: ignore[attr-defined]
    return mod


def toy_templates() -> list[Template]:
    """Two templates of the task "toy": ``toy_a`` (about 66 valid points) and ``toy_b`` (12)."""
    a = _module(
        "toy_a",
        {"x": [1, 2, 4, 8, 16, 32], "y": [1, 2, 4, 8], "mode": ["p", "q", "r"]},
        lambda c: c["x"] * c["y"] <= 128,
        lambda hw: [{"x": x, "y": y, "mode": "p"} for x in (4, 8, 16) for y in (1, 2, 4)],
    )
    b = _module(
        "toy_b",
        {"x": [1, 2, 4, 8, 16, 32], "z": [0, 1]},
        lambda c: True,
        lambda hw: [{"x": x, "z": 1} for x in (2, 4, 8)],
    )
    return [Template.from_module(a, name="toy_a"), Template.from_module(b, name="toy_b")]


def toy_ms(point: Mapping[str, Any]) -> float:
    """The toy landscape: time in ms, ``inf`` for the configs that always fail."""
    if point[TEMPLATE_KEY] == "toy_a":
        if point["mode"] == "r" and point["x"] == 32:
            return math.inf
        return _toy_a_ms(point)
    return _toy_b_ms(point)


class ToyEvaluator:
    """Evaluator double: times from :func:`toy_ms` (times ``scale``), counts calls per config."""

    def __init__(self, baseline_ms: float = 4.0, shape_id: str = "toy-shape", scale: float = 1.0):
        self._baseline = baseline_ms
        self._shape = shape_id
        self.scale = scale
        self.calls: dict[str, int] = {}
        self.shape_features = {"flops": 1e6, "bytes": 4e6}

    @property
    def baseline_ms(self) -> float:
        return self._baseline

    @property
    def shape_id(self) -> str:
        return self._shape

    def evaluate(self, source: str, config: Mapping[str, Any]) -> EvalOutcome:
        from kernelarena.search.space import point_key

        k = point_key(config)
        self.calls[k] = self.calls.get(k, 0) + 1
        if "toy solution" not in source:
            return EvalOutcome.failure("source was not rendered from the toy template")
        ms = toy_ms(config)
        if not math.isfinite(ms):
            return EvalOutcome.failure("toy failure: this config always fails")
        ms *= self.scale
        return EvalOutcome(ok=True, median_ms=ms, ci_ms=(ms * 0.995, ms * 1.005))


def toy_hw() -> HwInfo:
    """A fixed machine description, so toy results do not depend on the test machine."""
    return HwInfo(48 << 10, 2 << 20, 32 << 20, 4, 256, "toy cpu", "toy-machine")
