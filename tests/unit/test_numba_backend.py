"""The numba backend is real: the registry's module exists, and the built-in numba solutions are
detected as numba (the registry used to point at a module that did not exist)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kernelarena.backends.registry import detect_backend, get_backend
from kernelarena.errors import UsageError
from kernelarena.suite import builtin_solutions_dir, solutions_dir

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]


def test_numba_backend_module_loads_and_reports_numba() -> None:
    backend = get_backend("numba")
    assert backend.available()
    assert backend.numba_version()
    assert set(backend.build_key_parts()) == {"numba", "llvmlite"}


def test_numba_backend_import_is_light() -> None:
    code = (
        "import sys, kernelarena.backends.numba; sys.exit('numba' in sys.modules or 'torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_builtin_numba_solutions_are_numba() -> None:
    folder = solutions_dir("builtin:numba")
    assert folder == builtin_solutions_dir("cpu", "numba")
    files = [p for p in folder.glob("*.py") if not p.name.startswith("_")]
    assert len(files) >= 5
    for path in files:
        assert detect_backend(path.read_text()) == "numba", path.name


def test_unknown_builtin_backend_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"known: .*numba"):
        solutions_dir("builtin:fortran")
