"""Numba kernels: ``@numba.njit`` functions over NumPy views of torch tensors.

A numba solution needs no build step of its own: numba compiles each function on first call in the
candidate worker, and ``cache=True`` keeps the machine code in ``NUMBA_CACHE_DIR`` (set by the
sandbox to the shared build cache), so later workers load it instead of compiling. Threads come
from ``NUMBA_NUM_THREADS``, which the sandbox sets to the run's thread count.

Example::

    import numba
    @numba.njit(parallel=True, cache=True)
    def _scale(x, y, s):
        for i in numba.prange(x.shape[0]):
            y[i] = x[i] * s
    _scale(x.numpy(), y.numpy(), 2.0)       # x, y: contiguous CPU tensors
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version


@functools.cache
def numba_version() -> str | None:
    """The installed numba version, read from package metadata (numba itself is not imported)."""
    try:
        return version("numba")
    except PackageNotFoundError:
        return None


def available() -> bool:
    """Whether numba can be imported here (it is part of the ``numba`` extra)."""
    if numba_version() is None:
        return False
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def build_key_parts() -> dict[str, str]:
    """What a numba kernel's machine code depends on beyond its source (for cache keys)."""
    import llvmlite

    return {"numba": numba_version() or "absent", "llvmlite": llvmlite.__version__}
