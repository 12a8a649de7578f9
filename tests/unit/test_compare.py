"""Comparison: scale-aware tolerances that zeros and low precision cannot meet; exact structure."""

import pytest
import torch

from kernelarena.verify.compare import compare

pytestmark = pytest.mark.unit


@pytest.fixture
def ref() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 33, generator=g, dtype=torch.float64) * 3


def test_exact_native_passes(ref: torch.Tensor) -> None:
    native = ref.float()
    assert compare(native.clone(), ref, native).ok


def test_zeros_fail_even_for_tiny_outputs(ref: torch.Tensor) -> None:
    tiny = ref * 1e-7  # below a fixed atol of 1e-5: KernelBench's zeros loophole
    res = compare(torch.zeros(64, 33), tiny, tiny.float())
    assert not res.ok and "outside tolerance" in res.reason


def test_half_precision_compute_fails(ref: torch.Tensor) -> None:
    native = ref.float()
    res = compare(native.half().float(), ref, native)
    assert not res.ok


def test_tolerance_widens_to_torch_own_error(ref: torch.Tensor) -> None:
    noisy_native = (ref + 1e-3 * torch.randn_like(ref)).float()  # torch itself is this far off
    res = compare(noisy_native.clone(), ref, noisy_native)
    assert res.ok and "widened" in res.tolerance


def test_dtype_shape_structure(ref: torch.Tensor) -> None:
    native = ref.float()
    assert "dtype" in compare(ref.clone(), ref, native).reason
    assert "shape" in compare(native[:3].clone(), ref, native).reason
    assert "structure" in compare((native.clone(),), ref, native).reason


def test_nonfinite_only_where_reference_has_them(ref: torch.Tensor) -> None:
    r = ref.clone()
    r[1, 2] = float("nan")
    r[3, 4] = float("inf")
    native = r.float()
    assert compare(native.clone(), r, native).ok
    bad = native.clone()
    bad[1, 2] = 0.0
    assert "non-finite" in compare(bad, r, native).reason
    bad = native.clone()
    bad[5, 5] = float("nan")
    assert "non-finite" in compare(bad, r, native).reason


def test_integers_exact() -> None:
    n = torch.arange(10)
    assert compare(n.clone(), n, n).ok
    m = n.clone()
    m[3] += 1
    res = compare(m, n, n)
    assert not res.ok and "must match exactly" in res.reason and "[3]" in res.reason


@pytest.mark.unit
@pytest.mark.timeout(30)
def test_chunked_comparison_matches_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    # The comparison runs in chunks so its float64 temporaries stay small; the verdict, the count of
    # bad elements and the worst position must not depend on the chunk size.
    import torch

    from kernelarena.verify import compare as cmp

    torch.manual_seed(0)
    ref = torch.randn(37, 53, dtype=torch.float64)
    native = ref.float()
    out = native.clone()
    out[30, 7] += 1.0
    out[5, 2] += 0.5
    out[36, 52] = float("nan")
    ref_nan = ref.clone()
    ref_nan[36, 52] = float("nan")
    native_nan = ref_nan.float()
    whole = cmp.compare(out, ref_nan, native_nan)
    monkeypatch.setattr(cmp, "CHUNK_ELEMENTS", 7)
    chunked = cmp.compare(out, ref_nan, native_nan)
    assert not whole.ok and not chunked.ok and whole.reason == chunked.reason
    assert chunked.max_rel_err == pytest.approx(whole.max_rel_err, rel=1e-9)  # sums in another order
    assert "2 of 1961 elements" in chunked.reason
    out[36, 52] = 0.0  # a finite value where the reference has NaN: found in the last chunk
    bad = cmp.compare(out, ref_nan, native_nan)
    assert "non-finite" in bad.reason and "[36, 52]" in bad.reason


@pytest.mark.timeout(30)
def test_reference_beyond_output_dtype_range_is_inf() -> None:
    """Regression (KernelBench level1 90_cumprod): the float64 reference reached 1e39 where float32
    gives inf, and a float32 candidate returning inf there was rejected as a non-finite mismatch."""
    x = torch.full((2, 40), 10.0, dtype=torch.float64)
    x[1] = -10.0
    ref = torch.cumprod(x, dim=1)  # up to 1e40: finite in float64, beyond float32's 3.4e38
    native = torch.cumprod(x.float(), dim=1)
    assert torch.isinf(native).any() and torch.isfinite(ref).all()
    assert compare(native.clone(), ref, native).ok
    wrong_sign = native.clone()
    assert native[1, -2] == float("-inf")
    wrong_sign[1, -2] = float("inf")  # (-10)**39 overflows to -inf
    assert not compare(wrong_sign, ref, native).ok
    finite = native.clone()
    finite[0, -1] = 3e38  # inf expected: a finite value in its place is still wrong
    assert "non-finite" in compare(finite, ref, native).reason
    # a float64 output is held to the float64 reference, overflow or not
    assert not compare(native.double(), ref, ref).ok
