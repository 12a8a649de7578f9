"""Triton solutions on a CPU: verified under Triton's interpreter on small shapes, and compiled
for sm_90 (registers, spills) so that a kernel that would not build fails before GPU time is spent."""

from __future__ import annotations

from dataclasses import replace

from kernelarena.sandbox.process import WorkerFailure
from kernelarena.types import CheckOptions, Solution, Task
from kernelarena.worker_client import CompileCheck, WorkerClient

INTERPRETER_MAX_BYTES = 1 << 20  # the Triton interpreter runs ~1000x slower than a GPU


def for_interpreter(task: Task, options: CheckOptions) -> tuple[Task, CheckOptions]:
    """Triton on a CPU: only small shapes (scaled down if needed), one seed, a long timeout."""
    from kernelarena.tasks.loader import input_bytes, scale_to_fit

    small = [v for v in task.variants if (input_bytes(task.path, v.overrides) or 0) <= INTERPRETER_MAX_BYTES]
    notes = list(task.notes)
    if not small:
        smallest = min(task.variants, key=lambda v: input_bytes(task.path, v.overrides) or 0)
        overrides, note = scale_to_fit(task.path, smallest.overrides, INTERPRETER_MAX_BYTES)
        small = [replace(smallest, overrides=overrides)]
        notes.append(f"Triton interpreter: {note}")
    skipped = [v.label for v in task.variants if v not in small]
    if skipped:
        notes.append(f"Triton interpreter on CPU: variants not verified (too large): {'; '.join(skipped)}")
    small = [replace(v, index=i) for i, v in enumerate(small)]
    opts = replace(
        options, seeds=1, distributions=("as-given", "scaled"), timeout_s=max(options.timeout_s or 0, 600)
    )
    return replace(task, variants=tuple(small), notes=tuple(notes)), opts


def compile_check(sol: Solution, options: CheckOptions) -> tuple[list[str], list[str]]:
    """sm_90 compile of a Triton solution's kernels, in a worker of its own (no interpreter)."""
    reasons, flags = [], []
    with WorkerClient("candidate", threads=options.threads, memory_bytes=options.memory_bytes) as w:
        try:
            r = w.compile_check(CompileCheck(path=str(sol.path), arch=90), timeout_s=600)
        except WorkerFailure as exc:
            return [f"sm_90 compile check: worker {exc}"], []
    if r.error:
        return [f"sm_90 compile check failed: {r.error}"], []
    if r.compile_error:
        reasons.append(f"sm_90 compile check failed: {r.compile_error}")
    for k in r.kernels:
        if not k.ok:
            reasons.append(f"sm_90: kernel {k.name} does not compile: {k.error}")
        else:
            flags.append(f"sm_90: kernel {k.name}: {k.n_regs} registers, {k.n_spills} spill bytes")
    if r.unchecked:
        flags.append(
            f"sm_90: kernels without TRITON_COMPILE_SPECS were not compile-checked: {', '.join(r.unchecked)}"
        )
    return reasons, flags
