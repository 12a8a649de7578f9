"""The normalization templates (rmsnorm, layernorm, add_rmsnorm), the only source of the built-in
norm solutions: ``DEFAULT`` is in the space and renders the ``omp simd`` reduction on
``karena/vmath.h`` (the former hand-written kernels), a chains config renders ``karena/rownorm.h``'s
reduction, both build with ``SIMD_FLAGS``; and, for both reduction forms, the streaming output pass
(outputs of 8 MiB and more) is right when the output rows are not vector-aligned (scalar peel,
streamed body, tail), which the tasks' torch-allocated outputs never exercise."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from kernelarena.backends.rendered import default_config, load_rendered
from kernelarena.search.templates import load_template

pytestmark = pytest.mark.cpu

NORMS = ["rmsnorm", "layernorm", "add_rmsnorm"]
# 1025 x 2049 floats = 8.0 MiB + 12 KiB: just over the streaming threshold, odd row length (a tail
# after the chains' whole blocks)
ROWS, DIM = 1025, 2049
# explicit chains in double, rows in blocks of 8 (rmsnorm: with its software prefetch)
CHAINS: dict[str, Any] = {"reduce": "16x2", "acc": "double", "rows_block": 8, "schedule": "static"}


def _config(name: str, form: str) -> dict[str, Any]:
    t = load_template(name)
    if form == "default":
        return dict(t.module.DEFAULT)
    cfg = {**t.module.DEFAULT, **CHAINS}
    if "prefetch" in cfg:
        cfg["prefetch"] = 512
    assert t.is_valid(cfg)
    return cfg


@pytest.mark.parametrize("name", NORMS)
def test_default_is_the_simd_kernel_and_chains_use_rownorm(name: str) -> None:
    t = load_template(name)
    assert t.is_valid(t.module.DEFAULT) and default_config(t) == t.module.DEFAULT
    src = t.render(t.module.DEFAULT)
    assert "flags=SIMD_FLAGS" in src and '#include "karena/vmath.h"' in src
    assert "#pragma omp simd reduction(+:ss)" in src and 'karena/rownorm.h"' not in src
    chains = t.render(_config(name, "chains"))
    assert "flags=SIMD_FLAGS" in chains and '#include "karena/rownorm.h"' in chains
    assert "KR_SUM(ss, dim, " in chains and "omp simd reduction" not in chains


def _out(shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A (ROWS, DIM) output view starting ``shift`` floats into its buffer, and the buffer."""
    buf = torch.full((ROWS * DIM + 16,), float("nan"))
    return buf[shift : shift + ROWS * DIM].view(ROWS, DIM), buf


@pytest.mark.parametrize("form", ["default", "chains"])
@pytest.mark.parametrize("shift", [0, 3])
def test_streamed_output_rows_off_vector_alignment(shift: int, form: str) -> None:
    g = torch.Generator().manual_seed(shift)
    x = torch.randn(ROWS, DIM, generator=g) * 3 + 1
    res = torch.randn(ROWS, DIM, generator=g)
    w = torch.randn(DIM, generator=g)
    b = torch.randn(DIM, generator=g)
    eps = 1e-6

    def rms(v: torch.Tensor) -> torch.Tensor:
        return v * torch.rsqrt(v.double().pow(2).mean(-1, keepdim=True) + eps).float() * w

    rms_lib = load_rendered("rmsnorm", _config("rmsnorm", form))._LIB
    y, _ = _out(shift)
    rms_lib.rmsnorm_f32(x.data_ptr(), w.data_ptr(), y.data_ptr(), ROWS, DIM, eps)
    torch.testing.assert_close(y, rms(x), rtol=1e-5, atol=1e-5)

    ln_lib = load_rendered("layernorm", _config("layernorm", form))._LIB
    y, _ = _out(shift)
    ln_lib.layernorm_f32(x.data_ptr(), w.data_ptr(), b.data_ptr(), y.data_ptr(), ROWS, DIM, eps)
    ref = torch.nn.functional.layer_norm(x.double(), (DIM,), w.double(), b.double(), eps).float()
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)

    arms_lib = load_rendered("add_rmsnorm", _config("add_rmsnorm", form))._LIB
    # h with the same misalignment as y (both streamed) and one float further (neither streamed)
    for h_shift in (shift, shift + 1):
        y, _ = _out(shift)
        h, _ = _out(h_shift)
        arms_lib.add_rmsnorm_f32(
            x.data_ptr(), res.data_ptr(), w.data_ptr(), y.data_ptr(), h.data_ptr(), ROWS, DIM, eps
        )
        torch.testing.assert_close(h, x + res, rtol=0, atol=0)
        torch.testing.assert_close(y, rms(x + res), rtol=1e-5, atol=1e-5)
