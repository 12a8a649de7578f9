"""Every Triton solution on a real GPU, at every shape variant of its task, against float64.

The CPU suite only proves the kernels under the interpreter (numpy semantics); this checks the
compiled kernels: masks, vector widths, fp64 paths, split-K merges at full size. Skipped without CUDA.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

ROOT = Path(__file__).resolve().parents[2]
TASK_DIR = ROOT / "src" / "kernelarena" / "tasks" / "suites" / "llm"
SOLUTION_DIR = ROOT / "src" / "kernelarena" / "solutions" / "triton"
SOLUTIONS = sorted(p.stem for p in SOLUTION_DIR.glob("*.py") if p.name != "__init__.py")


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _as_tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, tuple | list) else (x,)


@pytest.mark.parametrize("name", SOLUTIONS)
def test_solution_matches_float64_reference_on_gpu(name: str) -> None:
    task_path = TASK_DIR / f"{name}.py"
    if not task_path.exists():
        pytest.skip(f"no task file for {name}")
    task = _load(task_path, f"_gpu_task_{name}")
    sol = _load(SOLUTION_DIR / f"{name}.py", f"_gpu_sol_{name}")
    atol, rtol = float(getattr(task, "ATOL", 1e-5)), float(getattr(task, "RTOL", 1e-4))
    f64 = bool(getattr(task, "FLOAT64_REFERENCE", True))
    for vi, overrides in enumerate(getattr(task, "VARIANTS", None) or [{}]):
        for key, value in overrides.items():
            setattr(task, key, value)
        torch.manual_seed(vi)
        init = task.get_init_inputs()
        model = task.Model(*init)
        with torch.no_grad():
            for p in [*model.parameters(), *model.buffers()]:
                if p.is_floating_point() and p.numel():
                    p.mul_(torch.rand_like(p) + 0.5)
        inputs = [x.cuda() if isinstance(x, torch.Tensor) else x for x in task.get_inputs()]
        new = sol.ModelNew(*init)
        new.load_state_dict(model.state_dict())
        new = new.cuda()
        with torch.no_grad():
            want_types = [(o.dtype, o.shape) for o in _as_tuple(model.cuda()(*inputs))]
            ref_model = model.double() if f64 else model
            ref_in = [
                x.double() if f64 and isinstance(x, torch.Tensor) and x.is_floating_point() else x
                for x in inputs
            ]
            refs = _as_tuple(ref_model(*ref_in))
            outs = _as_tuple(new(*inputs))
        torch.cuda.synchronize()
        assert len(outs) == len(refs), overrides
        for j, (o, r, (dtype, shape)) in enumerate(zip(outs, refs, want_types)):
            where = f"{name} variant {overrides} output {j}"
            assert type(o) is torch.Tensor and o.is_cuda and o.dtype == dtype and o.shape == shape, where
            if not r.is_floating_point():
                assert torch.equal(o, r), f"{where}: {(o != r).sum().item()} integer elements differ"
                continue
            finite = torch.isfinite(r)
            same = (o.double() == r) | (torch.isnan(o) & torch.isnan(r))
            assert bool(same[~finite].all()), f"{where}: non-finite values differ from the reference"
            if not bool(finite.any()):
                continue
            rd, od = r.double()[finite], o.double()[finite]
            bound = atol * rd.pow(2).mean().sqrt() + rtol * rd.abs()
            err = (od - rd).abs()
            assert bool(torch.isfinite(od).all()), f"{where}: non-finite values where the reference is finite"
            assert (err <= bound).all(), (
                f"{where}: max error {err.max().item():.3g}, worst ratio {(err / bound).max().item():.3g}"
            )
