"""`check` end to end on real kernels: C and numba accepted; wrong, crashing, hanging and
memory-hungry solutions rejected for the right reason while the harness survives."""

from pathlib import Path

import pytest

from kernelarena import api
from kernelarena.types import CheckOptions

pytestmark = [pytest.mark.cpu, pytest.mark.timeout(240)]

QUICK = CheckOptions(seeds=1, distributions=("as-given", "scaled"))


def task(data: Path) -> Path:
    return data / "tasks" / "scaled_tanh.py"


def test_c_solution_of_example_passes(examples: Path) -> None:
    v = api.check(examples / "softmax_task.py", examples / "softmax_c_solution.py", QUICK)
    assert v.passed, v.reasons
    assert {c.variant for c in v.cases} == {"rows=1024,cols=4096", "rows=1,cols=32000", "rows=77,cols=1001"}
    assert any("determinism" in c for c in v.checked) or not QUICK.repeat_determinism


def test_c_solution_passes_every_variant(data: Path) -> None:
    v = api.check(task(data), data / "solutions" / "scaled_tanh_c.py")
    assert v.passed, v.reasons
    assert len({c.variant for c in v.cases}) == 3 and all(c.ok for c in v.cases)
    assert any("float64" in c for c in v.checked)


def test_numba_solution_passes(data: Path) -> None:
    v = api.check(task(data), data / "solutions" / "scaled_tanh_numba.py", QUICK)
    assert v.passed, v.reasons


def test_ignoring_weights_is_caught_by_redrawn_params(data: Path) -> None:
    v = api.check(task(data), data / "solutions" / "wrong_ignores_weight.py", QUICK)
    assert not v.passed and "outside tolerance" in v.reasons[0]


def test_wrong_parameter_names(data: Path) -> None:
    v = api.check(task(data), data / "solutions" / "wrong_param_names.py", QUICK)
    assert (
        not v.passed and "parameter/buffer names differ" in v.reasons[0] and "missing weight" in v.reasons[0]
    )


@pytest.mark.parametrize(
    "solution,expected",
    [
        ("crash_segfault.py", "SIGSEGV"),
        ("memory_hog.py", "out of memory"),
        ("exit_early.py", "without answering"),
    ],
)
def test_faults_are_rejected_with_reason(data: Path, solution: str, expected: str) -> None:
    v = api.check(task(data), data / "solutions" / solution, QUICK)
    assert not v.passed and expected in v.reasons[0], v.reasons


def test_hang_times_out_and_harness_goes_on(data: Path) -> None:
    opts = CheckOptions(seeds=1, distributions=("as-given",), timeout_s=4)
    v = api.check(task(data), data / "solutions" / "hang_forever.py", opts)
    assert not v.passed and "timed out after 4 s" in v.reasons[0]
    # the harness is fine afterwards
    assert api.check(task(data), data / "solutions" / "scaled_tanh_c.py", QUICK).passed


def test_store_reuses_identical_check(data: Path, tmp_path: Path) -> None:
    from kernelarena.store.sqlite import Store

    with Store(tmp_path / "k.db") as store:
        first = api.check(task(data), data / "solutions" / "scaled_tanh_c.py", QUICK, store=store)
        again = api.check(task(data), data / "solutions" / "scaled_tanh_c.py", QUICK, store=store)
        assert first.passed and again.passed
        assert any("reused" in n for n in again.notes) and not any("reused" in n for n in first.notes)
        fresh = api.check(task(data), data / "solutions" / "scaled_tanh_c.py", QUICK, store=store, fresh=True)
        assert not any("reused" in n for n in fresh.notes)
