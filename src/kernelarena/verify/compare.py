"""Output comparison: structure, exact type/shape/dtype, non-finite positions, scale-aware tolerance.

The tolerance for element i is ``atol_eff * scale + rtol * |ref_i|`` where ``scale`` is the RMS of
the reference output, so an all-zeros (or tiny) output cannot slip under an absolute ``atol``.
``atol_eff`` is the larger of the task's (or dtype default) ``atol`` and 4x the reference
library's own error against float64, measured on the same inputs: a candidate is held to what torch
itself achieves, not to an arbitrary constant, and cannot compute in a lower precision.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# (atol relative to output RMS, rtol) per output dtype
DEFAULT_TOLERANCES: dict[str, tuple[float, float]] = {
    "torch.float64": (1e-10, 1e-8),
    "torch.float32": (1e-5, 1e-4),
    "torch.float16": (2e-3, 2e-3),
    "torch.bfloat16": (1.6e-2, 1.6e-2),
}
LIBRARY_ERROR_FACTOR = 4.0


@dataclass(frozen=True)
class Comparison:
    ok: bool
    reason: str | None = None
    max_abs_err: float | None = None
    max_rel_err: float | None = None  # max |err| / (atol_eff * scale + rtol * |ref|): <= 1 passes
    tolerance: str | None = None


def _flatten(value: Any, path: str = "output") -> list[tuple[str, Any]]:
    if isinstance(value, list | tuple):
        out = []
        for i, v in enumerate(value):
            out += _flatten(v, f"{path}[{i}]")
        return out
    return [(path, value)]


def _structure(value: Any) -> Any:
    import torch

    if isinstance(value, list | tuple):
        return (type(value).__name__, [_structure(v) for v in value])
    return "tensor" if isinstance(value, torch.Tensor) else type(value).__name__


def compare(
    out: Any,
    ref: Any,
    native: Any,
    *,
    atol: float | None = None,
    rtol: float | None = None,
) -> Comparison:
    """Compare a candidate's output with the reference (float64 or native) and the native output.

    ``native`` (the reference computed in the task's own dtype) fixes the expected dtypes and
    measures the library's own error; pass ``ref is native`` when no float64 reference exists.
    """
    import torch

    if _structure(out) != _structure(native):
        return Comparison(
            False, f"output structure {_describe(out)} does not match the reference's {_describe(native)}"
        )
    worst = Comparison(True, max_abs_err=0.0, max_rel_err=0.0)
    for (path, o), (_, r), (_, n) in zip(_flatten(out), _flatten(ref), _flatten(native), strict=True):
        if isinstance(n, torch.Tensor):
            res = _compare_tensor(path, o, r, n, atol, rtol)
        else:
            res = _compare_scalar(path, o, n)
        if not res.ok:
            return res
        if (res.max_rel_err or 0) >= (worst.max_rel_err or 0):
            worst = res
    return worst


def _describe(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return f"tensor{tuple(value.shape)}"
    if isinstance(value, list | tuple):
        return f"{type(value).__name__} of {len(value)}"
    return type(value).__name__


def _compare_scalar(path: str, o: Any, n: Any) -> Comparison:
    if type(o) is not type(n):
        return Comparison(False, f"{path}: expected a {type(n).__name__}, got a {type(o).__name__}")
    if isinstance(n, float):
        if not (abs(o - n) <= 1e-6 * max(1.0, abs(n)) or (o != o and n != n)):
            return Comparison(False, f"{path}: {o!r} differs from the reference value")
    elif o != n:
        return Comparison(False, f"{path}: {o!r} differs from the reference value")
    return Comparison(True, max_abs_err=0.0, max_rel_err=0.0)


def _compare_tensor(path: str, o: Any, r: Any, n: Any, atol: float | None, rtol: float | None) -> Comparison:
    import torch

    if not isinstance(o, torch.Tensor):
        return Comparison(False, f"{path}: expected a torch.Tensor, got {type(o).__name__}")
    if tuple(o.shape) != tuple(n.shape):
        return Comparison(False, f"{path}: shape {tuple(o.shape)} != expected {tuple(n.shape)}")
    if o.dtype != n.dtype:
        return Comparison(False, f"{path}: dtype {o.dtype} != expected {n.dtype}")
    if o.numel() == 0:
        return Comparison(True, max_abs_err=0.0, max_rel_err=0.0)
    if not (n.is_floating_point() or n.is_complex()):
        bad = o != n
        count = int(bad.sum())
        if count:
            idx = tuple(int(i) for i in bad.nonzero()[0])
            return Comparison(
                False,
                f"{path}: {count} of {o.numel()} values differ (integer outputs must match exactly; "
                f"first at {list(idx)}: got {o[idx].item()}, expected {n[idx].item()})",
            )
        return Comparison(True, max_abs_err=0.0, max_rel_err=0.0, tolerance="exact")
    a_def, r_def = DEFAULT_TOLERANCES.get(str(n.dtype), (1e-5, 1e-4))
    atol_v = a_def if atol is None else atol
    rtol_v = r_def if rtol is None else rtol
    of, rf = o.reshape(-1), r.reshape(-1)
    nf = n.reshape(-1) if r is not n else None
    stats = _first_pass(of, rf, nf)
    if stats.mismatch_count:
        where = _unravel(stats.mismatch_at, o.shape)
        return Comparison(
            False,
            f"{path}: {stats.mismatch_count} non-finite value(s) where the reference differs "
            f"(first at {where}: got {stats.mismatch_got}, expected {stats.mismatch_expected})",
        )
    if stats.finite == 0:
        return Comparison(True, max_abs_err=0.0, max_rel_err=0.0)
    scale = math.sqrt(stats.sum_sq / stats.finite) or 1.0
    lib_err = stats.lib_abs_err / scale
    atol_eff = max(atol_v, LIBRARY_ERROR_FACTOR * lib_err)
    tol = f"atol {atol_eff:.2g} x rms {scale:.3g} + rtol {rtol_v:.2g}"
    if lib_err * LIBRARY_ERROR_FACTOR > atol_v:
        tol += f" (atol widened to 4x torch's own error {lib_err:.2g})"
    worst = _second_pass(of, rf, atol_eff * scale, rtol_v)
    if worst.ratio > 1.0:
        where = _unravel(worst.at, o.shape)
        return Comparison(
            False,
            f"{path}: {worst.count} of {o.numel()} elements outside tolerance (worst at {where}: got "
            f"{worst.got:.6g}, expected {worst.expected:.6g}; max abs err {worst.max_err:.3g}; tolerance {tol})",
            worst.max_err,
            worst.ratio,
            tol,
        )
    return Comparison(True, None, worst.max_err, worst.ratio, tol)


# Elements per chunk of the float64 comparison: the temporaries stay a few MiB whatever the output
# size, instead of several float64 copies of the whole output.
CHUNK_ELEMENTS = 1 << 20


def _chunks(numel: int) -> Iterator[tuple[int, int]]:
    for s in range(0, numel, CHUNK_ELEMENTS):
        yield s, min(numel, s + CHUNK_ELEMENTS)


def _unravel(flat_index: int, shape: Any) -> list[int]:
    import torch

    return [int(i) for i in torch.unravel_index(torch.as_tensor(int(flat_index)), tuple(shape))]


@dataclass
class _FirstPass:
    """Non-finite agreement, the reference's sum of squares and torch's own error, in one pass."""

    finite: int = 0
    sum_sq: float = 0.0
    lib_abs_err: float = 0.0
    mismatch_count: int = 0
    mismatch_at: int = 0
    mismatch_got: float = 0.0
    mismatch_expected: float = 0.0


def _all_finite(t: Any) -> bool:
    """Whether a float64 chunk holds only finite values: its sum is finite (no temporary tensor;
    isfinite costs a mask plus two temporaries), else the exact mask (the sum may overflow)."""
    import torch

    return math.isfinite(float(t.sum())) or bool(torch.isfinite(t).all())


def _ref_chunk(rf: Any, s: int, e: int, dtype: Any) -> Any:
    """The float64 reference for elements ``s:e``, with values beyond the output dtype's range
    replaced by the infinity that dtype gives them: a cumprod whose float64 reference reaches 1e39
    is inf in float32, and a float32 candidate returning inf there is right, not wrong."""
    import torch

    rc = rf[s:e].double()
    if dtype == torch.float64 or not dtype.is_floating_point:
        return rc
    big = torch.finfo(dtype).max
    lo, hi = torch.aminmax(rc)
    if -big <= float(lo) and float(hi) <= big:  # nothing out of range (False for a NaN)
        return rc
    cast = rc.to(dtype)
    over = torch.isinf(cast) & torch.isfinite(rc)
    if bool(over.any()):
        rc = torch.where(over, cast.double(), rc)
    return rc


def _first_pass(of: Any, rf: Any, nf: Any) -> _FirstPass:
    import torch

    st = _FirstPass()
    for s, e in _chunks(rf.numel()):
        oc, rc = of[s:e].double(), _ref_chunk(rf, s, e, of.dtype)
        ref_finite = _all_finite(rc)
        if not (ref_finite and _all_finite(oc)):
            r_fin, o_fin = torch.isfinite(rc), torch.isfinite(oc)
            # non-finite values only where the reference has them, and the same ones
            same = (oc == rc) | (oc.isnan() & rc.isnan())
            mismatch = (r_fin != o_fin) | (~r_fin & ~same)
            count = int(mismatch.sum())
            if count and not st.mismatch_count:
                i = int(mismatch.nonzero()[0, 0])
                st.mismatch_at, st.mismatch_got, st.mismatch_expected = s + i, oc[i].item(), rc[i].item()
            st.mismatch_count += count
        rk = rc if ref_finite else rc[torch.isfinite(rc)]
        st.finite += rk.numel()
        st.sum_sq += float(torch.dot(rk, rk))  # no temporary (rk is contiguous)
        if nf is not None and rk.numel():
            nk = nf[s:e].double()
            diff = (nk - rc).abs_() if rk is rc else (nk[torch.isfinite(rc)] - rk).abs_()
            st.lib_abs_err = max(st.lib_abs_err, float(diff.max()))
    return st


@dataclass
class _Worst:
    ratio: float = 0.0  # max |err| / allowed: <= 1 passes
    at: int = 0
    got: float = 0.0
    expected: float = 0.0
    max_err: float = 0.0
    count: int = 0  # elements outside tolerance


def _second_pass(of: Any, rf: Any, atol_abs: float, rtol: float) -> _Worst:
    import torch

    w = _Worst()
    for s, e in _chunks(rf.numel()):
        oc, rc = of[s:e].double(), _ref_chunk(rf, s, e, of.dtype)
        err = (oc - rc).abs_()
        ratio = err / rc.abs().mul_(rtol).add_(atol_abs)
        if not _all_finite(rc):  # positions where the reference is not finite were judged above
            fin = torch.isfinite(rc)
            ratio.masked_fill_(~fin, 0.0)
            err.masked_fill_(~fin, 0.0)
        w.count += int((ratio > 1.0).sum())
        w.max_err = max(w.max_err, float(err.max()))
        i = int(ratio.argmax())
        if s == 0 or float(ratio[i]) > w.ratio:
            w.ratio, w.at, w.got, w.expected = float(ratio[i]), s + i, oc[i].item(), rc[i].item()
    return w
