"""Task loading: metadata, VARIANTS, pinned overrides, derived variants, scaling, bad input."""

from pathlib import Path

import pytest

from kernelarena.errors import TaskError, UsageError
from kernelarena.tasks.loader import exec_task_module, input_bytes, load_task, resolve_task, scale_to_fit

pytestmark = pytest.mark.unit


def test_example_task_metadata(examples: Path) -> None:
    t = load_task(examples / "softmax_task.py")
    assert t.category == "activation"
    assert next(v.overrides for v in t.variants) == {"rows": 1024, "cols": 4096}
    assert len(t.variants) == 3 and not any(v.derived for v in t.variants)
    assert t.atol == 1e-6 and t.rtol == 1e-4 and t.has_flops and t.has_bytes_moved
    assert t.float64_reference and t.perturb_inputs is None


def test_overrides_are_pinned_and_derived_globals_follow(data: Path) -> None:
    m = exec_task_module(data / "tasks" / "no_variants.py", {"dim": 10})
    assert m.dim == 10 and m.hidden == 20  # `hidden = 2 * dim` re-evaluated with the override


def test_derived_variants_without_VARIANTS(data: Path) -> None:
    t = load_task(data / "tasks" / "no_variants.py")
    assert t.variants[0].overrides == {} and not t.variants[0].derived
    derived = [v.overrides for v in t.variants[1:]]
    assert {"batch_size": 9, "dim": 33} in derived  # odd, smaller; `hidden` follows dim
    assert {"batch_size": 1} in derived
    assert any("derived" in n for n in t.notes)


def test_scaling_to_max_bytes(data: Path) -> None:
    path = data / "tasks" / "huge.py"
    assert input_bytes(path, {}) == 4096 * 524288 * 4  # measured on the meta device: nothing allocated
    overrides, note = scale_to_fit(path, {}, 64 << 20)
    assert input_bytes(path, overrides) <= 64 << 20
    # the batch shrinks first: every other dimension keeps its value, so the task stays valid
    assert overrides["batch_size"] < 4096 and overrides.get("dim", 524288) == 524288
    assert note and "batch_size 4096->" in note
    t = load_task(path, max_bytes=64 << 20)
    assert any("scaled" in n for n in t.notes)


def test_builtin_name_resolves() -> None:
    assert resolve_task("rmsnorm").name == "rmsnorm.py"


@pytest.mark.parametrize(
    ("content", "error", "match"),
    [
        ("import torch\n", TaskError, "missing Model"),
        ("def broken(:\n", TaskError, "syntax error"),
        ("raise ValueError('boom')\n", TaskError, "raised ValueError"),
        (
            "class Model: pass\ndef get_inputs(): return []\ndef get_init_inputs(): return []\nVARIANTS = [{'nope': 1}]\n",
            TaskError,
            "unknown globals",
        ),
    ],
)
def test_bad_task_files(tmp_path: Path, content: str, error: type, match: str) -> None:
    p = tmp_path / "bad.py"
    p.write_text(content)
    with pytest.raises(error, match=match):
        load_task(p)


def test_missing_file_is_usage_error() -> None:
    with pytest.raises(UsageError):
        load_task("/no/such/task.py")
    with pytest.raises(UsageError):
        load_task("no_such_builtin_task")


HINGE_LIKE = """
import torch
import torch.nn as nn

class Model(nn.Module):
    def forward(self, predictions, targets):
        return torch.mean(torch.clamp(1 - predictions * targets, min=0))

batch_size = 4096
input_shape = (4096,)
dim = 1

def get_inputs():
    return [torch.rand(batch_size, *input_shape), torch.randint(0, 2, (batch_size,)).float() * 2 - 1]

def get_init_inputs():
    return []
"""


@pytest.mark.timeout(60)
def test_scaling_keeps_equal_sizes_equal(tmp_path: Path) -> None:
    """Regression (KernelBench level1 100_HingeLoss): (batch, n) * (batch,) broadcasts only while
    batch_size == input_shape[0]; halving batch_size alone broke the model, so the scaler froze it
    and the case never fitted. Sizes equal before scaling (a tuple's elements included) now move
    together."""
    path = tmp_path / "hinge_like.py"
    path.write_text(HINGE_LIKE)
    overrides, note = scale_to_fit(path, {}, 8 << 20)
    assert input_bytes(path, overrides) <= 8 << 20, (overrides, note)
    assert overrides["input_shape"] == (overrides["batch_size"],), overrides
    assert overrides["batch_size"] < 4096 and note and "input_shape[0]" in note
    m = exec_task_module(path, overrides)
    model = m.Model()
    assert model(*m.get_inputs()).shape == ()  # the scaled task still runs


COUNTING = """
import torch
import torch.nn as nn

class Model(nn.Module):
    def forward(self, x):
        with open({log!r}, "a") as f:  # one line per forward actually run
            f.write("ran\\n")
        return x * 2

n = {n}

def get_inputs():
    return [torch.rand(n, n)]

def get_init_inputs():
    return []
"""


@pytest.mark.timeout(60)
def test_footprints_are_measured_once_per_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A meta-device forward costs ~0.3 ms per op (hgrn's 1024-step loop: ~3 s a call, ~20 calls per
    load), so footprints are cached by task source + overrides, in memory and on disk."""
    from kernelarena.tasks import loader

    monkeypatch.setenv("KARENA_FOOTPRINT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(loader, "_footprints", {})
    log, path = tmp_path / "forward.log", tmp_path / "counting.py"
    path.write_text(COUNTING.format(log=str(log), n=64))
    runs = lambda: len(log.read_text().splitlines()) if log.exists() else 0  # noqa: E731

    assert loader.footprint_bytes(path, {}) == (2 * 64 * 64 * 4, True)
    assert loader.footprint_bytes(path, {}) == (2 * 64 * 64 * 4, True) and runs() == 1
    assert loader.footprint_bytes(path, {"n": 32}) == (2 * 32 * 32 * 4, True) and runs() == 2
    monkeypatch.setattr(loader, "_footprints", {})  # a new process: the disk cache answers
    assert loader.footprint_bytes(path, {"n": 32}) == (2 * 32 * 32 * 4, True) and runs() == 2
    path.write_text(COUNTING.format(log=str(log), n=16))  # an edited task is measured again
    assert loader.footprint_bytes(path, {}) == (2 * 16 * 16 * 4, True) and runs() == 3
    # a corrupt cache file is ignored, not trusted
    for f in (tmp_path / "cache").iterdir():
        f.write_text('{"{}": [1, "yes"]}')
    monkeypatch.setattr(loader, "_footprints", {})
    assert loader.footprint_bytes(path, {}) == (2 * 16 * 16 * 4, True) and runs() == 4
