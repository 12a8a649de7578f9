"""Search for the fastest verified kernel of a task on this machine (``karena tune``).

Templates (``search/templates``) turn configs into solution files; strategies (``search/strategies``)
propose configs through one ask/tell interface; a learned cost model (``search/cost_model``) ranks
proposals; :func:`tune` runs the loop against an injected evaluator and records every evaluation in
the ``tune_evals`` table (``search/store``); ``search/simulate`` replays recordings without kernels.

Imports are lazy: ``import kernelarena.search`` loads neither Optuna, XGBoost nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "tune": "kernelarena.search.loop",
    "pick_winner": "kernelarena.search.loop",
    "TuneRequest": "kernelarena.search.types",
    "TuneResult": "kernelarena.search.types",
    "TuneProgress": "kernelarena.search.types",
    "EvalOutcome": "kernelarena.search.types",
    "Evaluator": "kernelarena.search.types",
    "TuneStore": "kernelarena.search.store",
    "STRATEGIES": "kernelarena.search.strategies",
    "make_strategy": "kernelarena.search.strategies",
    "SearchSpace": "kernelarena.search.space",
    "Template": "kernelarena.search.space",
    "templates_for_task": "kernelarena.search.templates",
    "available_templates": "kernelarena.search.templates",
    "Recording": "kernelarena.search.simulate",
    "RecordedEvaluator": "kernelarena.search.simulate",
    "replay": "kernelarena.search.simulate",
    "recording_from_store": "kernelarena.search.simulate",
    "TuningSession": "kernelarena.session",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kernelarena.search' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
