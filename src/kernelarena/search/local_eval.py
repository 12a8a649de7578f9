"""A simple real evaluator for benchmarking the search itself: NOT sandboxed, NOT the full verifier.

:class:`LocalEvaluator` imports a rendered solution in this process (or, with ``isolate=True``, in
one persistent child process that is restarted when a candidate crashes or hangs), checks it against
the task's ``Model`` (float64 reference, randomized parameters, the scale-aware tolerance of the
harness) on the timing shape plus one small odd variant, then times it (median of repeated calls,
with a distribution-free confidence interval). A candidate can cheat it (it shares the process with
the reference and the timer); the harness's sandboxed ``TuningSession`` is the real evaluator, and
every winner is re-verified by the full harness before it is reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import itertools
import json
import logging
import math
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from kernelarena.search.types import EvalOutcome

log = logging.getLogger(__name__)

_counter = itertools.count()


# --------------------------------------------------------------------------- task and solution loading
def load_task_module(task_path: Path, overrides: Mapping[str, Any] | None = None) -> ModuleType:
    """A fresh module object of the task file with its globals overridden (a ``VARIANTS`` entry)."""
    name = f"_karena_task_{Path(task_path).stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, task_path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load task {task_path}")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for k, v in (overrides or {}).items():
        setattr(mod, k, v)
    return mod


def load_solution_module(source: str) -> ModuleType:
    """Import solution source from a private temporary file (so tracebacks and numba see a file)."""
    tag = hashlib.sha256(source.encode()).hexdigest()[:16]
    d = Path(tempfile.gettempdir()) / f"karena_search_{os.getuid()}"
    d.mkdir(exist_ok=True)
    path = d / f"sol_{tag}.py"
    if not path.exists():
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
    name = f"_karena_sol_{tag}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError("cannot load solution")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def variants_of(task_mod: ModuleType) -> list[dict[str, Any]]:
    return [dict(v) for v in getattr(task_mod, "VARIANTS", None) or [{}]]


def shape_id_of(overrides: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={overrides[k]}" for k in sorted(overrides)) or "default"


# --------------------------------------------------------------------------- verification pieces
def _randomize_params(model: Any, gen: Any) -> None:
    import torch

    with torch.no_grad():
        for t in itertools.chain(model.parameters(), model.buffers()):
            if t.is_floating_point() and t.numel() > 0:
                rms = t.double().pow(2).mean().sqrt().item() or 1.0
                u = torch.rand(t.shape, generator=gen, dtype=torch.float64) + 0.5
                n = torch.randn(t.shape, generator=gen, dtype=torch.float64)
                t.copy_((t.double() * u + 0.1 * rms * n).to(t.dtype))


def _as_tuple(out: Any) -> tuple[Any, ...]:
    return tuple(out) if isinstance(out, tuple | list) else (out,)


def compare_outputs(out: Any, ref: Any, atol: float, rtol: float) -> str | None:
    """None if ``out`` matches ``ref`` under the harness rule, else a reason."""
    import torch

    outs, refs = _as_tuple(out), _as_tuple(ref)
    if len(outs) != len(refs):
        return f"expected {len(refs)} outputs, got {len(outs)}"
    for i, (o, r) in enumerate(zip(outs, refs)):
        if type(o) is not torch.Tensor:
            return f"output {i} is {type(o).__name__}, not torch.Tensor"
        if o.shape != r.shape:
            return f"output {i} has shape {tuple(o.shape)}, expected {tuple(r.shape)}"
        if not r.is_floating_point():
            if o.dtype != r.dtype or not torch.equal(o, r):
                return f"output {i} (integer) differs"
            continue
        rd = r.double()
        od = o.double()
        fin = torch.isfinite(rd)
        if not torch.equal(torch.isfinite(od), fin):
            return f"output {i} has non-finite values where the reference has none (or vice versa)"
        if not bool(fin.all()):
            if not torch.equal(od[~fin], rd[~fin]):
                return f"output {i} has different non-finite values than the reference"
            rd = torch.where(fin, rd, 0.0)
            od = torch.where(fin, od, 0.0)
        if rd.numel() == 0:
            continue
        scale = rd.pow(2).mean().sqrt().item()
        excess = (od - rd).abs_().sub_(rd.abs().mul_(rtol)).max().item()
        if excess > atol * scale:
            return f"output {i} mismatch: error exceeds the tolerance by {excess:.3g} (scale {scale:.3g})"
    return None


@dataclass
class _Case:
    overrides: dict[str, Any]
    init: list[Any]
    inputs: list[Any]
    state: dict[str, Any]
    expected: tuple[Any, ...]
    out_dtypes: tuple[Any, ...]


def time_calls(
    fn: Callable[[], Any],
    budget_s: float,
    min_reps: int,
    max_reps: int,
    clock: Callable[[], float] = time.perf_counter,
) -> tuple[float, tuple[float, float]]:
    """Median per-call ms and a ~95% order-statistic CI of the median, after two warm-up calls."""
    fn()
    fn()
    times: list[float] = []
    deadline = clock() + budget_s
    while len(times) < max_reps and (len(times) < min_reps or clock() < deadline):
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1e3)
    times.sort()
    n = len(times)
    med = statistics.median(times)
    half = 1.96 * math.sqrt(n) / 2
    lo = times[max(0, math.floor(n / 2 - half))]
    hi = times[min(n - 1, math.ceil(n / 2 + half))]
    return med, (lo, hi)


# --------------------------------------------------------------------------- the evaluator
class LocalEvaluator:
    """Checks and times rendered solutions in-process (see the module docstring: not sandboxed).

    ``shape``: globals of the timing shape (default: the first ``VARIANTS`` entry). ``check``: extra
    variants to check correctness on (default: the smallest-by-input-size other variant).
    ``clock``: ``"wall"`` (default) or ``"thread_cpu"``: the CPU time of the calling thread, which a
    shared, oversubscribed machine does not inflate (measured here: wall medians of one kernel varied
    20-40 ms under load 10 on 2 cores, its thread CPU time 4.0 ms +- 3%). Only meaningful for
    single-threaded runs (``threads=1`` and ``OMP_NUM_THREADS=1``), which it requires; such times
    carry a ``|cpu1`` suffix in ``shape_id`` so they never mix with wall-clock records.
    """

    def __init__(
        self,
        task_path: Path,
        *,
        shape: Mapping[str, Any] | None = None,
        check: Sequence[Mapping[str, Any]] | None = None,
        seed: int = 0,
        time_budget_s: float = 0.2,
        min_reps: int = 5,
        max_reps: int = 500,
        threads: int | None = None,
        clock: str = "wall",
    ):
        import torch

        if clock not in ("wall", "thread_cpu"):
            raise ValueError(f"clock must be 'wall' or 'thread_cpu', not {clock!r}")
        if clock == "thread_cpu" and (threads != 1 or os.environ.get("OMP_NUM_THREADS") != "1"):
            raise ValueError(
                "clock='thread_cpu' needs threads=1 and OMP_NUM_THREADS=1 (other threads are not counted)"
            )
        self._clock = time.thread_time if clock == "thread_cpu" else time.perf_counter
        self.task_path = Path(task_path)
        self.seed = seed
        self.time_budget_s = time_budget_s
        self.min_reps = min_reps
        self.max_reps = max_reps
        if threads:
            torch.set_num_threads(threads)
        base = load_task_module(self.task_path)
        variants = variants_of(base)
        timing = dict(shape) if shape is not None else variants[0]
        if check is None:
            others = [v for v in variants if v != timing]
            check = [min(others, key=lambda v: self._input_numel(v))] if others else []
        self.atol = float(getattr(base, "ATOL", 1e-5))
        self.rtol = float(getattr(base, "RTOL", 1e-4))
        self.float64 = bool(getattr(base, "FLOAT64_REFERENCE", True))
        self.cases = [self._make_case(timing, i) for i in range(1)] + [
            self._make_case(dict(v), i + 1) for i, v in enumerate(check)
        ]
        self._shape = timing
        self._shape_id = shape_id_of(timing) + ("|cpu1" if clock == "thread_cpu" else "")
        mod = load_task_module(self.task_path, timing)
        tc = self.cases[0]
        self._shape_features: dict[str, float] = {}
        for name, key in (("flops", "flops"), ("bytes_moved", "bytes")):
            fn = getattr(mod, name, None)
            if callable(fn):
                with contextlib.suppress(Exception):
                    self._shape_features[key] = float(fn(*tc.inputs))
        self._baseline_ms = self._time_reference()

    # -- Evaluator protocol ------------------------------------------------------------------------
    @property
    def baseline_ms(self) -> float:
        return self._baseline_ms

    @property
    def shape_id(self) -> str:
        return self._shape_id

    @property
    def shape_features(self) -> Mapping[str, float]:
        return self._shape_features

    def evaluate(self, source: str, config: Mapping[str, Any]) -> EvalOutcome:
        try:
            mod = load_solution_module(source)
        except Exception as exc:
            return EvalOutcome.failure(f"build/import error: {type(exc).__name__}: {str(exc)[:400]}")
        cls = getattr(mod, "ModelNew", None)
        if cls is None:
            return EvalOutcome.failure("solution defines no ModelNew")
        timed_model = None
        for i, case in enumerate(self.cases):
            try:
                model = cls(*case.init)
                model.load_state_dict(case.state)
                model.eval()
                out = model(*[_clone(x) for x in case.inputs])
            except Exception as exc:
                return EvalOutcome.failure(
                    f"error on {shape_id_of(case.overrides)}: {type(exc).__name__}: {exc}"
                )
            reason = compare_outputs(out, case.expected, self.atol, self.rtol)
            if reason is None:
                dtypes = tuple(o.dtype for o in _as_tuple(out))
                if dtypes != case.out_dtypes:
                    reason = f"output dtypes {dtypes}, expected {case.out_dtypes}"
            if reason is not None:
                return EvalOutcome.failure(f"wrong result on {shape_id_of(case.overrides)}: {reason}")
            if i == 0:
                timed_model = model
        assert timed_model is not None
        med, ci = self._time(timed_model, self.cases[0].inputs)
        return EvalOutcome(ok=True, median_ms=med, ci_ms=ci)

    # -- internals ---------------------------------------------------------------------------------
    def _input_numel(self, overrides: Mapping[str, Any]) -> int:
        import torch

        mod = load_task_module(self.task_path, overrides)
        torch.manual_seed(self.seed)
        return sum(x.numel() for x in mod.get_inputs() if isinstance(x, torch.Tensor))

    def _make_case(self, overrides: dict[str, Any], index: int) -> _Case:
        import torch

        mod = load_task_module(self.task_path, overrides)
        torch.manual_seed(self.seed * 1000 + index)
        init = list(mod.get_init_inputs())
        inputs = list(mod.get_inputs())
        ref = mod.Model(*init)
        gen = torch.Generator().manual_seed(self.seed * 1000 + index + 7)
        if getattr(mod, "RANDOMIZE_PARAMS", True):
            _randomize_params(ref, gen)
        ref.eval()
        state = {k: v.detach().clone() for k, v in ref.state_dict().items()}
        with torch.no_grad():
            out32 = _as_tuple(ref(*[_clone(x) for x in inputs]))
            if self.float64:
                ref64 = ref.double()
                ref_in = [
                    x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x for x in inputs
                ]
                expected = tuple(o.detach() for o in _as_tuple(ref64(*ref_in)))
                ref.float()
            else:
                expected = tuple(o.detach() for o in out32)
        return _Case(overrides, init, inputs, state, expected, tuple(o.dtype for o in out32))

    def _time(self, model: Any, inputs: list[Any]) -> tuple[float, tuple[float, float]]:
        import torch

        # two input copies, cycled, so the kernel cannot live off the previous call's outputs
        copies = [[_clone(x) for x in inputs] for _ in range(2)]
        cycle = itertools.cycle(copies)

        def call() -> None:
            model(*next(cycle))

        with torch.no_grad():
            return time_calls(call, self.time_budget_s, self.min_reps, self.max_reps, self._clock)

    def _time_reference(self) -> float:
        import torch

        mod = load_task_module(self.task_path, self._shape)
        case = self.cases[0]
        ref = mod.Model(*case.init)
        ref.load_state_dict(case.state)
        ref.eval()
        with torch.no_grad():
            med, _ = self._time(ref, case.inputs)
        return med


def _clone(x: Any) -> Any:
    import torch

    return x.clone() if isinstance(x, torch.Tensor) else x


# --------------------------------------------------------------------------- crash-isolated variant
def _worker_main(conn: Any, task_path: str, kwargs: dict[str, Any]) -> None:
    try:
        ev = LocalEvaluator(Path(task_path), **kwargs)
        conn.send(("ready", ev.baseline_ms, ev.shape_id, dict(ev.shape_features)))
    except Exception:
        conn.send(("error", traceback.format_exc()))
        return
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if msg is None:
            return
        source, config = msg
        out = ev.evaluate(source, config)
        conn.send(("outcome", out.ok, out.median_ms, out.ci_ms, out.reason))


class IsolatedLocalEvaluator:
    """:class:`LocalEvaluator` in one persistent child process, restarted after a crash or a hang.

    Still NOT a sandbox (no resource limits, no policy checks); it only keeps a segfaulting or
    looping candidate from taking the search down with it. The baseline is timed once, in the first
    worker, and kept across restarts so every speedup refers to the same number.
    """

    def __init__(self, task_path: Path, *, timeout_s: float = 60.0, **kwargs: Any):
        self.task_path = Path(task_path)
        self.timeout_s = timeout_s
        self.kwargs = kwargs
        self._ctx = mp.get_context("spawn")  # fork after torch/OpenMP threads start is unsafe
        self._proc: Any = None
        self._conn: Any = None
        self._baseline: float | None = None
        self._start()

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(
            target=_worker_main, args=(child, str(self.task_path), self.kwargs), daemon=True
        )
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(600):
            self.close()
            raise RuntimeError("evaluator worker did not start in 600 s")
        msg = parent.recv()
        if msg[0] != "ready":
            self.close()
            raise RuntimeError(f"evaluator worker failed to start:\n{msg[1]}")
        if self._baseline is None:
            self._baseline = float(msg[1])
            self._shape_id = str(msg[2])
            self._shape_features = dict(msg[3])

    def close(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(Exception):
                self._conn.send(None)
            self._proc.join(timeout=2)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join()
            self._proc = None

    def __enter__(self) -> IsolatedLocalEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def baseline_ms(self) -> float:
        assert self._baseline is not None
        return self._baseline

    @property
    def shape_id(self) -> str:
        return self._shape_id

    @property
    def shape_features(self) -> Mapping[str, float]:
        return self._shape_features

    def evaluate(self, source: str, config: Mapping[str, Any]) -> EvalOutcome:
        if self._proc is None:
            self._start()
        try:
            self._conn.send((source, json.loads(json.dumps(dict(config)))))
            if not self._conn.poll(self.timeout_s):
                reason = f"timeout after {self.timeout_s:.0f} s"
                self._kill()
                return EvalOutcome.failure(reason)
            msg = self._conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            code = self._proc.exitcode if self._proc is not None else None
            self._kill()
            return EvalOutcome.failure(f"worker crashed (exit code {code})")
        _, ok, med, ci, reason = msg
        return EvalOutcome(ok=ok, median_ms=med, ci_ms=tuple(ci) if ci else None, reason=reason)

    def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.join()
            self._proc = None


def main(argv: Sequence[str] | None = None) -> int:  # pragma: no cover - manual tool
    """``python -m kernelarena.search.local_eval TASK SOLUTION``: check and time one solution."""
    args = list(argv if argv is not None else sys.argv[1:])
    ev = LocalEvaluator(Path(args[0]))
    out = ev.evaluate(Path(args[1]).read_text(), {})
    ratio = ev.baseline_ms / out.median_ms if out.ok and out.median_ms else None
    print(json.dumps({"ok": out.ok, "median_ms": out.median_ms, "baseline_ms": ev.baseline_ms, "speedup": ratio,
                      "reason": out.reason}))  # fmt: skip
    return 0 if out.ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
