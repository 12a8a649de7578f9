"""Optuna's samplers (TPE, CMA-ES) driven through its ask-and-tell API over a finite space.

Each template parameter becomes an Optuna distribution: ordered numeric values as an integer index
(so TPE and CMA-ES see their order), other values as a categorical; a space over several templates
adds a categorical ``template`` first (define-by-run, so parameters are conditional on it). Optuna
proposes; a proposal that violates the constraints is told ``inf`` (so the sampler learns the valid
region), one already measured is closed as FAILED (ignored by samplers), and after a run of useless
proposals a random unmeasured point is enqueued instead, so the strategy never stalls.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from typing import Any

from kernelarena.search.space import SearchSpace, config_of, point_key
from kernelarena.search.strategies.base import SearchContext, Strategy
from kernelarena.search.types import TEMPLATE_KEY, Point

log = logging.getLogger(__name__)

_MAX_USELESS = 6  # proposals without a new valid point before one random point is enqueued


def _is_numeric(values: tuple[Any, ...]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


class OptunaStrategy(Strategy):
    """Base for Optuna-backed strategies; subclasses choose the sampler."""

    name = "optuna"

    def __init__(self, space: SearchSpace, seed: int = 0, context: SearchContext | None = None):
        super().__init__(space, seed, context)
        import optuna  # lazy: optuna is an optional dependency ("search" extra)

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self.study = optuna.create_study(direction="minimize", sampler=self._make_sampler(seed))
        self._trials: dict[str, Any] = {}  # point key -> open trial

    def _make_sampler(self, seed: int) -> Any:
        raise NotImplementedError

    # -- mapping between points and Optuna parameters -------------------------------------------
    def _suggest(self, trial: Any) -> Point:
        names = self.space.template_names
        tpl = names[0] if len(names) == 1 else trial.suggest_categorical(TEMPLATE_KEY, list(names))
        point: Point = {TEMPLATE_KEY: tpl}
        for param, values in self.space.dims(tpl).items():
            pname = f"{tpl}.{param}"
            if len(values) == 1:
                point[param] = values[0]
            elif _is_numeric(values):
                point[param] = values[trial.suggest_int(pname, 0, len(values) - 1)]
            else:
                point[param] = trial.suggest_categorical(pname, list(values))
        return point

    def _params(self, point: Mapping[str, Any]) -> dict[str, Any]:
        tpl = str(point[TEMPLATE_KEY])
        params: dict[str, Any] = {}
        if len(self.space.template_names) > 1:
            params[TEMPLATE_KEY] = tpl
        for param, value in config_of(point).items():
            values = self.space.dims(tpl)[param]
            if len(values) == 1:
                continue
            params[f"{tpl}.{param}"] = values.index(value) if _is_numeric(values) else value
        return params

    def _ask_trial(self) -> tuple[Any, Point]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's experimental/independent-sampling notices
            trial = self.study.ask()
            return trial, self._suggest(trial)

    # -- Strategy hooks ---------------------------------------------------------------------------
    def _propose(self, n: int) -> list[Point]:
        states = self._optuna.trial.TrialState
        out: list[Point] = []
        useless = 0
        # near the end of a space almost every proposal is a repeat: give up on the sampler sooner
        free = len(self.space) - len(self.observed) - len(self.pending)
        limit = _MAX_USELESS if free > len(self.space) // 4 else 1
        while len(out) < n and not self.exhausted:
            if useless >= limit:
                pick = self._random_unseen(1)
                if not pick:
                    break
                self.study.enqueue_trial(self._params(pick[0]), skip_if_exists=False)
                useless = 0
            trial, point = self._ask_trial()
            k = point_key(point)
            if point not in self.space:
                self.study.tell(trial, math.inf)  # constraint violation: teach the sampler
                useless += 1
            elif k in self.observed or k in self.pending or k in self._trials:
                self.study.tell(trial, state=states.FAIL)  # duplicate: closed, ignored by samplers
                useless += 1
            else:
                self._trials[k] = trial
                self.pending.add(k)  # so that the next proposal in this batch differs
                out.append(point)
                useless = 0
        for p in out:
            self.pending.discard(point_key(p))  # the base class re-adds what it hands out
        return out

    def _on_tell(self, point: Point, value_ms: float) -> None:
        k = point_key(point)
        trial = self._trials.pop(k, None)
        if trial is None:  # warm start from stored records: replay the point as a fixed trial
            self.study.enqueue_trial(self._params(point), skip_if_exists=False)
            trial, suggested = self._ask_trial()
            if point_key(suggested) != k:
                log.debug("enqueued point %s came back as %s", k, point_key(suggested))
        self.study.tell(trial, math.log(value_ms) if math.isfinite(value_ms) else math.inf)


class TPEStrategy(OptunaStrategy):
    """Tree-structured Parzen estimator (multivariate, grouped for the conditional template choice)."""

    name = "tpe"

    def _make_sampler(self, seed: int) -> Any:
        import optuna

        # group=True (separate models per template's conditional subspace) only pays with several templates
        grouped = len(self.space.template_names) > 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.samplers.TPESampler(
                seed=seed,
                multivariate=True,
                group=grouped,
                n_startup_trials=8,
                warn_independent_sampling=False,
            )


class CmaEsStrategy(OptunaStrategy):
    """CMA-ES over the numeric (index-encoded) parameters; categorical ones are sampled at random.

    Needs the ``cmaes`` package. Over several templates the parameters differ per template, so CMA-ES
    sees no common numeric space and degrades to random sampling: use it on one template.
    """

    name = "cmaes"

    def _make_sampler(self, seed: int) -> Any:
        import optuna

        try:
            import cmaes  # noqa: F401
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise RuntimeError("the cmaes strategy needs the 'cmaes' package (pip install cmaes)") from exc
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return optuna.samplers.CmaEsSampler(
                seed=seed,
                n_startup_trials=4,
                warn_independent_sampling=False,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
            )
