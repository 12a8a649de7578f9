"""The typed client of a sandboxed worker: one request and one reply dataclass per op.

Every message to a worker is built here (``Request.wire``) and every reply is read here
(``Reply.from_wire``); call sites in ``verify/``, ``timing/``, ``pipeline.py``, ``api.py`` and
``session.py`` pass and receive dataclasses, never string-keyed dicts. The wire format stays the
protocol's (``sandbox.protocol``: dicts with tensors): the worker side (``kernelarena.worker_entry``
and the op modules it assembles) reads the dict this module writes.

Layering: this module sits just above ``sandbox/`` and below ``verify/`` and ``timing/``. It names
the worker's program (``ENTRY``) without importing it: the entry module imports the op modules of
``verify/`` and ``timing/``, which import this one.

Replies are data from a process that runs untrusted code: a missing field reads as its default,
and every reply carries ``error``/``kind`` (failure as data: ``kind`` is ``solution``, ``memory`` or
``exception``).

Example::

    with WorkerClient("candidate", threads=1) as cand:
        reply = cand.load(Load(path="solution.py"))
        if reply.error:
            ...
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from kernelarena.sandbox import process

# the module a worker runs (its op registry): named here, imported only inside the worker
ENTRY = "kernelarena.worker_entry"


# --- requests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    op: ClassVar[str]

    def wire(self) -> dict[str, Any]:
        """The message as the worker reads it (the protocol encodes tensors, tuples, dicts)."""
        out: dict[str, Any] = {"op": self.op}
        for f in dataclasses.fields(self):
            out[f.name] = getattr(self, f.name)
        return out


@dataclass(frozen=True)
class Load(Request):
    """Import the solution (candidate) or the task's ``Model`` on ``overrides`` (reference)."""

    op: ClassVar[str] = "load"
    path: str
    device: str = "cpu"
    overrides: dict[str, Any] | None = None


@dataclass(frozen=True)
class MakeCase(Request):
    """Build one verification case in the reference worker (see ``verify.worker_cases``)."""

    op: ClassVar[str] = "make_case"
    task_path: str
    overrides: dict[str, Any]
    seed: int
    distribution: str
    perturb: list[int] | None = None
    randomize_params: bool = True
    float64: bool = True
    in_place: bool = False  # the reference then returns its inputs after the call
    param_seed: int | None = None  # weights drawn from this seed instead of ``seed`` (shared weights)
    resample: list[int] | None = None  # lint: these inputs drawn again, from ``resample_seed``
    resample_seed: int | None = None

    def wire(self) -> dict[str, Any]:
        out = super().wire()
        for key in ("param_seed", "resample", "resample_seed"):  # absent: the worker's default
            if out[key] is None:
                del out[key]
        return out


@dataclass(frozen=True)
class RunCase(Request):
    """Run one case in the candidate worker, once per fill byte, under every guard."""

    op: ClassVar[str] = "run_case"
    init_inputs: list[Any]
    state_dict: dict[str, Any]
    inputs: list[Any]
    fills: list[int]
    in_place: bool = False
    trace: bool = True  # every verified call: a cheat cannot wait for an untraced one


@dataclass(frozen=True)
class SetupTiming(Request):
    """Build the timed model with the reference weights, keep the input sets, warm up."""

    op: ClassVar[str] = "setup_timing"
    init_inputs: list[Any]
    state_dict: dict[str, Any]
    input_sets: list[list[Any]]
    threads: int
    flush_bytes: int = 0
    compile_mode: str | None = None
    warmup_s: float = 0.3


@dataclass(frozen=True)
class TimeBatch(Request):
    """Time ``n_calls`` calls; keep the inputs and outputs of the calls listed in ``sample``."""

    op: ClassVar[str] = "time_batch"
    n_calls: int
    offset: int = 0
    sample: list[int] = field(default_factory=list)
    cache: str = "cold"
    gap_ms: float = 0.0
    gap_seed: int = 0
    nudge: bool = False
    perturb: list[int] | None = None
    use_graph: bool = False


@dataclass(frozen=True)
class ReferenceFor(Request):
    """Reference outputs (float64 and native) for given weights and inputs (reference worker)."""

    op: ClassVar[str] = "reference_for"
    task_path: str
    overrides: dict[str, Any]
    init_inputs: list[Any]
    state_dict: dict[str, Any]
    inputs: list[Any]
    float64: bool = True


@dataclass(frozen=True)
class CallMetricsRequest(Request):
    """``prepare`` (collect, trim the heap) or ``call`` (one counted call of the timed model)."""

    op: ClassVar[str] = "call_metrics"
    phase: str


@dataclass(frozen=True)
class CompileCheck(Request):
    """Compile a Triton solution's kernels for a GPU architecture (no GPU needed)."""

    op: ClassVar[str] = "compile_check"
    path: str
    arch: int = 90


@dataclass(frozen=True)
class Ping(Request):
    op: ClassVar[str] = "ping"


# --- replies -------------------------------------------------------------------------------------

R = TypeVar("R", bound="Reply")


@dataclass
class Reply:
    """What every reply carries: ``error`` (None on success), its ``kind`` and a traceback tail."""

    error: str | None = None
    kind: str | None = None
    traceback: str | None = None
    # fields whose wire form is read by a function (lists of dicts into lists of dataclasses)
    _nested: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    @classmethod
    def from_wire(cls: type[R], message: dict[str, Any]) -> R:
        values = _known(cls, message)
        for name, read in cls._nested.items():
            if name in values:
                values[name] = read(values[name])
        return cls(**values)


def _known(cls: type[Any], message: dict[str, Any]) -> dict[str, Any]:
    """The fields of ``message`` that ``cls`` has (a worker adding a key breaks nothing)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in message.items() if k in names}


def _list_of(cls: type[Any]) -> Callable[[Any], list[Any]]:
    return lambda items: [cls(**_known(cls, item)) for item in items or []]


@dataclass
class LoadReply(Reply):
    pass


@dataclass
class CaseReply(Reply):
    """One case from the reference worker: weights, inputs, reference outputs, work figures.

    ``canaries`` and ``input_bytes`` are filled in by the parent (a cached case is judged once)."""

    init_inputs: list[Any] = field(default_factory=list)
    state_dict: dict[str, Any] = field(default_factory=dict)
    inputs: list[Any] = field(default_factory=list)
    native: Any = None
    reference: Any = None
    reference_dtype: str = "native"
    reference_note: str | None = None
    distribution_note: str | None = None  # sign flips left out where the reference turned non-finite
    inputs_after: list[Any] | None = None
    flops: float | None = None
    bytes_moved: float | None = None
    memory_budget: float | None = None
    flops_error: str | None = None
    bytes_moved_error: str | None = None
    memory_budget_error: str | None = None
    canaries: list[str] | None = None
    input_bytes: int | None = None

    @property
    def expected(self) -> Any:
        """The outputs to compare against: float64 where the reference has them, else native."""
        return self.reference if self.reference is not None else self.native


@dataclass
class GuardedRun:
    """One guarded call of a ``run_case``: the outputs at return and what the guards found."""

    outputs: Any = None
    fill: int = -1
    findings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ops: dict[str, int] = field(default_factory=dict)
    kernels: dict[str, list[str]] = field(default_factory=dict)
    elapsed_ms: float = 0.0
    inputs_after: list[Any] | None = None


@dataclass
class RunCaseReply(Reply):
    runs: list[GuardedRun] = field(default_factory=list)
    native_threads: list[int] = field(default_factory=list)
    _nested: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"runs": _list_of(GuardedRun)}


@dataclass
class SetupReply(Reply):
    warmup_calls: int = 0
    native_threads: int = 0


@dataclass
class Sample:
    """A sampled timed call: the inputs it was given and the outputs it returned."""

    inputs: list[Any]
    outputs: Any


@dataclass
class BatchReply(Reply):
    times_ms: list[float] = field(default_factory=list)
    span_ms: float = 0.0
    samples: dict[str, Sample] = field(default_factory=dict)
    leaked_threads: list[str] = field(default_factory=list)
    native_threads: int = 0
    _nested: ClassVar[Mapping[str, Callable[[Any], Any]]] = {
        "samples": lambda d: {str(k): Sample(s["inputs"], s["outputs"]) for k, s in (d or {}).items()}
    }


@dataclass
class ReferenceReply(Reply):
    native: Any = None
    reference: Any = None

    @property
    def expected(self) -> Any:
        return self.reference if self.reference is not None else self.native


@dataclass
class CallMetricsReply(Reply):
    torch_allocated_bytes: int | None = None
    torch_allocations: int | None = None
    output_bytes: int | None = None
    device_peak_bytes: int | None = None


@dataclass
class KernelCompile:
    """One kernel's sm_90 compile: registers and spill bytes from ptxas."""

    name: str = ""
    ok: bool = False
    error: str | None = None
    n_regs: int | None = None
    n_spills: int | None = None


@dataclass
class CompileCheckReply(Reply):
    ok: bool = False
    compile_error: str | None = None
    unchecked: list[str] = field(default_factory=list)
    kernels: list[KernelCompile] = field(default_factory=list)
    _nested: ClassVar[Mapping[str, Callable[[Any], Any]]] = {"kernels": _list_of(KernelCompile)}


@dataclass
class PingReply(Reply):
    pid: int = 0


# --- the client ----------------------------------------------------------------------------------


class WorkerClient:
    """A sandboxed worker (``sandbox.process.Worker`` running ``ENTRY``) with one method per op.

    Each method sends its request and returns the typed reply; a worker that dies, hangs, runs
    out of memory or forges a reply raises ``WorkerFailure`` as ``Worker.request`` does."""

    def __init__(
        self,
        role: str,
        *,
        threads: int | None = None,
        memory_bytes: int | None = None,
        env: dict[str, str] | None = None,
    ):
        self.worker = process.Worker(role, entry=ENTRY, threads=threads, memory_bytes=memory_bytes, env=env)

    # the parts of the process the callers read (osview reads ``proc.pid``)
    @property
    def role(self) -> str:
        return self.worker.role

    @property
    def proc(self) -> Any:
        return self.worker.proc

    @property
    def threads(self) -> int:
        return self.worker.threads

    @property
    def memory_bytes(self) -> int:
        return self.worker.memory_bytes

    @property
    def dead(self) -> process.WorkerFailure | None:
        return self.worker.dead

    @property
    def log_path(self) -> Path:
        return self.worker.log_path

    def output_tail(self, lines: int = 8) -> str:
        return self.worker.output_tail(lines)

    def close(self) -> None:
        self.worker.close()

    def __enter__(self) -> WorkerClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _call(self, request: Request, reply: type[R], timeout_s: float | None) -> R:
        return reply.from_wire(self.worker.request(request.wire(), timeout_s))

    def load(self, request: Load, timeout_s: float | None = None) -> LoadReply:
        return self._call(request, LoadReply, timeout_s)

    def make_case(self, request: MakeCase, timeout_s: float | None = None) -> CaseReply:
        return self._call(request, CaseReply, timeout_s)

    def run_case(self, request: RunCase, timeout_s: float | None = None) -> RunCaseReply:
        return self._call(request, RunCaseReply, timeout_s)

    def setup_timing(self, request: SetupTiming, timeout_s: float | None = None) -> SetupReply:
        return self._call(request, SetupReply, timeout_s)

    def time_batch(self, request: TimeBatch, timeout_s: float | None = None) -> BatchReply:
        return self._call(request, BatchReply, timeout_s)

    def reference_for(self, request: ReferenceFor, timeout_s: float | None = None) -> ReferenceReply:
        return self._call(request, ReferenceReply, timeout_s)

    def call_metrics(self, phase: str, timeout_s: float | None = None) -> CallMetricsReply:
        return self._call(CallMetricsRequest(phase), CallMetricsReply, timeout_s)

    def compile_check(self, request: CompileCheck, timeout_s: float | None = None) -> CompileCheckReply:
        return self._call(request, CompileCheckReply, timeout_s)

    def ping(self, timeout_s: float | None = None) -> PingReply:
        return self._call(Ping(), PingReply, timeout_s)


def prestart_workers(threads: int | None = None) -> None:
    """Start the workers' zygote now, in the background (before other slow start-up work)."""
    process.prestart_workers(ENTRY, threads)
