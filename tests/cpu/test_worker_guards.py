"""The candidate worker's runtime guards hold without the static scan.

The static scan rejects ``import __main__``, harness imports and ``exec`` strings; these tests
switch it off (in this process, where the verifier runs) so that only the structural defences
are left: the launcher stub as ``__main__``, the identity check of the harness's functions after
every request, and the storage guards.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kernelarena import api
from kernelarena.types import CheckOptions
from kernelarena.verify import verifier

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "adversarial" / "cases"
TASK = ROOT / "tests" / "data" / "tasks" / "scaled_tanh.py"
OPTIONS = CheckOptions(seeds=1, distributions=("as-given",))

PATCH_WORKER = """
import sys
import torch
import torch.nn as nn

w = sys.modules.get("kernelarena.verify.worker_guards")
if w is not None:
    w._overlaps = lambda a, b: False
_BUF = {}


class ModelNew(nn.Module):
    def __init__(self, alpha, n_cols):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x):
        y = _BUF.setdefault(tuple(x.shape), torch.empty_like(x))
        y.copy_(x)
        return y
"""


@pytest.fixture
def no_static_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(verifier, "static_findings", lambda source, options, run: None)


@pytest.mark.usefixtures("no_static_scan")
@pytest.mark.parametrize(
    ("case", "expect"),
    [
        # __main__ is the launcher stub: the patch finds no _tracer, the tracer sees the torch ops
        ("tamper_main_module.py", "policy: forward ran torch compute ops"),
        # patching __main__._overlaps reaches nothing: the persistent buffer is caught
        ("tamper_exec_obfuscated.py", "stale: output"),
    ],
)
def test_main_module_tampering_reaches_no_guard(case: str, expect: str) -> None:
    verdict = api.check(TASK, CASES / case, OPTIONS)
    assert not verdict.passed
    assert any(expect in r for r in verdict.reasons), verdict.reasons


@pytest.mark.usefixtures("no_static_scan")
def test_replacing_a_worker_function_is_reported(tmp_path: Path) -> None:
    """Patching the guard module by its package name is caught by the identity check."""
    solution = tmp_path / "patch_worker.py"
    solution.write_text(PATCH_WORKER)
    verdict = api.check(TASK, solution, OPTIONS)
    assert not verdict.passed
    assert any(
        "tamper: harness internals were replaced" in r and "_overlaps" in r for r in verdict.reasons
    ), verdict.reasons
