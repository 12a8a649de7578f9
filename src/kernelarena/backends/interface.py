"""The backend interface: what the pipeline asks of a solution's backend, in one place.

A backend answers five questions: does a source use it (``detect``), can it run here
(``available``), how must it be verified on this device (``prepare``: the task, options and worker
environment the verifier runs with, and whether it can be timed), what else must be checked beyond
running it (``extra_checks``: e.g. Triton's sm_90 compile on a CPU machine) and what its machine code
depends on besides the source (``build_key``, part of every cache key). ``api``/``pipeline`` call
these and never branch on a backend's name.

Importing this module loads no backend library; each method imports what it needs when called.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from kernelarena.types import CheckOptions, Solution, Task


@dataclass(frozen=True)
class Preparation:
    """How a solution is verified here: on which task (variants) and options, in which worker
    environment."""

    task: Task
    options: CheckOptions
    candidate_env: dict[str, str] | None = None


@dataclass(frozen=True)
class ExtraChecks:
    """What a backend checked beyond running the solution: reasons reject, flags inform."""

    reasons: tuple[str, ...] = ()
    flags: tuple[str, ...] = ()
    checked: tuple[str, ...] = ()
    not_checked: tuple[str, ...] = ()


def _dist_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "absent"


@dataclass(frozen=True)
class Backend:
    """Plain PyTorch (no build step); the base of the others."""

    name: str = "torch"

    def detect(self, source: str) -> bool:
        from kernelarena.backends.registry import detect_backend

        return detect_backend(source) == self.name

    def available(self) -> bool:
        return True

    def prepare(self, task: Task, options: CheckOptions) -> Preparation:
        return Preparation(task, options)

    def timing_skipped(self, options: CheckOptions) -> str | None:
        """Why a solution of this backend cannot be timed on ``options.device`` (None: it can)."""
        return None

    def extra_checks(self, solution: Solution, options: CheckOptions) -> ExtraChecks:
        return ExtraChecks()

    def build_key(self, options: CheckOptions) -> dict[str, Any]:
        return {"backend": self.name}

    def code_path(self, options: CheckOptions) -> str:
        """The code path a solution of this backend runs on here, stated in bench records
        (e.g. ``c/avx2``: the SIMD path the C build took on this machine)."""
        return self.name


@dataclass(frozen=True)
class CBackend(Backend):
    """C/OpenMP through gcc and ctypes (``kernelarena.backends.c``)."""

    name: str = "c"

    def available(self) -> bool:
        return shutil.which("gcc") is not None

    def build_key(self, options: CheckOptions) -> dict[str, Any]:
        from kernelarena.backends.c import compiler_version

        return {"backend": self.name, "gcc": compiler_version()}

    def code_path(self, options: CheckOptions) -> str:
        from kernelarena.backends.gemm_build import simd_path

        return f"c/{simd_path()}"


@dataclass(frozen=True)
class NumbaBackend(Backend):
    """``@numba.njit`` kernels over NumPy views (``kernelarena.backends.numba``)."""

    name: str = "numba"

    def available(self) -> bool:
        from kernelarena.backends import numba as nb

        return nb.available()

    def build_key(self, options: CheckOptions) -> dict[str, Any]:
        return {"backend": self.name, "numba": _dist_version("numba"), "llvmlite": _dist_version("llvmlite")}

    def code_path(self, options: CheckOptions) -> str:
        return "numba/host-cpu"  # LLVM compiles for the CPU it runs on


@dataclass(frozen=True)
class TritonBackend(Backend):
    """``@triton.jit`` kernels. On a CPU device they run under Triton's interpreter (small shapes,
    a long timeout) and are compiled for sm_90 as an extra check; they cannot be timed there."""

    name: str = "triton"

    def available(self) -> bool:
        return _dist_version("triton") != "absent"

    def _interpreted(self, options: CheckOptions) -> bool:
        return options.device == "cpu"

    def prepare(self, task: Task, options: CheckOptions) -> Preparation:
        if not self._interpreted(options):
            return Preparation(task, options)
        from kernelarena.backends.triton import interpreter_env
        from kernelarena.verify.triton_cpu import for_interpreter

        small_task, small_opts = for_interpreter(task, options)
        return Preparation(small_task, small_opts, interpreter_env())

    def timing_skipped(self, options: CheckOptions) -> str | None:
        if not self._interpreted(options):
            return None
        return (
            "timing skipped: a Triton solution on a CPU runs under the interpreter; "
            "time it with --device cuda on a GPU"
        )

    def extra_checks(self, solution: Solution, options: CheckOptions) -> ExtraChecks:
        if not self._interpreted(options):
            return ExtraChecks()
        from kernelarena.backends.triton import INTERPRETER_FLAG
        from kernelarena.verify.triton_cpu import compile_check

        reasons, flags = compile_check(solution, options)
        return ExtraChecks(
            reasons=tuple(reasons),
            flags=(INTERPRETER_FLAG, *flags),
            checked=("Triton kernels compiled for sm_90 (registers, spills)",),
            not_checked=("execution on a GPU (Triton ran under its CPU interpreter)",),
        )

    def code_path(self, options: CheckOptions) -> str:
        return "triton/interpreter" if self._interpreted(options) else "triton/gpu"

    def build_key(self, options: CheckOptions) -> dict[str, Any]:
        return {
            "backend": self.name,
            "triton": _dist_version("triton"),
            "interpreter": self._interpreted(options),
        }


@dataclass(frozen=True)
class CudaBackend(Backend):
    """CUDA C++ through ``load_inline``, NVRTC or CuPy (``kernelarena.backends.cuda``)."""

    name: str = "cuda"

    def available(self) -> bool:
        from kernelarena.backends.cuda import find_nvcc, nvrtc_available

        return find_nvcc() is not None or nvrtc_available()

    def build_key(self, options: CheckOptions) -> dict[str, Any]:
        return {"backend": self.name, "nvcc": _nvcc_version()}


@functools.cache
def _nvcc_version() -> str:
    from kernelarena.backends.cuda import find_nvcc, nvcc_version

    nvcc = find_nvcc()
    return nvcc_version(nvcc) if nvcc else "absent"


_BACKENDS: dict[str, type[Backend]] = {
    "torch": Backend,
    "c": CBackend,
    "numba": NumbaBackend,
    "triton": TritonBackend,
    "cuda": CudaBackend,
}


@functools.cache
def backend(name: str) -> Backend:
    """The backend object of ``name`` (as ``registry.detect_backend`` names them)."""
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(_BACKENDS)}")
    return _BACKENDS[name]()


def backend_of(solution: Solution) -> Backend:
    return backend(solution.backend)
