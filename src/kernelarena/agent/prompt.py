"""Prompts of the coder and the judge, built from the task, the backend contract, the stored
machine profile and the verifier's rules.

Nothing here measures anything: the machine profile is only read from the store when one is there
(``karena hw`` writes it). The judge's profile feedback for C solutions is gcc's vectorization
report (``-fopt-info-vec-missed``) of the C source found in the candidate file; gcc only compiles
it (to /dev/null), it never runs it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kernelarena.agent.providers import Message
from kernelarena.types import Task

CATEGORY_HINTS = {
    "activation": "elementwise: one pass over memory; vectorize the inner loop (contiguous rows), "
    "parallelize rows with OpenMP; memory bandwidth is the limit, not arithmetic.",
    "normalization": "row reductions: one thread per row block, accumulate in float (or double for "
    "stability), then a second pass that scales; fuse the weight multiply into that pass.",
    "reduction": "reductions: split the reduced axis across SIMD lanes with several accumulators, "
    "combine at the end; parallelize over the kept axes.",
    "matmul": "GEMM-like: tile for L1/L2 (blocks of the output), pack the B panel, keep a register "
    "micro-kernel of accumulators; parallelize over output tiles.",
    "attention": "attention: tile over keys with an online softmax (running max and sum) so the "
    "score matrix is never materialized; parallelize over batch*heads*query blocks.",
    "convolution": "convolution: loop order with the output channel innermost and contiguous, or "
    "im2col + a tiled GEMM for large kernels.",
}
DEFAULT_HINT = (
    "find the bound first (bytes moved vs FLOPs against the machine's bandwidth and peak); fuse "
    "passes over memory, vectorize the innermost contiguous loop, parallelize the outermost."
)

C_EXAMPLE = '''\
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""
void relu(const float* x, float* y, long n) {
  #pragma omp parallel for simd
  for (long i = 0; i < n; ++i) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
"""
_LIB = load_library(_SRC, functions={"relu": (None, ["ptr", "ptr", "long"])})


class ModelNew(nn.Module):
    def __init__(self):  # same arguments as the reference Model (parameters declared the same way)
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)  # allocation, views and copies are allowed in forward
        _LIB.relu(x.data_ptr(), y.data_ptr(), x.numel())
        return y
'''

NUMBA_EXAMPLE = """\
import numba
import numpy as np
import torch
import torch.nn as nn


@numba.njit(parallel=True, fastmath=False, cache=True)
def _relu(x, y):
    for i in numba.prange(x.size):
        y[i] = x[i] if x[i] > np.float32(0.0) else np.float32(0.0)


class ModelNew(nn.Module):
    def __init__(self):  # same arguments as the reference Model (parameters declared the same way)
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        _relu(x.view(-1).numpy(), y.view(-1).numpy())
        return y
"""

CONTRACTS = {
    "c": (
        "Write ONE Python file defining `class ModelNew(nn.Module)` with the same constructor "
        "arguments and parameter names/shapes as the reference `Model`. The computation runs in C "
        "compiled by gcc (-O3, -march=native, OpenMP) through "
        "`kernelarena.backends.c.load_library(src, functions={name: (restype, [argtypes])})` "
        "(argtypes: 'ptr', 'long', 'int', 'float', 'double'); pass tensors as `t.data_ptr()` of "
        "contiguous float32 tensors.",
        C_EXAMPLE,
    ),
    "numba": (
        "Write ONE Python file defining `class ModelNew(nn.Module)` with the same constructor "
        "arguments and parameter names/shapes as the reference `Model`. The computation runs in "
        "`@numba.njit` functions (parallel=True and numba.prange allowed) on `tensor.numpy()` views.",
        NUMBA_EXAMPLE,
    ),
}

RULES = """\
Rules of the verifier (a violation is rejected, and a rejected solution never counts):
- forward() may only allocate (empty, zeros, full...), make views (view, reshape, permute,
  contiguous...) and copy with torch; any torch compute op in forward (matmul, tanh, softmax, +, *,
  F.*, torch.nn modules, the reference Model itself) is a fallback to torch, not a kernel: REJECTED.
- no tampering: no monkey-patching of torch/numpy/kernelarena, no reading of the reference, the
  harness or the caller's frames, no eval/exec/getattr tricks, no caching of outputs across calls
  (inputs change between calls with secret seeds; outputs are compared on several input
  distributions, sizes and seeds), no threads left running, no network or files outside the build.
- results must match the reference within the task's tolerance on every variant, and be
  deterministic across repeated calls.
- timing compares against eager PyTorch on the same machine; implausibly fast results are
  investigated and rejected."""

SYSTEM_CODER = (
    "You are an expert performance engineer who writes fast, correct CPU kernels. Reply with a short "
    "plan, then the COMPLETE solution file in one ```python fenced block."
)
SYSTEM_JUDGE = (
    "You are a kernel performance reviewer. Read the verifier's verdict, the timing and the profile "
    "feedback, and answer with ONE concrete fix (when the solution failed) or ONE concrete "
    "optimization (when it passed), in a few sentences. Do not write the whole solution."
)


def reference_source(task: Task) -> str:
    """The task file's text (``Task.source`` is the attribution line, not the code)."""
    try:
        return Path(task.path).read_text()
    except OSError:
        return task.source


def _dtype(task: Task) -> str:
    found = sorted(
        set(
            re.findall(
                r"torch\.(float16|bfloat16|float32|float64|int64|int32|int8|bool)", reference_source(task)
            )
        )
    )
    return ", ".join(found) if found else "float32 (torch default)"


def variants_text(task: Task) -> str:
    lines = []
    for v in task.variants:
        sizes = ", ".join(f"{k}={val}" for k, val in v.overrides.items()) or "(as in the source)"
        lines.append(f"- variant {v.index}: {sizes}" + (" (derived by the harness)" if v.derived else ""))
    return "\n".join(lines)


def machine_text(db_path: str | Path | None) -> str | None:
    """The stored machine profile (``karena hw``) in a few lines, or None; never measures."""
    if db_path is None or not Path(db_path).is_file():
        return None
    try:
        from kernelarena import settings
        from kernelarena.hw.profile import cpu_machine_id, describe
        from kernelarena.hw.store import stored_profile

        for threads in (settings.num_threads(), 1):
            prof = stored_profile(Path(db_path), cpu_machine_id(), "cpu", threads)
            if prof is not None:
                return describe(prof)
    except Exception:  # the profile is an extra
        return None
    return None


def coder_prompt(
    task: Task,
    backend: str = "c",
    *,
    machine: str | None = None,
    examples: Sequence[tuple[str, float]] = (),
) -> list[Message]:
    """The first coder prompt: task, shapes, dtype, contract + example, machine, hint, rules."""
    contract, example = CONTRACTS.get(backend, CONTRACTS["c"])
    parts = [
        f"Task `{task.name}` (category: {task.category}). Make `ModelNew` compute exactly what the "
        f"reference `Model` computes, faster.\n\nReference:\n```python\n{reference_source(task).rstrip()}\n```",
        f"Variants (every one is checked; the first is timed):\n{variants_text(task)}",
        f"dtype: {_dtype(task)}",
        f"Solution contract ({backend}): {contract}\nShort working example (another op):\n```python\n{example}```",
    ]
    if machine:
        parts.append(f"Machine profile:\n{machine}")
    parts.append(f"Hint: {CATEGORY_HINTS.get(task.category, DEFAULT_HINT)}")
    parts.append(RULES)
    for code, speedup in examples:
        parts.append(
            f"A verified past solution of a similar task ({speedup:.2f}x over eager):\n```python\n{code.rstrip()}\n```"
        )
    parts.append("Reply with the complete solution file in one ```python block.")
    return [Message("system", SYSTEM_CODER), Message("user", "\n\n".join(parts))]


def c_sources(code: str) -> list[str]:
    """C sources embedded in a solution file: triple-quoted strings that look like C."""
    found = re.findall(r'r?"""(.*?)"""', code, re.S) + re.findall(r"r?'''(.*?)'''", code, re.S)
    return [s for s in found if re.search(r"#include|\bvoid\b|\bfloat\s*\*", s)]


def vectorization_report(code: str, *, timeout_s: float = 30.0, max_lines: int = 12) -> str | None:
    """gcc's ``-fopt-info-vec-missed`` summary of the C in ``code`` (compiled only, never run)."""
    gcc = shutil.which("gcc")
    srcs = c_sources(code)
    if gcc is None or not srcs:
        return None
    with tempfile.TemporaryDirectory(prefix="karena-vec-") as d:
        src = Path(d) / "kernel.c"
        src.write_text("\n".join(srcs))
        try:
            r = subprocess.run(
                [gcc, "-O3", "-march=native", "-fopenmp", "-fopt-info-vec-missed", "-fopt-info-vec-optimized",
                 "-c", str(src), "-o", str(Path(d) / "k.o")],
                capture_output=True, text=True, timeout=timeout_s, cwd=d,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
    out = (r.stderr or "").replace(str(src), "kernel.c")
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    if r.returncode != 0:
        errs = [ln for ln in lines if "error" in ln][:max_lines]
        return "gcc failed to compile the C source:\n" + "\n".join(errs)
    done = [ln for ln in lines if "optimized:" in ln]
    missed: dict[str, str] = {}
    for ln in lines:
        if "missed:" in ln:
            m = re.match(r"kernel\.c:(\d+):\d+: missed: (.*)", ln)
            if m and m.group(1) not in missed:
                missed[m.group(1)] = m.group(2)
    text = [f"vectorized loops: {len(done)}"] + [ln.split("optimized: ")[-1] for ln in done[:4]]
    text += [f"not vectorized at line {k}: {v}" for k, v in list(missed.items())[:max_lines]]
    return "\n".join(text)


def evaluation_text(ev: dict[str, Any]) -> str:
    """The verifier's and the timer's words on one candidate, for the judge and the coder."""
    status = ev.get("status")
    lines = [f"status: {status}"]
    if status == "no-code":
        lines.append("the reply contained no usable Python solution file defining ModelNew")
    for r in (ev.get("reasons") or [])[:8]:
        lines.append(f"reason: {r}")
    if status == "cheat":
        lines.append("the verifier REJECTED this as a cheat (it breaks the rules above); it can never count")
    if ev.get("speedup") is not None:
        ci = ev.get("speedup_ci")
        ci_s = f" (95% CI {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""
        lines.append(f"speedup over eager: {ev['speedup']:.2f}x{ci_s}")
    if ev.get("roofline") is not None:
        lines.append(f"% of roofline: {ev['roofline']:.1f}")
    if ev.get("best_speedup") is not None:
        lines.append(f"best verified speedup so far: {ev['best_speedup']:.2f}x")
    return "\n".join(lines)


def judge_prompt(
    task: Task, code: str | None, ev: dict[str, Any], *, profile: str | None = None
) -> list[Message]:
    parts = [
        f"Task `{task.name}` (category {task.category}). Reference:\n```python\n{reference_source(task).rstrip()}\n```",
        f"Candidate:\n```python\n{(code or '(no code)').rstrip()}\n```",
        f"Verifier and timer:\n{evaluation_text(ev)}",
    ]
    if profile:
        parts.append(f"Compiler vectorization report (gcc -fopt-info-vec-missed):\n{profile}")
    parts.append(RULES)
    parts.append(
        "Give ONE concrete fix if it failed, else ONE concrete optimization, as a short instruction to the coder."
    )
    return [Message("system", SYSTEM_JUDGE), Message("user", "\n\n".join(parts))]


def revise_prompt(
    first: Sequence[Message], last_reply: str, ev: dict[str, Any], feedback: str | None, best_code: str | None
) -> list[Message]:
    """Round k+1 of the coder: the task, its last reply, the verdict and the judge's advice."""
    text = f"Result of your last solution:\n{evaluation_text(ev)}"
    if feedback:
        text += f"\n\nReviewer's advice:\n{feedback.strip()}"
    if best_code and ev.get("status") != "pass":
        text += (
            f"\n\nThe best verified solution so far (improve on it):\n```python\n{best_code.rstrip()}\n```"
        )
    text += "\n\nReply with the complete revised solution file in one ```python block."
    return [*first, Message("assistant", last_reply), Message("user", text)]
