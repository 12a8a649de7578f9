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


def test_session_and_pipeline_never_import_the_api() -> None:
    # Regression (issue 11): api.py and session.py imported each other (a cycle hidden by a
    # re-export at the bottom of api.py); the shared pieces now live in pipeline.py, below both.
    import ast
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src/kernelarena"
    for module in ("session.py", "pipeline.py", "search/loop.py", "timing/bench.py", "verify/verifier.py"):
        tree = ast.parse((src / module).read_text())
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert "kernelarena.api" not in imported, module
        assert not any(isinstance(n, ast.ImportFrom) and n.module == "kernelarena" and
                       any(a.name == "api" for a in n.names) for n in ast.walk(tree)), module  # fmt: skip
