"""Triton solutions: correct under the interpreter on CPU, and compilable for sm_90 (H100) here.

The interpreter must be switched on before any kernel is defined, so the correctness checks run in
one subprocess (this file, run as a script with ``--worker``) with ``TRITON_INTERPRET=1``; the
compile checks run in the pytest process, where ``@triton.jit`` gives real JITFunctions.

Each solution is compared with its task's ``Model`` evaluated in float64 on a tiny variant (the
interpreter runs numpy per block, so sizes stay small), after re-drawing the reference's floating
parameters the way the harness does, with the harness' scale-aware tolerance. Inputs are also
checked scaled by 8 where the task allows perturbation.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.cpu

ROOT = Path(__file__).resolve().parents[2]
TASK_DIR = ROOT / "src" / "kernelarena" / "tasks" / "suites" / "llm"
SOLUTION_DIR = ROOT / "src" / "kernelarena" / "solutions" / "triton"

# Tiny variants (module-global overrides) per task: odd sizes to exercise every mask and tail.
TINY: dict[str, list[dict[str, Any]]] = {
    "rmsnorm": [{"rows": 5, "dim": 37}, {"rows": 2, "dim": 9000}],
    "add_rmsnorm": [{"rows": 5, "dim": 37}, {"rows": 2, "dim": 9000}],
    "swiglu": [{"tokens": 3, "hidden": 37}, {"tokens": 2, "hidden": 2100}],
    "decode_attention": [
        {"batch": 2, "heads": 3, "seq": 37, "head_dim": 37},
        # 2 splits of 3 and 2 BLOCK_N tiles: exercises the online rescale inside a split and the merge
        {"batch": 1, "heads": 2, "seq": 300, "head_dim": 16, "_solution": {"TARGET_PROGRAMS": 4}},
    ],
    "flat_gemm_decode": [
        {"tokens": 3, "in_features": 37, "out_features": 5},
        {"tokens": 13, "in_features": 300, "out_features": 77},  # 3 BLOCK_K steps
    ],
    "w4a16_gemv": [
        {"tokens": 2, "in_features": 128, "out_features": 37, "group_size": 128},
        {"tokens": 6, "in_features": 192, "out_features": 19, "group_size": 64},
    ],
    "topk_softmax_router": [
        {"tokens": 5, "hidden": 37, "num_experts": 6, "top_k": 2},
        {"tokens": 7, "hidden": 65, "num_experts": 60, "top_k": 4},
    ],
    "rope": [
        {"batch": 1, "seq": 5, "q_heads": 5, "kv_heads": 1, "head_dim": 80},
        {"batch": 2, "seq": 3, "q_heads": 9, "kv_heads": 3, "head_dim": 6},
    ],
    "fused_linear_cross_entropy": [
        {"tokens": 37, "d": 33, "vocab": 101, "num_ignored": 3},
        # one vocabulary split of 4 BLOCK_V tiles: the online log-sum-exp across tiles
        {"tokens": 20, "d": 40, "vocab": 230, "num_ignored": 2, "_solution": {"TARGET_PROGRAMS": 1}},
        {"tokens": 5, "d": 40, "vocab": 13, "num_ignored": 5},  # every target ignored: NaN, as the reference
    ],
    "moba_block_sparse_attention": [
        {"batch": 1, "heads": 2, "seq": 27, "head_dim": 16, "block_size": 6, "top_k": 3},
        {"batch": 1, "heads": 1, "seq": 21, "head_dim": 37, "block_size": 4, "top_k": 6},
        {"batch": 1, "heads": 1, "seq": 9, "head_dim": 8, "block_size": 16, "top_k": 2},
    ],
}
SOLUTIONS = sorted(TINY)


def _load(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _task_variants(task: Any, name: str) -> list[dict[str, Any]]:
    """The tiny variants, or (for a task added later) the task's smallest declared variant."""
    if TINY.get(name):
        return TINY[name]
    variants = getattr(task, "VARIANTS", None) or [{}]
    return [min(variants, key=lambda v: math.prod(x for x in v.values() if isinstance(x, int)) or 1)]


def _randomize(model: Any, torch: Any, gen: Any) -> None:
    """Re-draw floating parameters and buffers as the harness does: p * U(0.5, 1.5) + 0.1 * rms(p) * N(0, 1)."""
    if getattr(model, "RANDOMIZE_PARAMS", True) is False:
        return
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            if t.is_floating_point() and t.numel():
                rms = t.double().pow(2).mean().sqrt().item() or 1.0
                u = torch.rand(t.shape, generator=gen, dtype=torch.float64) + 0.5
                t.copy_(t.double() * u + 0.1 * rms * torch.randn(t.shape, generator=gen, dtype=torch.float64))


def _check_one(name: str) -> dict[str, Any]:
    """Run solution ``name`` against its task under the interpreter; returns a JSON-able result."""
    import torch

    task_path = TASK_DIR / f"{name}.py"
    if not task_path.exists():
        return {"status": "no-task"}
    t0 = time.time()
    task = _load(task_path, f"_task_{name}")
    sol = _load(SOLUTION_DIR / f"{name}.py", f"_sol_{name}")
    atol = float(getattr(task, "ATOL", 1e-5))
    rtol = float(getattr(task, "RTOL", 1e-4))
    f64 = bool(getattr(task, "FLOAT64_REFERENCE", True))
    results = []
    for vi, overrides in enumerate(_task_variants(task, name)):
        overrides = dict(overrides)
        # "_solution": module constants of the solution to change for this variant, so that tiny
        # shapes still take the multi-tile paths (e.g. fewer split-K programs, several tiles each)
        sol_overrides = overrides.pop("_solution", {})
        saved = {k: getattr(sol, k) for k in sol_overrides}
        for k, v in sol_overrides.items():
            setattr(sol, k, v)
        for k, v in overrides.items():
            setattr(task, k, v)
        for scale in (1.0, 8.0):
            torch.manual_seed(1234 + vi)
            gen = torch.Generator().manual_seed(99 + vi)
            init = task.get_init_inputs()
            model = task.Model(*init)
            if getattr(task, "RANDOMIZE_PARAMS", True):
                _randomize(model, torch, gen)
            inputs = task.get_inputs()
            perturb = getattr(task, "PERTURB_INPUTS", None)
            if scale != 1.0:
                idx = range(len(inputs)) if perturb is None else perturb
                if not list(idx):
                    continue
                inputs = [
                    (x * scale if (i in idx and isinstance(x, torch.Tensor) and x.is_floating_point()) else x)
                    for i, x in enumerate(inputs)
                ]
            new = sol.ModelNew(*init)
            new.load_state_dict(model.state_dict())
            with torch.no_grad():
                ref32 = model(*inputs)  # the output types a candidate must match
                ref_model = model.double() if f64 else model
                ref_in = [
                    x.double() if f64 and isinstance(x, torch.Tensor) and x.is_floating_point() else x
                    for x in inputs
                ]
                ref = ref_model(*ref_in)
                before = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
                out = new(*inputs)
            refs = ref if isinstance(ref, tuple | list) else (ref,)
            refs32 = ref32 if isinstance(ref32, tuple | list) else (ref32,)
            outs = out if isinstance(out, tuple | list) else (out,)
            errors = []
            for x, b in zip(inputs, before):
                if isinstance(x, torch.Tensor) and not torch.equal(x, b):
                    errors.append("an input was modified")
            if len(outs) != len(refs):
                errors.append(f"{len(outs)} outputs, expected {len(refs)}")
            worst = 0.0
            for j, (o, r, r32) in enumerate(zip(outs, refs, refs32)):
                want_dtype = r32.dtype
                if type(o) is not torch.Tensor or o.shape != r.shape or o.dtype != want_dtype:
                    errors.append(
                        f"output {j}: {type(o).__name__} {getattr(o, 'shape', None)} {getattr(o, 'dtype', None)}, expected {tuple(r.shape)} {want_dtype}"
                    )
                    continue
                if not r.is_floating_point():
                    if not torch.equal(o, r):
                        errors.append(
                            f"output {j}: {(o != r).sum().item()} of {r.numel()} integer elements differ"
                        )
                    continue
                # non-finite values only where the reference has the same ones; the rest within tolerance
                finite = torch.isfinite(r)
                same = (o.double() == r) | (torch.isnan(o) & torch.isnan(r))
                if not bool(same[~finite].all()):
                    errors.append(f"output {j}: non-finite values differ from the reference")
                if not bool(finite.any()):
                    continue
                rd, od = r.double()[finite], o.double()[finite]
                rms = rd.pow(2).mean().sqrt().item()
                bound = atol * rms + rtol * rd.abs()
                err = (od - rd).abs()
                if not bool(torch.isfinite(od).all()) or bool((err > bound).any()):
                    errors.append(f"output {j}: max error {err.max().item():.3g} (rms of ref {rms:.3g})")
                worst = max(worst, float((err / bound.clamp_min(1e-300)).max()))
            results.append({"variant": overrides, "scale": scale, "errors": errors, "worst_ratio": worst})
        for k, v in saved.items():
            setattr(sol, k, v)
    ok = all(not r["errors"] for r in results)
    return {"status": "pass" if ok else "fail", "results": results, "seconds": time.time() - t0}


@pytest.fixture(scope="module")
def interpreter_results() -> dict[str, Any]:
    env = {**os.environ, "TRITON_INTERPRET": "1", "TRITON_DEFAULT_FP_FUSION": "1"}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", *SOLUTIONS],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", SOLUTIONS)
def test_solution_correct_under_interpreter(name: str, interpreter_results: dict[str, Any]) -> None:
    res = interpreter_results[name]
    if res["status"] in ("no-task", "no-solution"):
        pytest.skip(f"{name}: {res['status']}")
    assert res["status"] == "pass", json.dumps(res, indent=1)[:4000]


@pytest.mark.parametrize("name", SOLUTIONS)
def test_solution_compiles_for_sm90(name: str, record_property: Any) -> None:
    from kernelarena.backends.triton import check_solution, load_solution_module

    path = SOLUTION_DIR / f"{name}.py"
    if not path.exists():
        pytest.skip(f"no Triton solution for {name}")
    if os.environ.get("TRITON_INTERPRET"):
        pytest.skip("TRITON_INTERPRET is set in the test process")
    rep = check_solution(load_solution_module(path))
    assert not rep.error, rep.error
    assert not rep.unchecked, f"kernels without TRITON_COMPILE_SPECS: {rep.unchecked}"
    for kernel, r in rep.results:
        assert r.ok, f"{kernel}: {r.error}"
        assert r.n_regs > 0 and r.cubin_bytes > 0 and r.ptx_bytes > 0
        assert r.shared_bytes <= 227 * 1024, (
            f"{kernel} needs {r.shared_bytes} B of shared memory (H100: 227 KiB)"
        )
        record_property(f"{kernel}_regs", r.n_regs)
        record_property(f"{kernel}_spill_bytes", r.n_spills)
        if r.n_spills:
            warnings.warn(
                f"{name}.{kernel} spills {r.n_spills} bytes on sm_90 ({r.n_regs} registers)", stacklevel=1
            )
    assert rep.ok


def test_compile_report_catches_bad_kernels() -> None:
    """A spec that misses a parameter, and a kernel that does not type-check, give ok=False with a reason."""
    import triton
    import triton.language as tl

    from kernelarena.backends.triton import compile_for_target

    if os.environ.get("TRITON_INTERPRET"):
        pytest.skip("TRITON_INTERPRET is set in the test process")

    @triton.jit
    def scale_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
        offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
        tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=offs < n) * 2.0, mask=offs < n)

    good = compile_for_target(scale_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "n": "i32"}, {"BLOCK": 256})
    assert good.ok and good.n_regs > 0 and good.n_spills == 0 and good.arch == "sm_90a"
    missing = compile_for_target(scale_kernel, {"x_ptr": "*fp32", "n": "i32"}, {"BLOCK": 256})
    assert not missing.ok and "y_ptr" in missing.error
    not_pow2 = compile_for_target(
        scale_kernel, {"x_ptr": "*fp32", "y_ptr": "*fp32", "n": "i32"}, {"BLOCK": 100}
    )
    assert not not_pow2.ok and "power of 2" in not_pow2.error


def test_interpreter_env_and_flag() -> None:
    from kernelarena.backends.triton import INTERPRETER_FLAG, interpreter_env, verdict_flags

    assert interpreter_env()["TRITON_INTERPRET"] == "1"
    assert INTERPRETER_FLAG == "verified-under-triton-interpreter"
    assert verdict_flags("cpu") == [INTERPRETER_FLAG]
    if not os.environ.get("TRITON_INTERPRET"):
        assert verdict_flags("cuda") == []


def test_backend_module_import_is_light() -> None:
    """Importing the registry and the Triton backend must load neither torch nor triton."""
    code = (
        "import sys, kernelarena.backends.registry, kernelarena.backends.triton, kernelarena.timing.cuda;"
        "bad = [m for m in ('torch', 'triton', 'numba') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_detect_backend_on_solutions() -> None:
    from kernelarena.backends.registry import detect_backend, get_backend

    for path in SOLUTION_DIR.glob("*.py"):
        if path.name != "__init__.py":
            assert detect_backend(path.read_text()) == "triton", path.name
    assert detect_backend("import torch\n# uses triton.jit? no\ndef f(x): return x.sum()\n") == "torch"
    assert (
        detect_backend("from torch.utils.cpp_extension import load_inline\nm = load_inline('m', '')\n")
        == "cuda"
    )
    assert detect_backend("import numba as nb\n@nb.njit\ndef f(x): return x\n") == "numba"
    assert detect_backend("from kernelarena.backends.c import load_library\n") == "c"
    assert detect_backend("import triton as T\n@T.jit\ndef k(x): pass\n") == "triton"
    assert get_backend("triton").INTERPRETER_FLAG == "verified-under-triton-interpreter"


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--worker":
    # Runs in a subprocess with TRITON_INTERPRET=1; prints one JSON line with every result.
    out: dict[str, Any] = {}
    for solution in sys.argv[2:]:
        if not (SOLUTION_DIR / f"{solution}.py").exists():
            out[solution] = {"status": "no-solution"}
            continue
        try:
            out[solution] = _check_one(solution)
        except Exception as exc:  # failure is data: report it per solution and go on
            import traceback

            out[solution] = {
                "status": "fail",
                "error": f"{type(exc).__name__}: {exc}",
                "trace": traceback.format_exc()[-3000:],
            }
    print(json.dumps(out))
