"""``karena/vmath.h`` against libm on every SIMD path this machine can run (AVX-512, AVX2 forced with
``-march=x86-64-v3``, generic with ``-march=x86-64-v2``): exp, log, tanh, sigmoid over a sweep of
the float line with -inf, nan, subnormal and huge inputs; reductions, partial loads, streaming
stores (tests/cpu/csrc/test_vmath.c does the comparison and exits non-zero on a failure)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kernelarena.backends import c, gemm_build

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(120)]

_TEST_C = Path(__file__).parent / "csrc" / "test_vmath.c"


@pytest.mark.parametrize("isa", gemm_build.runnable_paths())
def test_vmath_matches_libm(isa, tmp_path, monkeypatch):
    monkeypatch.setenv("KARENA_CPU_ISA", isa)
    # the solutions' flags for this path, minus the shared-library ones: an executable this time
    flags = [f for f in (*c.DEFAULT_FLAGS, *gemm_build.isa_flags()) if f not in ("-shared", "-fPIC")]
    exe = tmp_path / "test_vmath"
    subprocess.run(
        [
            "gcc",
            *flags,
            "-fno-math-errno",
            "-fno-trapping-math",
            f"-I{c.INCLUDE_DIR}",
            str(_TEST_C),
            "-o",
            str(exe),
            "-lm",
        ],
        check=True,
    )
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=100)
    lines = run.stdout.splitlines()
    assert run.returncode == 0, run.stdout + run.stderr
    assert all(line.startswith(isa + " ") for line in lines), lines  # the header took this path
    names = {line.split()[1] for line in lines}
    assert {"exp", "log", "tanh", "sigmoid", "exp_fast", "reductions/loads/rcp/stream"} <= names
