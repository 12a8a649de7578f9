"""The backend interface: the pipeline asks the solution's backend, never branches on its name."""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from kernelarena import pipeline
from kernelarena.backends.interface import Backend, ExtraChecks, backend
from kernelarena.tasks.loader import load_task
from kernelarena.types import CheckOptions, Solution

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

SRC = Path(__file__).resolve().parents[2] / "src/kernelarena"


def test_every_detected_backend_has_an_implementation() -> None:
    for name in ("torch", "c", "numba", "triton", "cuda"):
        be = backend(name)
        assert be.name == name and isinstance(be.available(), bool)
        assert be.build_key(CheckOptions())["backend"] == name
    with pytest.raises(ValueError):
        backend("fortran")
    assert backend("c").detect("import ctypes\n")
    assert backend("triton").detect("import triton\n@triton.jit\ndef k(x):\n    pass\n")


def test_triton_on_a_cpu_is_prepared_for_the_interpreter_and_not_timed() -> None:
    tri = backend("triton")
    cpu, gpu = CheckOptions(), CheckOptions(device="cuda")
    assert tri.timing_skipped(cpu) and tri.timing_skipped(gpu) is None
    assert tri.build_key(cpu)["interpreter"] is True and tri.build_key(gpu)["interpreter"] is False
    assert backend("c").timing_skipped(cpu) is None


def test_api_and_pipeline_do_not_branch_on_a_backend_name() -> None:
    # Regression (issue 11): api.py special-cased Triton; backend knowledge lives in backends/.
    for module in ("api.py", "pipeline.py"):
        tree = ast.parse((SRC / module).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {"kernelarena.backends.triton", "kernelarena.verify.triton_cpu"} & imported, module
        compared = [
            n for n in ast.walk(tree)
            if isinstance(n, ast.Compare) and isinstance(n.left, ast.Attribute) and n.left.attr == "backend"
        ]  # fmt: skip
        assert not compared, module  # no `sol.backend == "triton"`
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not any("triton" in n.lower() or "interpret" in n.lower() for n in names), module


@dataclass(frozen=True)
class _Rejecting(Backend):
    name: str = "fake"

    def extra_checks(self, solution: Solution, options: CheckOptions) -> ExtraChecks:
        return ExtraChecks(reasons=("fake: does not build for the target",), flags=("fake-flag",))


@pytest.mark.cpu
@pytest.mark.timeout(300)
def test_a_backends_extra_checks_reach_the_verdict(data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "backend_of", lambda sol: _Rejecting())
    full = load_task(data / "tasks" / "scaled_tanh.py", max_bytes=None)
    task = replace(full, variants=full.variants[:1])  # one shape: the verdict's plumbing is tested
    sol = Solution(data / "solutions" / "scaled_tanh_c.py", "h", "c")
    v = pipeline.verify_any(task, sol, CheckOptions.quick())
    assert not v.passed and "fake: does not build for the target" in v.reasons and "fake-flag" in v.flags
