"""Triton kernels: compile checks for a GPU architecture without a GPU, and the CPU interpreter.

**Compile checks.** ``triton.compile`` with ``GPUTarget("cuda", 90, 32)`` lowers a kernel all the way
to an sm_90a cubin on a machine with no GPU. ptxas' resource lines (registers, spills) are read by
re-running Triton's own ptxas with ``-v`` on the PTX it produced (same binary, same flags, so the
same figures as the cubin); shared memory is Triton's allocation plus any static shared memory.

A kernel can only be compiled for concrete argument types and ``tl.constexpr`` values, so a
solution file declares the specializations it launches, in a module-level list::

    TRITON_COMPILE_SPECS = [
        (_rmsnorm_kernel, {
            "signature": {"x_ptr": "*fp32", "w_ptr": "*fp32", "y_ptr": "*fp32",
                          "n_cols": "i32", "eps": "fp32"},
            "constexprs": {"BLOCK": 2048},
            "num_warps": 8,      # optional, default 4
            "num_stages": 3,     # optional, default 3
        }),
    ]

* ``signature`` names every runtime (non-constexpr) parameter with a Triton type string: ``*fp32``,
  ``*fp16``, ``*bf16``, ``*i32``, ``*i64``, ``*u8``, ``i32``, ``i64``, ``fp32`` ...
* ``constexprs`` gives a value to every ``tl.constexpr`` parameter.
* Declare the configuration the solution launches for the task's headline shape (a solution that
  picks block sizes in a helper should call that helper here, so the two cannot drift apart).
  A kernel may appear several times (e.g. one entry per block size it uses).
* Pointer arguments are assumed 16-byte aligned, as PyTorch allocations are. At launch Triton also
  specializes integer arguments that are multiples of 16 (wider vector loads, fewer masks), so give
  the integer values of the launch in an optional ``"int_values"`` dict (e.g. ``{"n_cols": 2048}``)
  and the compile check applies the same hints; ``"divisible_by_16"`` (a list of names) does so
  directly.

:func:`check_solution` compiles every spec of a loaded solution module and reports entry kernels
(``@triton.jit`` functions that read ``tl.program_id``) that have no spec, so a solution cannot
hide a kernel from the check; device helpers called from kernels are compiled inside their callers.

**Interpreter.** ``TRITON_INTERPRET=1`` makes ``@triton.jit`` return an interpreted function that
runs on CPU tensors with numpy semantics. It must be set before the solution's kernels are
*defined* (i.e. before the solution is imported); :func:`interpreter_env` gives the variables for a
worker process. Results obtained that way are real but say nothing about GPU speed or GPU-specific
bugs (races, shared-memory limits), so a verdict reached under the interpreter carries
:data:`INTERPRETER_FLAG` (:func:`verdict_flags` says when).

Importing this module does not import triton or torch; each function imports triton when called.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
import tempfile
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from kernelarena.backends.cuda import CompileReport, report_from_ptxas, sm_arch

__all__ = [
    "INTERPRETER_FLAG",
    "SPECS_ATTRIBUTE",
    "CompileReport",
    "KernelSpec",
    "SolutionCompileReport",
    "check_solution",
    "compile_check_file",
    "compile_for_target",
    "find_jit_kernels",
    "interpreter_active",
    "interpreter_env",
    "load_solution_module",
    "op_compile_check",
    "read_specs",
    "verdict_flags",
]

log = logging.getLogger(__name__)

INTERPRETER_FLAG = "verified-under-triton-interpreter"
SPECS_ATTRIBUTE = "TRITON_COMPILE_SPECS"
PTXAS_TIMEOUT_S = 120.0


def interpreter_env() -> dict[str, str]:
    """Environment for a worker that runs Triton solutions on CPU tensors (set before importing them)."""
    return {"TRITON_INTERPRET": "1"}


def verdict_flags(device_type: str) -> list[str]:
    """Flags for a verdict on a Triton solution run on ``device_type`` ("cpu" means the interpreter)."""
    return [INTERPRETER_FLAG] if device_type == "cpu" or interpreter_active() else []


def interpreter_active() -> bool:
    """True when ``@triton.jit`` in this process returns interpreted functions."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "on", "yes")


@dataclass(frozen=True)
class KernelSpec:
    """One specialization of one kernel to compile: types, constexpr values, launch options."""

    kernel: Any  # triton.runtime.jit.JITFunction
    signature: Mapping[str, str]
    constexprs: Mapping[str, Any] = field(default_factory=dict)
    num_warps: int = 4
    num_stages: int = 3
    divisible_by_16: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return str(getattr(self.kernel, "__name__", "kernel"))


@dataclass(frozen=True)
class SolutionCompileReport:
    """Compile results of every declared spec, and the kernels that had none."""

    arch: str
    results: tuple[tuple[str, CompileReport], ...]
    unchecked: tuple[str, ...] = ()
    error: str = ""

    @property
    def ok(self) -> bool:
        return (
            not self.error
            and not self.unchecked
            and bool(self.results)
            and all(r.ok for _, r in self.results)
        )

    @property
    def max_regs(self) -> int:
        return max((r.n_regs for _, r in self.results), default=0)

    @property
    def total_spill_bytes(self) -> int:
        return sum(r.n_spills for _, r in self.results)


def _unwrap(obj: Any) -> Any:
    """Autotuner/Heuristics wrap a JITFunction in ``.fn``; follow the chain."""
    seen = 0
    while obj is not None and not _is_jit(obj) and hasattr(obj, "fn") and seen < 8:
        obj = obj.fn
        seen += 1
    return obj


def _is_jit(obj: Any) -> bool:
    from triton.runtime.jit import JITFunction

    return isinstance(obj, JITFunction)


def find_jit_kernels(module: ModuleType) -> list[Any]:
    """The ``@triton.jit`` functions defined in (or imported into) a loaded solution module.

    Kernels wrapped by ``triton.autotune`` / ``triton.heuristics`` are unwrapped. Under the
    interpreter there are no JITFunctions (``triton.jit`` returns interpreted functions), so the
    result is empty there.
    """
    found: list[Any] = []
    for value in vars(module).values():
        fn = _unwrap(value)
        if fn is not None and _is_jit(fn) and all(fn is not f for f in found):
            found.append(fn)
    return found


def _parse_spec(entry: Any) -> KernelSpec:
    if isinstance(entry, KernelSpec):
        return entry
    if not (isinstance(entry, tuple | list) and len(entry) == 2 and isinstance(entry[1], Mapping)):
        raise TypeError(
            f"{SPECS_ATTRIBUTE} entries are (kernel, {{'signature': ..., 'constexprs': ...}}), got {entry!r}"
        )
    kernel, opts = entry
    unknown = set(opts) - {
        "signature",
        "constexprs",
        "num_warps",
        "num_stages",
        "divisible_by_16",
        "int_values",
    }
    if unknown:
        raise TypeError(f"unknown keys in spec for {getattr(kernel, '__name__', kernel)}: {sorted(unknown)}")
    div16 = list(opts.get("divisible_by_16", ()))
    div16 += [k for k, v in dict(opts.get("int_values", {})).items() if int(v) % 16 == 0 and k not in div16]
    return KernelSpec(
        kernel=_unwrap(kernel),
        signature=dict(opts["signature"]),
        constexprs=dict(opts.get("constexprs", {})),
        num_warps=int(opts.get("num_warps", 4)),
        num_stages=int(opts.get("num_stages", 3)),
        divisible_by_16=tuple(div16),
    )


def read_specs(module: ModuleType) -> list[KernelSpec]:
    """Parse the module's ``TRITON_COMPILE_SPECS`` (empty list when it declares none)."""
    return [_parse_spec(e) for e in getattr(module, SPECS_ATTRIBUTE, [])]


def _ptxas_resources(ptx: str, capability: int, enable_fp_fusion: bool) -> str:
    """Re-run Triton's ptxas with -v on the PTX it produced; returns the log."""
    from triton.backends.nvidia.compiler import get_ptxas, sm_arch_from_capability

    ptxas = get_ptxas(capability).path
    with tempfile.TemporaryDirectory(prefix="karena_ptxas_") as tmp:
        src = Path(tmp) / "kernel.ptx"
        src.write_text(ptx)
        cmd = [ptxas, "-lineinfo", "-v", "--regAllocOptLevel=2"]
        cmd += [] if enable_fp_fusion else ["--fmad=false"]
        cmd += [f"--gpu-name={sm_arch_from_capability(capability)}", str(src), "-o", str(Path(tmp) / "k.o")]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PTXAS_TIMEOUT_S)
        return proc.stdout + proc.stderr


def _describe(err: BaseException, max_lines: int = 40) -> str:
    """An exception and its causes, innermost last: Triton wraps the real reason (a type error in
    a helper, a loop-carried type change) in CompilationErrors that point at the call sites."""
    parts: list[str] = []
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen and len(parts) < 6:
        seen.add(id(cur))
        lines = str(cur).strip().splitlines()
        if len(lines) > 14:  # keep the location header and the caret end of a source excerpt
            lines = [lines[0], "  ...", *lines[-10:]]
        parts.append(f"{type(cur).__name__}: " + "\n".join(lines))
        cur = cur.__cause__ or cur.__context__
    lines = "\ncaused by ".join(parts).splitlines()
    if len(lines) > max_lines:
        lines = [*lines[:10], "  ...", *lines[-(max_lines - 11) :]]
    return "\n".join(lines)


def _target_name(arch: int) -> str:
    # Triton compiles capability >= 90 for the arch-specific target (sm_90a: wgmma, TMA).
    return sm_arch(f"{arch}a" if arch >= 90 else arch)


def compile_for_target(
    kernel_fn: Any,
    signature: Mapping[str, str],
    constexprs: Mapping[str, Any] | None = None,
    arch: int = 90,
    *,
    num_warps: int = 4,
    num_stages: int = 3,
    divisible_by_16: Sequence[str] = (),
) -> CompileReport:
    """Compile one Triton kernel for ``sm_<arch>`` without a GPU and report its resources.

    ``signature`` maps each runtime parameter to a Triton type (constexpr parameters may be left
    out: they are filled in from ``constexprs``). Failures (frontend errors, ptxas errors, missing
    parameters) become ``ok=False`` reports.

    Example::

        rep = compile_for_target(add_kernel, {"x": "*fp32", "y": "*fp32", "n": "i32"}, {"BLOCK": 1024})
        rep.n_regs, rep.n_spills, rep.shared_bytes
    """
    constexprs = dict(constexprs or {})
    name = getattr(kernel_fn, "__name__", "kernel")
    target_name = _target_name(arch)
    try:
        import triton
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as err:
        return CompileReport.failure(f"triton is not installed: {err}", arch=target_name, compiler="triton")
    compiler = f"triton {triton.__version__}"
    kernel_fn = _unwrap(kernel_fn)
    if not _is_jit(kernel_fn):
        why = " (TRITON_INTERPRET is set in this process)" if interpreter_active() else ""
        return CompileReport.failure(
            f"{name} is not a @triton.jit JITFunction{why}", arch=target_name, compiler=compiler
        )
    arg_names = list(kernel_fn.arg_names)
    constexpr_names = {p.name for p in kernel_fn.params if p.is_constexpr}
    problems = [f"unknown parameter {k!r}" for k in [*signature, *constexprs] if k not in arg_names]
    problems += [f"no type for {a!r}" for a in arg_names if a not in signature and a not in constexpr_names]
    problems += [f"no value for constexpr {a!r}" for a in sorted(constexpr_names - set(constexprs))]
    problems += [
        f"divisibility hint for {a!r}, which is not a runtime parameter"
        for a in divisible_by_16
        if a not in signature
    ]
    if problems:
        return CompileReport.failure(
            f"bad spec for {name}: " + "; ".join(problems), arch=target_name, compiler=compiler
        )

    full_sig = {a: ("constexpr" if a in constexpr_names else signature[a]) for a in arg_names}
    aligned = {a for a, t in full_sig.items() if t.startswith("*")} | set(divisible_by_16)
    attrs = {(i,): [["tt.divisibility", 16]] for i, a in enumerate(arg_names) if a in aligned}
    src = ASTSource(kernel_fn, full_sig, constexprs=constexprs, attrs=attrs)
    options = {"num_warps": num_warps, "num_stages": num_stages, "enable_fp_fusion": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Triton 3.9's FP-fusion default notice
            compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)
    except Exception as err:  # failure is data: CompilationError, PTXASError, MLIR errors
        return CompileReport.failure(_describe(err), arch=target_name, compiler=compiler)

    ptx = compiled.asm.get("ptx", "")
    cubin = compiled.asm.get("cubin", b"")
    try:
        ptxas_log = _ptxas_resources(ptx, arch, enable_fp_fusion=True)
    except (OSError, subprocess.SubprocessError) as err:
        log.warning("could not re-run ptxas for %s: %s", name, err)
        ptxas_log = ""
    report = report_from_ptxas(
        ptxas_log,
        arch=target_name,
        compiler=compiler,
        ptx_bytes=len(ptx.encode()),
        cubin_bytes=len(cubin),
        extra_shared_bytes=int(compiled.metadata.shared),
    )
    if not report.functions:
        return CompileReport.failure(
            "compiled, but ptxas -v gave no resource figures",
            arch=target_name,
            compiler=compiler,
            log_text=ptxas_log,
        )
    return report


def check_solution(module: ModuleType, arch: int = 90) -> SolutionCompileReport:
    """Compile every declared spec of a solution module for ``sm_<arch>``; list kernels without one.

    Only entry kernels the solution itself defines must have a spec; helpers called from kernels
    (``@triton.jit`` functions that do not read ``tl.program_id``) are compiled inside their callers.
    Only module-level kernels are found: the check is a build gate, not a security boundary (the
    verifier's strict policy and comparisons are).
    """
    target_name = _target_name(arch)
    try:
        specs = read_specs(module)
        kernels = find_jit_kernels(module)
    except (TypeError, KeyError, ValueError) as err:
        return SolutionCompileReport(arch=target_name, results=(), error=str(err))
    if not kernels and interpreter_active():
        return SolutionCompileReport(
            arch=target_name,
            results=(),
            error="TRITON_INTERPRET is set: compile checks need a process without it",
        )
    results = tuple(
        (
            spec.name,
            compile_for_target(
                spec.kernel,
                spec.signature,
                spec.constexprs,
                arch,
                num_warps=spec.num_warps,
                num_stages=spec.num_stages,
                divisible_by_16=spec.divisible_by_16,
            ),
        )
        for spec in specs
    )
    covered = {id(s.kernel) for s in specs}
    module_name = module.__name__
    launched = [
        k for k in kernels if getattr(k.fn, "__module__", module_name) == module_name and _is_entry(k)
    ]
    unchecked = tuple(k.__name__ for k in launched if id(k) not in covered)
    error = "" if specs else f"solution declares no {SPECS_ATTRIBUTE}"
    return SolutionCompileReport(arch=target_name, results=results, unchecked=unchecked, error=error)


def _is_entry(kernel: Any) -> bool:
    """A kernel meant to be launched from the host: its body reads ``tl.program_id``.

    Device helpers (``@triton.jit`` functions called from kernels) normally take their block
    coordinates as arguments and are compiled inside their callers, so they need no spec.
    """
    src = getattr(kernel, "src", "") or ""
    return "tl.program_id" in src or "program_id(" in src


def load_solution_module(path: str | os.PathLike[str], name: str | None = None) -> ModuleType:
    """Import a solution file under a unique module name (so two solutions never share one)."""
    path = Path(path)
    mod_name = name or f"karena_solution_{path.stem}_{uuid.uuid4().hex[:8]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    # Triton reads kernel sources through inspect/linecache, which needs the module registered.
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return module


def compile_check_file(path: str | os.PathLike[str], arch: int = 90) -> SolutionCompileReport:
    """Load a solution file (in this process: TRITON_INTERPRET must be unset) and compile-check it."""
    return check_solution(load_solution_module(path), arch)


def op_compile_check(msg: dict[str, Any]) -> dict[str, Any]:
    """Worker op ``compile_check`` (candidate role): compile a solution's kernels for a GPU target."""
    report = compile_check_file(msg["path"], int(msg.get("arch", 90)))
    return {
        "ok": report.ok,
        "error": None,
        "compile_error": report.error,
        "unchecked": list(report.unchecked),
        "kernels": [
            {"name": name, "ok": r.ok, "error": r.error, "n_regs": r.n_regs, "n_spills": r.n_spills}
            for name, r in report.results
        ],
    }
