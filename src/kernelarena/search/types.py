"""The narrow, frozen data types of the search engine and the evaluator it is given.

A *point* is one candidate in a search space: a template name plus that template's parameter values,
held in one flat dict whose ``"template"`` key names the template, e.g.
``{"template": "rmsnorm", "reduce": "16x2", "acc": "float"}``. Points are what strategies ask for, what the
evaluator is told and what the store keys on (through :func:`kernelarena.search.space.point_key`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from kernelarena.types import EvalOutcome as EvalOutcome  # the one outcome type, re-exported

Point = dict[str, Any]

TEMPLATE_KEY = "template"  # reserved key of a point: no template may have a parameter of this name


@runtime_checkable
class Evaluator(Protocol):
    """Verifies and times rendered candidates of one task on one shape (injected into :func:`tune`).

    ``baseline_ms`` is the reference's time on the same shape (speedup = baseline_ms / median_ms);
    ``shape_id`` names the shape/variant the times belong to (part of every store key). An evaluator
    may also offer ``shape_features: Mapping[str, float]`` (e.g. ``{"flops": ..., "bytes": ...}``),
    which the cost model uses when present, and ``rank(source) -> EvalOutcome``: an interleaved
    comparison with the baseline whose ``speedup``/``speedup_ci`` rank the top configurations and
    give the reported figure (``TuningSession.rank``).
    """

    @property
    def baseline_ms(self) -> float: ...

    @property
    def shape_id(self) -> str: ...

    def evaluate(self, source: str, config: Mapping[str, Any]) -> EvalOutcome: ...


@dataclass(frozen=True)
class TuneRequest:
    """What to tune and how long: one task, its templates, a strategy and a budget.

    ``task_path`` is the task file (its source hash keys the store; its stem names the templates'
    task unless ``task_name`` is given). Budgets: stop at whichever of ``budget_s`` (wall seconds)
    and ``budget_evals`` (new measurements in this run) comes first; with neither, run until the
    strategy has nothing left to propose. ``lite`` searches the hardware-chosen lite space only.
    ``out``: where to write the winning solution file.
    """

    task_path: Path
    task_name: str | None = None
    templates: tuple[str, ...] = ()
    strategy: str = "model"
    budget_s: float | None = None
    budget_evals: int | None = None
    lite: bool = False
    seed: int = 0
    out: Path | None = None
    tie_rel: float = 0.01  # relative margin under which two times count as a near-tie (see winner rule)
    rank_top: int = 3  # configs re-measured against the baseline, interleaved, for the final ranking

    @property
    def name(self) -> str:
        return self.task_name or Path(self.task_path).stem


@dataclass(frozen=True)
class TuneProgress:
    """Handed to the progress callback after every evaluation (measured or reused from the store)."""

    evaluations: int  # new measurements in this run so far
    reused: int  # stored records reused (never re-measured)
    elapsed_s: float
    point: Point
    outcome: EvalOutcome
    best_speedup: float | None
    best_config: Point | None


@dataclass(frozen=True)
class TuneResult:
    """The outcome of :func:`tune`; ``to_json()`` gives the fields of ``karena tune --json``."""

    task: str
    strategy: str
    lite: bool
    space_size: int
    baseline_ms: float
    best_speedup: float | None
    best_ms: float | None
    best_config: Point | None
    evaluations: int
    reused: int
    failures: int
    elapsed_s: float
    stop_reason: str
    shape_id: str
    machine_id: str
    out: str | None = None
    best_speedup_ci: tuple[float, float] | None = None  # set when the winner was ranked (interleaved)
    ranking: tuple[dict[str, Any], ...] = ()  # the final interleaved ranking of the top configs
    best_source: str | None = field(default=None, repr=False)
    history: tuple[dict[str, Any], ...] = field(default=(), repr=False)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``history`` as a list of dicts, no solution source)."""
        return {
            "task": self.task,
            "strategy": self.strategy,
            "lite": self.lite,
            "space_size": self.space_size,
            "baseline_ms": self.baseline_ms,
            "best_speedup": self.best_speedup,
            "best_ms": self.best_ms,
            "best_config": self.best_config,
            "evaluations": self.evaluations,
            "reused": self.reused,
            "failures": self.failures,
            "elapsed_s": self.elapsed_s,
            "stop_reason": self.stop_reason,
            "shape_id": self.shape_id,
            "machine_id": self.machine_id,
            "out": self.out,
            "best_speedup_ci": list(self.best_speedup_ci) if self.best_speedup_ci else None,
            "ranking": [dict(r) for r in self.ranking],
            "history": [dict(h) for h in self.history],
        }
