"""`import kernelarena` stays light: no torch, numba, triton or CUDA library until needed."""

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def test_import_is_light() -> None:
    code = (
        "import sys, kernelarena, kernelarena.cli, kernelarena.backends.registry\n"
        "heavy = [m for m in ('torch', 'numba', 'triton', 'cupy', 'ray', 'xgboost', 'optuna') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_lazy_api() -> None:
    import kernelarena

    assert callable(kernelarena.check) and callable(kernelarena.bench)
    with pytest.raises(AttributeError):
        kernelarena.nope  # noqa: B018
