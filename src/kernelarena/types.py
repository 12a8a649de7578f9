"""Frozen dataclasses passed between the layers: tasks, options, verdicts, measurements.

They are plain values (no behaviour beyond small derived properties and ``to_json``) so that they
can be stored, compared and sent between processes.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Policy = Literal["strict", "lenient"]
CacheState = Literal["cold", "warm"]
TimingMode = Literal["offline", "server"]


def to_jsonable(value: Any) -> Any:
    """Dataclasses, tuples, paths and nested containers to JSON-ready values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN is not JSON
        return None
    return value


@dataclass(frozen=True)
class Variant:
    """One shape of a task: overrides of the task module's globals. Index 0 is the headline."""

    index: int
    overrides: dict[str, Any]
    derived: bool = False  # made by the harness, not listed in the task's VARIANTS

    @property
    def label(self) -> str:
        return ",".join(f"{k}={v}" for k, v in self.overrides.items()) or "default"


@dataclass(frozen=True)
class Task:
    """A loaded task file's metadata. The module itself is re-executed wherever it is needed."""

    name: str
    path: Path
    source_hash: str
    category: str
    source: str
    variants: tuple[Variant, ...]
    atol: float | None = None
    rtol: float | None = None
    float64_reference: bool = True
    perturb_inputs: tuple[int, ...] | None = None  # None: every input (integers: value copies)
    randomize_params: bool = True
    in_place: bool = False  # outputs may alias inputs (a declared in-place op)
    has_flops: bool = False
    has_bytes_moved: bool = False
    has_int_ops: bool = False  # int_ops(*inputs): integer dot-product work the fp32 roofline omits
    has_memory_budget: bool = False  # MEMORY_BUDGET (bytes) or memory_budget(*inputs): enforced by check
    notes: tuple[str, ...] = ()  # what the loader did (derived variants, scaling)

    @property
    def headline(self) -> Variant:
        return self.variants[0]


@dataclass(frozen=True)
class Solution:
    path: Path
    source_hash: str
    backend: str  # "c", "numba", "triton", "cuda", "torch"


AUTO_MAX_BYTES = -1  # CheckOptions.max_bytes: follow the machine's available memory


@dataclass(frozen=True)
class CheckOptions:
    """How hard to verify. ``quick`` trims seeds and distributions for search loops."""

    policy: Policy = "strict"
    seeds: int = 2
    # see kernelarena.verify.distributions; "signed" flips signs (KernelBench's rand inputs are >= 0)
    distributions: tuple[str, ...] = ("as-given", "signed", "scaled", "outliers")
    repeat_determinism: bool = True
    timeout_s: float | None = None  # per worker request; None: settings.worker_timeout_s()
    memory_bytes: int | None = None  # None: settings.worker_memory_bytes()
    threads: int | None = None
    # inputs larger than this are scaled down (stated in notes); AUTO_MAX_BYTES: a share of the
    # machine's available memory (kernelarena.sandbox.memory.default_max_bytes); None: never scaled
    max_bytes: int | None = -1
    device: str = "cpu"
    secret: int | None = None  # seed material; None draws a fresh secret per run

    @classmethod
    def quick(cls) -> CheckOptions:
        # signed rather than scaled: it widens magnitudes too (x0.5-4), and without it identity
        # passes ReLU on KernelBench's non-negative torch.rand inputs
        return cls(seeds=1, distributions=("as-given", "signed"), repeat_determinism=False)


@dataclass(frozen=True)
class TimingOptions:
    cache: CacheState = "cold"
    mode: TimingMode = "offline"
    budget_s: float = 3.0  # per side, excluding warm-up
    min_rounds: int = 6
    max_rounds: int = 40
    threads: int | None = None
    input_sets: int = 3
    max_ci_rel_width: float = 0.10  # wider than this: the run is extended, then flagged unstable
    seed: int = 0


@dataclass(frozen=True)
class CaseResult:
    variant: str
    case: str  # "seed#1/scaled": secret seeds are never shown
    ok: bool
    reason: str | None = None
    max_abs_err: float | None = None
    max_rel_err: float | None = None
    tolerance: str | None = None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reasons: tuple[str, ...]
    flags: tuple[str, ...]
    cases: tuple[CaseResult, ...]
    checked: tuple[str, ...]  # what was verified, in words
    not_checked: tuple[str, ...]  # what could not be verified here, in words
    elapsed_s: float
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        return "pass" if self.passed else "fail"


@dataclass(frozen=True)
class Measurement:
    """Per-call times of one side of a comparison, in milliseconds."""

    median_ms: float
    iqr_ms: float
    ci_ms: tuple[float, float]
    calls: int
    rounds: int
    cache: str
    mode: str
    threads: int
    samples_ms: tuple[float, ...] = field(default=(), repr=False)


@dataclass(frozen=True)
class CallMetrics:
    """Per-call figures beside the time; how each was measured is in ``methods``, what could not
    be measured and why in ``unavailable`` (see :mod:`kernelarena.timing.metrics`)."""

    peak_rss_added_bytes: int | None = None
    peak_device_bytes: int | None = None
    torch_allocated_bytes: int | None = None
    output_bytes: int | None = None
    small_variant: str | None = None
    small_call_ms: float | None = None
    small_overhead_ms: float | None = None
    overhead_vs_compute: float | None = None
    energy_j_per_call: float | None = None
    energy_source: str | None = None
    methods: tuple[str, ...] = ()
    unavailable: tuple[str, ...] = ()  # "metric: reason"
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> CallMetrics | None:
        if d is None:
            return None
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(
            **{
                **known,
                "methods": tuple(d.get("methods", ())),
                "unavailable": tuple(d.get("unavailable", ())),
            }
        )


@dataclass(frozen=True)
class BenchResult:
    verdict: Verdict
    baseline_kind: str
    candidate: Measurement | None = None
    baseline: Measurement | None = None
    speedup: float | None = None
    speedup_ci: tuple[float, float] | None = None
    unstable: bool = False
    percent_of_roofline: float | None = None
    flags: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()  # timing-stage rejections (tampering, implausible speed)
    flops: float | None = (
        None  # the headline variant's work (task's flops()/bytes_moved()), for roofline charts
    )
    bytes_moved: float | None = None
    metrics: CallMetrics | None = None  # peak memory, allocations, overhead, energy per call
    code_path: str | None = None  # what the candidate ran on here, e.g. "c/avx2" (Backend.code_path)

    @property
    def passed(self) -> bool:
        return self.verdict.passed and not self.reasons


@dataclass(frozen=True)
class EvalOutcome:
    """One screening or ranking evaluation of a candidate (the search's unit of data).

    ``ok=False`` carries a ``reason`` (compile error, rejection, crash, timeout) and scores ``inf``.
    ``median_ms``/``ci_ms``: the candidate's time and the CI of its median. ``speedup``/``speedup_ci``
    are set only by an interleaved comparison with the baseline (``TuningSession.rank``), where
    machine drift cancels; ``baseline_ms`` is then the baseline's median in that comparison.
    """

    ok: bool
    median_ms: float | None = None
    ci_ms: tuple[float, float] | None = None
    reason: str | None = None
    speedup: float | None = None
    speedup_ci: tuple[float, float] | None = None
    baseline_ms: float | None = None

    @property
    def score_ms(self) -> float:
        """The value search minimizes: the median time, or ``inf`` for a failure."""
        if not self.ok or self.median_ms is None or not math.isfinite(self.median_ms):
            return math.inf
        return float(self.median_ms)

    @staticmethod
    def failure(reason: str) -> EvalOutcome:
        return EvalOutcome(ok=False, reason=reason)
