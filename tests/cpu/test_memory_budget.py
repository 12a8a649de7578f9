"""Task memory budgets (``MEMORY_BUDGET`` / ``memory_budget(*inputs)``) enforced by ``check``:
the peak resident memory one call adds, measured by the parent from the worker's /proc status,
must stay under the budget; a correct solution that materializes the big intermediate fails with
a reason naming the budget and the measured peak."""

import re
from pathlib import Path

import pytest

from kernelarena import api
from kernelarena.errors import TaskError
from kernelarena.tasks.loader import load_task
from kernelarena.types import CheckOptions

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(300)]

QUICK = CheckOptions(seeds=1, distributions=("as-given",), repeat_determinism=False)


def _mib(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"([\d.]+) MiB", text)]


def test_fused_solution_within_budget_passes(data: Path) -> None:
    task = data / "tasks" / "tanh_outer_rowsum.py"
    assert load_task(task).has_memory_budget
    v = api.check(task, data / "solutions" / "tanh_outer_fused.py", QUICK)
    assert v.passed, v.reasons
    line = next(c for c in v.checked if "MEMORY_BUDGET" in c)
    assert "within 1.0 MiB" in line


def test_materializing_solution_exceeds_budget(data: Path) -> None:
    """The [1024, 4096] float32 matrix is 16 MiB: the measured peak must show it (not just be
    over 1 MiB), and the reason must name the budget and the peak."""
    v = api.check(
        data / "tasks" / "tanh_outer_rowsum.py", data / "solutions" / "tanh_outer_materialized.py", QUICK
    )
    assert not v.passed
    reason = v.reasons[-1]
    assert "MEMORY_BUDGET of 1.0 MiB" in reason and "peak resident memory" in reason, reason
    peak = _mib(reason)[0]
    assert 15.5 <= peak <= 24, reason  # the matrix, plus at most a little else
    assert all(c.ok for c in v.cases)  # its outputs were right: only the budget rejected it


def test_bad_budget_is_a_task_error(tmp_path: Path, data: Path) -> None:
    bad = tmp_path / "t.py"
    bad.write_text((data / "tasks" / "tanh_outer_rowsum.py").read_text().replace("1 << 20", "'1 MiB'"))
    with pytest.raises(TaskError, match="MEMORY_BUDGET must be a positive number of bytes"):
        load_task(bad)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_fused_cross_entropy_that_materializes_logits_fails(data: Path) -> None:
    """The suite task's budget: a correct C solution that writes the full [256, 16384] logits
    (16 MiB) fails; the built-in Cut-Cross-Entropy solution (measured 1.3 MiB) passes. ~2 min."""
    from kernelarena.solutions import cpu

    task = "fused_linear_cross_entropy"
    bad = api.check(task, data / "solutions" / "flce_materialized_logits.py", QUICK)
    assert not bad.passed and "MEMORY_BUDGET of 6.0 MiB" in bad.reasons[-1], bad.reasons
    # the 16 MiB of logits, less what the allocator already held resident (glibc keeps 128 KiB of
    # top pad after a trim, reused without a page fault): measured 15.9-16.1 MiB
    assert _mib(bad.reasons[-1])[0] >= 15.5
    good = api.check(task, Path(cpu.__file__).parent / f"{task}.py", QUICK)
    assert good.passed, good.reasons
    assert any("MEMORY_BUDGET" in c and "within" in c for c in good.checked)
