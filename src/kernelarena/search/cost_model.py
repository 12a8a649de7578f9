"""A learned cost model: gradient-boosted trees that rank candidate configs before measuring them.

Features (:func:`featurize`) describe a point generically, so one model can learn across tasks,
shapes and machines: the template (one-hot), each parameter (value and log2 for numbers, one-hot for
categories; templates that share a parameter name share its column), the template's own derived
features (e.g. tile working set over L1 size), the shape (log2 flops and bytes, intensity) and the
hardware (log2 cache sizes, cores, SIMD width). The target is ``log(median_ms / baseline_ms)`` so
that records of different shapes and tasks are comparable; failures get a target worse than every
success of their group, so the model learns to avoid them too.

Judged by rank correlation (Spearman, Kendall) on held-out records: only the order matters, since the
model's job is to pick which few of many proposals get measured.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.space import Template, config_of
from kernelarena.search.strategies.base import TrainingRecord
from kernelarena.search.types import TEMPLATE_KEY

FAILURE_PENALTY = 1.0  # log-space margin of a failure over the worst success of its group


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def featurize(
    point: Mapping[str, Any],
    template: Template | None,
    hw: HwInfo,
    shape_features: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Generic numeric features of one point in its context (see the module docstring)."""
    f: dict[str, float] = {f"tpl={point[TEMPLATE_KEY]}": 1.0}
    if template is not None:
        f[f"task={template.task}"] = 1.0
    for k, v in config_of(point).items():
        if _is_number(v):
            f[f"p.{k}"] = float(v)
            if v > 0:
                f[f"lg.{k}"] = math.log2(float(v))
        else:
            f[f"p.{k}={v}"] = 1.0
    if template is not None:
        for k, v in template.features(point, hw).items():
            f[f"f.{k}"] = float(v)
    for k, v in (shape_features or {}).items():
        f[f"s.{k}"] = math.log2(float(v)) if v > 0 else 0.0
    sf = shape_features or {}
    if sf.get("flops", 0) > 0 and sf.get("bytes", 0) > 0:
        f["s.log2_intensity"] = math.log2(sf["flops"] / sf["bytes"])
    f.update(hw.features())
    return f


def targets(records: Sequence[TrainingRecord]) -> np.ndarray:
    """Normalized targets: log(time / baseline); failures just above their group's worst success."""
    y = np.empty(len(records))
    worst: dict[str, float] = defaultdict(lambda: -math.inf)
    for i, r in enumerate(records):
        if math.isfinite(r.median_ms) and r.median_ms > 0 and r.baseline_ms > 0:
            y[i] = math.log(r.median_ms / r.baseline_ms)
            worst[r.group] = max(worst[r.group], y[i])
        else:
            y[i] = math.nan
    for i, r in enumerate(records):
        if math.isnan(y[i]):
            w = worst[r.group]
            y[i] = (w if math.isfinite(w) else 0.0) + FAILURE_PENALTY
    return y


class CostModel:
    """XGBoost regressor over :func:`featurize` dicts; lower prediction = predicted faster."""

    def __init__(
        self, seed: int = 0, n_estimators: int = 80, max_depth: int = 5, learning_rate: float = 0.15
    ):
        self.seed = seed
        self.params = {
            "objective": "reg:squarederror",
            "max_depth": max_depth,
            "eta": learning_rate,
            "subsample": 0.9,
            "colsample_bytree": 0.9,
            "min_child_weight": 1.0,
            "tree_method": "hist",
            "seed": seed,
            "nthread": 1,  # deterministic and polite on a shared machine; training sets are small
            "verbosity": 0,
        }
        self.n_estimators = n_estimators
        self.columns: list[str] = []
        self._booster: Any = None

    @property
    def fitted(self) -> bool:
        return self._booster is not None

    def _matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        col = {c: j for j, c in enumerate(self.columns)}
        x = np.full((len(rows), len(self.columns)), np.nan, dtype=np.float32)
        for i, row in enumerate(rows):
            for k, v in row.items():
                j = col.get(k)
                if j is not None:
                    x[i, j] = v
        return x

    def fit(
        self,
        rows: Sequence[Mapping[str, float]],
        y: Sequence[float] | np.ndarray,
        weights: Sequence[float] | None = None,
    ) -> CostModel:
        """Train on feature dicts and targets (lower = faster); returns self."""
        import xgboost as xgb  # lazy: heavy import, optional dependency

        if len(rows) == 0:
            raise ValueError("no training rows")
        self.columns = sorted({k for r in rows for k in r})
        dm = xgb.DMatrix(self._matrix(rows), label=np.asarray(y, dtype=np.float32), missing=np.nan, nthread=1)
        if weights is not None:
            dm.set_weight(np.asarray(weights, dtype=np.float32))
        self._booster = xgb.train(self.params, dm, num_boost_round=self.n_estimators)
        return self

    def fit_records(
        self, records: Sequence[TrainingRecord], weights: Sequence[float] | None = None
    ) -> CostModel:
        return self.fit([r.features for r in records], targets(records), weights)

    def predict(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        if self._booster is None:
            raise RuntimeError("cost model is not trained")
        if len(rows) == 0:
            return np.empty(0)
        return np.asarray(self._booster.inplace_predict(self._matrix(rows), missing=np.nan), dtype=float)


def rank_correlation(
    predicted: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray
) -> dict[str, float]:
    """Spearman's rho and Kendall's tau between predictions and measured values (finite pairs only)."""
    from scipy import stats

    p = np.asarray(predicted, dtype=float)
    a = np.asarray(actual, dtype=float)
    keep = np.isfinite(p) & np.isfinite(a)
    if keep.sum() < 3:
        return {"spearman": math.nan, "kendall": math.nan, "n": float(keep.sum())}
    rho = stats.spearmanr(p[keep], a[keep]).statistic
    tau = stats.kendalltau(p[keep], a[keep]).statistic
    return {"spearman": float(rho), "kendall": float(tau), "n": float(keep.sum())}


def holdout_correlation(
    train: Sequence[TrainingRecord], test: Sequence[TrainingRecord], seed: int = 0
) -> dict[str, float]:
    """Train on ``train``, rank ``test``: correlation of predicted vs measured (successes only)."""
    model = CostModel(seed=seed).fit_records(train)
    ok = [r for r in test if math.isfinite(r.median_ms)]
    pred = model.predict([r.features for r in ok])
    actual = [math.log(r.median_ms / r.baseline_ms) for r in ok]
    return rank_correlation(pred, actual)
