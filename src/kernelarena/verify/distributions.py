"""Input distributions of verification cases (applied by the reference worker to the task's inputs).

- ``as-given``: the task's own ``get_inputs()``.
- ``signed``: every element is multiplied by a factor drawn log-uniformly from [0.5, 4) and a random
  half of the elements change sign: KernelBench's ``torch.rand`` inputs in [0, 1) become (-4, 4),
  so identity no longer passes for ReLU and a kernel cannot assume non-negative inputs.
- ``scaled``: every element x8 (wider dynamic range, overflow of narrow intermediates).
- ``outliers``: 1% of the elements x32, each with a random sign: sparse negatives, so a kernel
  that looks at a few elements to decide "these are the benchmark's non-negative inputs" and then
  takes a shortcut is caught on the elements it did not look at.

Only floating inputs the task allows (``PERTURB_INPUTS``) are touched: integer ids, masks and
probability inputs are never perturbed.

Sign flips are kept only where the reference stays finite (``perturb_case``): when the native
reference on the sign-flipped inputs has a non-finite element where the same distribution without
flips has a finite one, or raises (sqrt/log of an input, a Cholesky factor), the flips are tried one
input at a time and the inputs that cannot take them keep their signs (their magnitudes are still
perturbed). The verdict's notes say which inputs kept their signs. Magnitude changes have no such
fallback: ``scaled`` already widens further, and a task that overflows there sets its tolerance or
its ``PERTURB_INPUTS``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

DISTRIBUTIONS = ("as-given", "signed", "scaled", "outliers")
SIGN_FLIPPING = frozenset({"signed", "outliers"})
OUTLIER_FRACTION = 0.01
OUTLIER_FACTOR = 32.0
SCALE_FACTOR = 8.0
# signed: magnitude factor 2**u, u uniform in [WIDEN_LOG2[0], WIDEN_LOG2[1])
WIDEN_LOG2 = (-1.0, 2.0)


def perturbable(inputs: list[Any], allowed: Collection[int] | None) -> list[int]:
    """Indices of the inputs a distribution may change: non-empty floating tensors the task allows."""
    import torch

    return [
        i
        for i, x in enumerate(inputs)
        if isinstance(x, torch.Tensor)
        and x.is_floating_point()
        and x.numel() > 0
        and (allowed is None or i in allowed)
    ]


def perturb(
    inputs: list[Any],
    distribution: str,
    allowed: Collection[int] | None,
    seed: int,
    keep_signs: Collection[int] = (),
) -> list[Any]:
    """``inputs`` under ``distribution`` (new tensors; the originals are not written).

    ``keep_signs``: indices whose sign flips are left out; the random draws are the same either
    way, so leaving out a flip changes nothing else.

    >>> import torch
    >>> y = perturb([torch.rand(1000)], "signed", None, seed=1)[0]
    >>> bool((y < 0).any()), bool(y.abs().max() < 4)
    (True, True)
    """
    import torch

    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"unknown input distribution {distribution!r}")
    if distribution == "as-given":
        return inputs
    gen = torch.Generator().manual_seed(seed)
    out = list(inputs)
    for i in perturbable(inputs, allowed):
        x = inputs[i]
        if distribution == "scaled":
            out[i] = x * SCALE_FACTOR
            continue
        # float32 draws, updated in place (the reference worker holds one case at its peak), laid
        # out like x so that a non-contiguous input stays non-contiguous
        u = torch.empty_like(x, dtype=torch.float32).uniform_(generator=gen)
        flip = torch.empty_like(u).uniform_(generator=gen) < 0.5
        if distribution == "outliers":
            flip &= u < OUTLIER_FRACTION  # only outliers change sign: sparse negatives
            u = torch.where(u < OUTLIER_FRACTION, OUTLIER_FACTOR, 1.0)
        else:  # signed
            lo, hi = WIDEN_LOG2
            u.mul_(hi - lo).add_(lo).exp2_()
        if i not in keep_signs:
            u.mul_(flip.to(u.dtype).mul_(-2.0).add_(1.0))
        del flip
        out[i] = x * (u if x.dtype == torch.float64 else u.to(x.dtype))
    return out


def _finite_where(out: Any, base: Any) -> bool:
    """Whether ``out`` is finite wherever ``base`` is (outputs of the same call on other inputs)."""
    import torch

    if isinstance(out, torch.Tensor) and isinstance(base, torch.Tensor):
        if not out.is_floating_point() and not out.is_complex():
            return True
        bad = ~torch.isfinite(out)
        if not bool(bad.any()):
            return True
        return out.shape == base.shape and not bool((bad & torch.isfinite(base)).any())
    if isinstance(out, list | tuple) and isinstance(base, list | tuple):
        return len(out) == len(base) and all(_finite_where(a, b) for a, b in zip(out, base, strict=True))
    return True


def _all_finite(out: Any) -> bool:
    import torch

    if isinstance(out, torch.Tensor):
        return not (out.is_floating_point() or out.is_complex()) or bool(torch.isfinite(out).all())
    if isinstance(out, list | tuple):
        return all(_all_finite(o) for o in out)
    return True


def perturb_case(
    model: Callable[..., Any],
    inputs: list[Any],
    distribution: str,
    allowed: Collection[int] | None,
    seed: int,
) -> tuple[list[Any], str | None]:
    """Perturbed inputs for one case, sign flips kept only where the reference stays finite.

    Returns the inputs and a note naming the inputs that kept their signs (None when all flipped).
    Costs one extra forward of ``model`` for a sign-flipping distribution (two or more only when
    a flip makes the reference non-finite).
    """
    import torch

    idx = perturbable(inputs, allowed)
    if distribution not in SIGN_FLIPPING or not idx:
        return perturb(inputs, distribution, allowed, seed), None

    def run(xs: list[Any]) -> Any:
        with torch.no_grad():
            return model(*[x.clone() if isinstance(x, torch.Tensor) else x for x in xs])

    def flips_ok(flipped: Collection[int], base: Any) -> bool:
        keep = [i for i in idx if i not in flipped]
        try:
            out = run(perturb(inputs, distribution, allowed, seed, keep_signs=keep))
        except Exception:  # e.g. a factorization of a matrix that is no longer positive definite
            return False
        return _all_finite(out) or (base is not None and _finite_where(out, base))

    if flips_ok(idx, None):
        return perturb(inputs, distribution, allowed, seed), None
    base = run(perturb(inputs, distribution, allowed, seed, keep_signs=idx))  # its errors are the task's
    flipped: list[int] = []
    if flips_ok(idx, base):
        flipped = list(idx)
    elif len(idx) > 1:
        for i in idx:  # greedy: keep each input's flips that leave the reference finite
            if flips_ok([*flipped, i], base):
                flipped.append(i)
    kept = [i for i in idx if i not in flipped]
    note = None
    if kept:
        note = (
            f"{distribution}: input(s) {', '.join(map(str, kept))} kept their signs (the reference is not "
            "finite on sign-flipped values there)"
        )
    return perturb(inputs, distribution, allowed, seed, keep_signs=kept), note
