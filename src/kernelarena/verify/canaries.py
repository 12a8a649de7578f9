"""Canary outputs: trivial answers that must never pass a task's comparison.

If one does (zeros for a softmax whose outputs sit below ``atol``, identity for a ReLU on
non-negative inputs), the *task* is too weak to tell a kernel from a cheat: that is flagged on every
verdict and by ``karena lint``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kernelarena.verify.compare import compare


def _like(native: Any, fill: str, inputs: list[Any]) -> Any:
    import torch

    if isinstance(native, list | tuple):
        return type(native)(_like(n, fill, inputs) for n in native)
    if not isinstance(native, torch.Tensor):
        return native
    if fill == "zeros":
        return torch.zeros_like(native)
    if fill == "ones":
        return torch.ones_like(native)
    if fill == "mean":
        if native.numel() <= 1:  # the mean of one value is that value: not a trivial answer
            return None
        # mean(dtype=float64) accumulates in float64 without a float64 copy of the output
        mean = native.mean(dtype=torch.float64).item() if native.is_floating_point() else 0
        return torch.full_like(native, mean)
    if fill == "passthrough":
        for x in inputs:
            if isinstance(x, torch.Tensor) and x.shape == native.shape and x.dtype == native.dtype:
                return x.clone()
        return None
    raise ValueError(fill)


def canary_outputs(native: Any, inputs: list[Any]) -> Iterator[tuple[str, Any]]:
    for name in ("zeros", "ones", "mean", "passthrough"):
        out = _like(native, name, inputs)
        if out is not None and not _contains_none(out):
            yield name, out


def _contains_none(value: Any) -> bool:  # a canary with no form for some output is skipped
    if isinstance(value, list | tuple):
        return any(_contains_none(v) for v in value)
    return value is None


def passing_canaries(
    reference: Any, native: Any, inputs: list[Any], atol: float | None, rtol: float | None
) -> list[str]:
    """Names of the canaries that pass this case's comparison (should be empty)."""
    return [
        name
        for name, out in canary_outputs(native, inputs)
        if compare(out, reference, native, atol=atol, rtol=rtol).ok
    ]
