"""`karena lint` finds weak tasks and passes good ones."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(300)]


def lint(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kernelarena.cli", "lint", *args, "--json"], capture_output=True, text=True
    )


def test_weak_tasks_are_flagged(data: Path) -> None:
    p = lint(str(data / "tasks/weak_relu_positive.py"))
    assert p.returncode == 1
    findings = json.loads(p.stdout)["tasks"][0]["findings"]
    assert any("passthrough" in f for f in findings)
    p = lint(str(data / "tasks/weak_ignores_input.py"))
    findings = json.loads(p.stdout)["tasks"][0]["findings"]
    assert any("does not depend on input 1" in f for f in findings)
    assert not any("input 0" in f for f in findings)


def test_good_task_is_clean(data: Path) -> None:
    p = lint(str(data / "tasks/scaled_tanh.py"))
    assert p.returncode == 0, p.stdout
    assert json.loads(p.stdout)["clean"] is True
