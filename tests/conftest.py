"""Shared fixtures: paths to test data, an isolated store and build cache per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
EXAMPLES = ROOT.parent / "shared" / "examples"


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    # The store lives in a temporary KARENA_HOME; compiled kernels keep the shared build cache
    # (content-addressed, so sharing is safe and saves gcc/numba time).
    os.environ["KARENA_HOME"] = str(tmp_path_factory.mktemp("karena_home"))
    os.environ.setdefault("KARENA_WORKER_TIMEOUT_S", "120")


@pytest.fixture
def data() -> Path:
    return DATA


@pytest.fixture
def examples() -> Path:
    if not (EXAMPLES / "softmax_task.py").exists():
        pytest.skip("../shared/examples not present")
    return EXAMPLES
