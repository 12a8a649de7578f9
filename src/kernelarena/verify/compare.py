"""Output comparison: structure, exact type/shape/dtype, non-finite positions, scale-aware tolerance.

The tolerance for element i is ``atol_eff * scale + rtol * |ref_i|`` where ``scale`` is the RMS of
the reference output, so an all-zeros (or tiny) output cannot slip under an absolute ``atol``.
``atol_eff`` is the larger of the task's (or dtype default) ``atol`` and 4x the reference
library's own error against float64, measured on the same inputs: a candidate is held to what torch
itself achieves, not to an arbitrary constant, and cannot compute in a lower precision.
"""

from __future__ import annotations

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
    o64, r64 = o.double(), r.double()
    # non-finite values only where the reference has them, and the same ones
    all_finite = _all_finite(r64)
    r_fin = torch.isfinite(r64) if not all_finite else None
    if not all_finite or not _all_finite(o64):
        r_fin = torch.isfinite(r64)
        o_fin = torch.isfinite(o64)
        mismatch = (r_fin != o_fin) | (~r_fin & ~((o64 == r64) | (o64.isnan() & r64.isnan())))
        if bool(mismatch.any()):
            count = int(mismatch.sum())
            idx = tuple(int(i) for i in mismatch.nonzero()[0])
            return Comparison(
                False,
                f"{path}: {count} non-finite value(s) where the reference differs "
                f"(first at {list(idx)}: got {o64[idx].item()}, expected {r64[idx].item()})",
            )
    a_def, r_def = DEFAULT_TOLERANCES.get(str(n.dtype), (1e-5, 1e-4))
    atol_v = a_def if atol is None else atol
    rtol_v = r_def if rtol is None else rtol
    if all_finite:  # the common case: no masked copies
        rf, of = r64.reshape(-1), o64.reshape(-1)
        nf = n.reshape(-1) if r is not n else None
    else:
        assert r_fin is not None
        rf, of = r64[r_fin], o64[r_fin]
        nf = n[r_fin] if r is not n else None
    if rf.numel() == 0:
        return Comparison(True, max_abs_err=0.0, max_rel_err=0.0)
    scale = float(torch.linalg.vector_norm(rf)) / rf.numel() ** 0.5 or 1.0
    lib_err = float((nf.double() - rf).abs_().max()) / scale if nf is not None else 0.0
    atol_eff = max(atol_v, LIBRARY_ERROR_FACTOR * lib_err)
    allowed = rf.abs().mul_(rtol_v).add_(atol_eff * scale)
    err = (of - rf).abs_()
    ratio = err / allowed
    worst = float(ratio.max())
    tol = f"atol {atol_eff:.2g} x rms {scale:.3g} + rtol {rtol_v:.2g}"
    if lib_err * LIBRARY_ERROR_FACTOR > atol_v:
        tol += f" (atol widened to 4x torch's own error {lib_err:.2g})"
    if worst > 1.0:
        bad = ratio > 1.0
        count = int(bad.sum())
        flat_pos = int(ratio.argmax())
        full_idx = r_fin.reshape(-1).nonzero()[flat_pos] if r_fin is not None else flat_pos
        where = [int(i) for i in torch.unravel_index(torch.as_tensor(int(full_idx)), tuple(o.shape))]
        return Comparison(
            False,
            f"{path}: {count} of {o.numel()} elements outside tolerance (worst at {where}: got "
            f"{of[int(ratio.argmax())].item():.6g}, expected {rf[int(ratio.argmax())].item():.6g}; "
            f"max abs err {float(err.max()):.3g}; tolerance {tol})",
            float(err.max()),
            worst,
            tol,
        )
    return Comparison(True, None, float(err.max()), worst, tol)


def _all_finite(x: Any) -> bool:
    """One reduction instead of an isfinite mask: max |x| is NaN or inf exactly when some x is."""
    import math

    return x.numel() == 0 or math.isfinite(float(x.abs().amax()))
