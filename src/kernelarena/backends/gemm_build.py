"""Build flags of the solutions that use the shared GEMM core (``#include "karena/gemm.h"``).

``KARENA_CPU_ISA`` forces a lower SIMD path than the machine's (avx2, generic) so each path can be
verified here; the header picks its register tile from the compiler's ISA macros.
"""

from __future__ import annotations

import functools
import platform
import subprocess

from kernelarena import settings
from kernelarena.backends.c import DEFAULT_FLAGS, INCLUDE_DIR

# A later -march wins over DEFAULT_FLAGS' -march=native: x86-64-v3 is exactly an AVX2+FMA machine
# (no AVX-512, AVX-VNNI or AMX, which -mno-avx512f alone would keep), x86-64-v2 one with SSE4.2.
_ISA_FLAGS: dict[str, tuple[str, ...]] = {
    "native": (),
    "avx512": (),
    "avx2": ("-march=x86-64-v3", "-mtune=native"),
    "generic": ("-march=x86-64-v2", "-mtune=native"),
}


def isa_flags() -> tuple[str, ...]:
    """Extra gcc flags for the path ``KARENA_CPU_ISA`` asks for (none for the machine's own)."""
    isa = settings.gemm_cpu_isa()
    if isa not in _ISA_FLAGS:
        raise ValueError(f"KARENA_CPU_ISA={isa!r}: expected one of {', '.join(_ISA_FLAGS)}")
    if platform.machine() not in ("x86_64", "AMD64"):
        return ()  # ARM and others: the native build already takes the generic vector path
    return _ISA_FLAGS[isa]


# PyTorch's own floating-point contract (it is built with -fno-math-errno -fno-trapping-math): lets gcc
# vectorize epilogues with sqrtf and selects; results, inf and nan are unchanged.
FLAGS: tuple[str, ...] = (*DEFAULT_FLAGS, "-fno-math-errno", "-fno-trapping-math", *isa_flags())

# Every other built-in C solution (vector math from ``karena/vmath.h``, loops gcc vectorizes): the same
# ISA choice, and gcc may use whole 512-bit registers where the path has them (it prefers 256 bits
# otherwise); on the avx2/generic paths the preference is moot.
SIMD_FLAGS: tuple[str, ...] = (*FLAGS, "-mprefer-vector-width=512")


@functools.cache
def simd_path(flags: tuple[str, ...] = FLAGS) -> str:
    """The SIMD path a build with ``flags`` takes here: ``karena/vmath.h``'s own ``KV_ISA``
    (``avx512``, ``avx2`` or ``generic``), read from the preprocessor; the bench record states it."""
    try:
        out = subprocess.run(
            ["gcc", *flags, f"-I{INCLUDE_DIR}", "-include", "karena/vmath.h", "-dM", "-E", "-x", "c", "/dev/null"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (gcc did not answer)"
    for line in out.splitlines():
        if line.startswith("#define KV_ISA "):
            return line.split(None, 2)[2].strip('"')
    return "unknown (vmath.h defines no KV_ISA)"


def runnable_paths() -> list[str]:
    """The SIMD paths this machine can run, lowest first (``generic``, then ``avx2`` and ``avx512`` where
    the machine's own build takes them): what the tests force one by one with ``KARENA_CPU_ISA``."""
    native = simd_path(DEFAULT_FLAGS)
    order = ["generic", "avx2", "avx512"]
    return order[: order.index(native) + 1] if native in order else ["generic"]
