"""The normalization templates (rmsnorm, layernorm, add_rmsnorm) as the built-in solutions render
them: ``DEFAULT`` is in the space, the files build with ``SIMD_FLAGS``, and the streaming output
pass of ``karena/rownorm.h`` (outputs of 8 MiB and more) is right when the output rows are not
vector-aligned (scalar peel, streamed body, tail), which the tasks' torch-allocated outputs never
exercise."""

from __future__ import annotations

import pytest
import torch

from kernelarena.backends.rendered import default_config, load_rendered
from kernelarena.search.templates import load_template

pytestmark = pytest.mark.cpu

NORMS = ["rmsnorm", "layernorm", "add_rmsnorm"]
# 1025 x 2049 floats = 8.0 MiB + 12 KiB: just over the streaming threshold, odd row length
ROWS, DIM = 1025, 2049


@pytest.mark.parametrize("name", NORMS)
def test_default_is_in_the_space_and_builds_with_simd_flags(name: str) -> None:
    t = load_template(name)
    assert t.is_valid(t.module.DEFAULT) and default_config(t) == t.module.DEFAULT
    src = t.render(t.module.DEFAULT)
    assert "flags=SIMD_FLAGS" in src and '#include "karena/rownorm.h"' in src


def _out(shift: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A (ROWS, DIM) output view starting ``shift`` floats into its buffer, and the buffer."""
    buf = torch.full((ROWS * DIM + 16,), float("nan"))
    return buf[shift : shift + ROWS * DIM].view(ROWS, DIM), buf


@pytest.mark.parametrize("shift", [0, 3])
def test_streamed_output_rows_off_vector_alignment(shift: int) -> None:
    g = torch.Generator().manual_seed(shift)
    x = torch.randn(ROWS, DIM, generator=g) * 3 + 1
    res = torch.randn(ROWS, DIM, generator=g)
    w = torch.randn(DIM, generator=g)
    b = torch.randn(DIM, generator=g)
    eps = 1e-6

    def rms(v: torch.Tensor) -> torch.Tensor:
        return v * torch.rsqrt(v.double().pow(2).mean(-1, keepdim=True) + eps).float() * w

    rms_lib = load_rendered("rmsnorm", load_template("rmsnorm").module.DEFAULT)._LIB
    y, _ = _out(shift)
    rms_lib.rms_rows(x.data_ptr(), w.data_ptr(), y.data_ptr(), ROWS, DIM, eps)
    torch.testing.assert_close(y, rms(x), rtol=1e-5, atol=1e-5)

    ln_lib = load_rendered("layernorm", load_template("layernorm").module.DEFAULT)._LIB
    y, _ = _out(shift)
    ln_lib.ln_rows(x.data_ptr(), w.data_ptr(), b.data_ptr(), y.data_ptr(), ROWS, DIM, eps)
    ref = torch.nn.functional.layer_norm(x.double(), (DIM,), w.double(), b.double(), eps).float()
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)

    arms_lib = load_rendered("add_rmsnorm", load_template("add_rmsnorm").module.DEFAULT)._LIB
    # h with the same misalignment as y (both streamed) and one float further (neither streamed)
    for h_shift in (shift, shift + 1):
        y, _ = _out(shift)
        h, _ = _out(h_shift)
        arms_lib.arms_rows(
            x.data_ptr(), res.data_ptr(), w.data_ptr(), y.data_ptr(), h.data_ptr(), ROWS, DIM, eps
        )
        torch.testing.assert_close(h, x + res, rtol=0, atol=0)
        torch.testing.assert_close(y, rms(x + res), rtol=1e-5, atol=1e-5)
