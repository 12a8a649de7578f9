"""Adapters from other evaluators (the harness's ``TuningSession``) to the search's Evaluator."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from kernelarena.search.types import EvalOutcome


def to_outcome(raw: Any) -> EvalOutcome:
    """Convert any outcome-like object (``ok``/``median_ms``/``ci_ms``/``reason`` attributes or keys)."""
    if isinstance(raw, EvalOutcome):
        return raw

    def get(name: str, default: Any = None) -> Any:
        if isinstance(raw, Mapping):
            return raw.get(name, default)
        return getattr(raw, name, default)

    ok = get("ok")
    if ok is None:
        ok = get("passed", get("verdict") == "pass")
    reasons = get("reasons")
    reason = get("reason") or ("; ".join(map(str, reasons)) if reasons else None)
    ci = get("ci_ms")
    med = get("median_ms")
    return EvalOutcome(
        ok=bool(ok),
        median_ms=float(med) if med is not None else None,
        ci_ms=(float(ci[0]), float(ci[1])) if ci else None,
        reason=None if ok else (reason or "rejected"),
    )


class SessionEvaluator:
    """Wrap an object with ``.evaluate(source)`` and ``.baseline_ms`` (e.g. ``kernelarena.api.TuningSession``).

    ``shape_id`` defaults to the session's own ``shape_id`` attribute, else a hash of its ``repr``;
    pass it explicitly when the session does not name its shape. ``shape_features`` (flops, bytes) is
    taken from the session when it offers one.
    """

    def __init__(self, session: Any, shape_id: str | None = None):
        self.session = session
        sid = shape_id or getattr(session, "shape_id", None)
        self._shape_id = (
            str(sid) if sid else "session-" + hashlib.sha256(repr(session).encode()).hexdigest()[:12]
        )

    @property
    def baseline_ms(self) -> float:
        return float(self.session.baseline_ms)

    @property
    def shape_id(self) -> str:
        return self._shape_id

    @property
    def shape_features(self) -> Mapping[str, float]:
        feats = getattr(self.session, "shape_features", None)
        return dict(feats) if feats else {}

    def evaluate(self, source: str, config: Mapping[str, Any]) -> EvalOutcome:
        return to_outcome(self.session.evaluate(source))
