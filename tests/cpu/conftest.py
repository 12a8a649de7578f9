"""Fixtures of the CPU tests that build C against the shared headers on a forced SIMD path."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import pytest

from kernelarena.backends import c, gemm_build


@pytest.fixture(scope="session")
def build_on_path(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, dict, str], Any]:
    """``build(src, functions, isa)``: ``src`` (which defines ``const char* isa(void)`` returning the
    header's path name) built with the solutions' flags for ``isa`` (``KARENA_CPU_ISA``), in a build
    cache of its own; fails unless the header really took that path."""

    def build(src: str, functions: dict, isa: str) -> Any:
        mp = pytest.MonkeyPatch()
        mp.setenv("KARENA_BUILD_CACHE", str(tmp_path_factory.mktemp("cache")))
        mp.setenv("KARENA_CPU_ISA", isa)
        try:
            loaded = c.load_library(
                src, flags=(*c.DEFAULT_FLAGS, *gemm_build.isa_flags()), functions=functions
            )
        finally:
            mp.undo()
        assert ctypes.string_at(loaded.isa()).decode() == isa  # the header really took this path
        return loaded

    return build
