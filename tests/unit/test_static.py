"""Static scan of solution sources: tampering and torch compute are found, honest code is clean."""

from pathlib import Path

import pytest

from kernelarena.verify.static import scan

pytestmark = pytest.mark.unit


def kinds(src: str) -> set[tuple[str, str]]:
    return {(f.kind, f.message.split(" (")[0].split(":")[0]) for f in scan(src)}


def test_example_solution_is_clean(examples: Path) -> None:
    assert [f for f in scan((examples / "softmax_c_solution.py").read_text()) if f.kind != "note"] == []


@pytest.mark.parametrize(
    "src,kind",
    [
        ("import time\ntime.perf_counter = lambda: 0\n", "tamper"),
        ("import gc\nx = gc.get_objects()\n", "tamper"),
        ("import sys\nf = sys._getframe(1)\n", "tamper"),
        ("import torch\nsetattr(torch, 'allclose', lambda *a, **k: True)\n", "tamper"),
        ("from kernelarena.verify import compare\n", "tamper"),
        ("import sys\nm = sys.modules['x']\n", "tamper"),
        ("from torch.utils._python_dispatch import _get_current_dispatch_mode\n", "tamper"),
        ("import torch\ndef f(x):\n    return torch.matmul(x, x)\n", "compute"),
        ("import torch.nn.functional as F\ndef f(x):\n    return F.softmax(x, -1)\n", "compute"),
        (
            "import torch\ndef f(x):\n    try:\n        return k(x)\n    except Exception:\n        return torch.softmax(x, -1)\n",
            "compute",
        ),
    ],
)
def test_findings(src: str, kind: str) -> None:
    assert kind in {f.kind for f in scan(src)}


def test_allowed_torch_calls_are_clean() -> None:
    src = "import torch\ndef f(x):\n    y = torch.empty_like(x)\n    z = torch.zeros(3, dtype=torch.float32)\n    return y\n"
    assert [f for f in scan(src) if f.kind != "note"] == []


def test_syntax_error_is_a_finding() -> None:
    assert scan("def (:\n")[0].kind == "syntax"


# Regression (issue 10): a correct KernelBench-style solution drew its parameters with torch.randn
# in __init__ and was rejected with "calls torch.randn: the computation must be the solution's own
# kernel". The compute rules now apply to what ModelNew.forward reaches.
KB_STYLE = """
import torch
import torch.nn as nn
from torch.nn.functional import gelu
from kernelarena.backends.c import load_library

_W0 = torch.randn(16) * 0.1 + 1.0       # import time: no input exists yet


def _init_weight(dim):
    w = torch.empty(dim)
    nn.init.normal_(w)
    return torch.sigmoid(w) * 2.0


class Helper:
    def run(self, x):
        return kernel(x)


class ModelNew(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim) * 0.5 + 1.0)
        self.scale = nn.Parameter(_init_weight(dim))
        self.proj = nn.Linear(dim, dim)      # a parameter holder whose weight feeds the kernel
        self.helper = Helper()
        self.act = gelu if dim < 0 else None

    def forward(self, x):
        y = torch.empty_like(x)
        return self.helper.run(x)
"""


def compute_lines(src: str) -> list[int]:
    return [f.line for f in scan(src) if f.kind == "compute"]


def test_init_and_import_time_torch_is_not_compute() -> None:
    assert compute_lines(KB_STYLE) == []


@pytest.mark.parametrize(
    "forward_body,what",
    [
        ("return torch.softmax(x, -1)", "torch.softmax"),
        ("return _init_weight(3)", "torch.sigmoid"),  # a helper forward calls is forward code
        ("return self.act(x) if self.act else gelu(x)", "gelu"),  # imported compute name used
        ("return (lambda v: torch.exp(v))(x)", "torch.exp"),
    ],
)
def test_compute_reached_from_forward_is_found(forward_body: str, what: str) -> None:
    src = KB_STYLE.replace("return self.helper.run(x)", forward_body)
    msgs = [f.message for f in scan(src) if f.kind == "compute"]
    assert any(what in m for m in msgs), msgs


def test_helper_class_method_called_from_forward_is_forward_code() -> None:
    src = KB_STYLE.replace("return kernel(x)", "return torch.tanh(x)")
    assert any("torch.tanh" in f.message for f in scan(src) if f.kind == "compute")


def test_dynamic_dispatch_makes_every_function_count() -> None:
    # getattr with a computed name could reach any function: the scan falls back to all of them
    src = KB_STYLE.replace("return self.helper.run(x)", "return getattr(self, 'hel' + 'per').run(x)")
    assert any("torch.sigmoid" in f.message for f in scan(src) if f.kind == "compute")


def test_forward_inherited_from_a_base_class_is_followed() -> None:
    src = (
        "import torch\nimport torch.nn as nn\n"
        "class Base(nn.Module):\n    def forward(self, x):\n        return torch.relu(x)\n"
        "class ModelNew(Base):\n    def __init__(self):\n        super().__init__()\n"
        "        self.w = nn.Parameter(torch.randn(3))\n"
    )
    msgs = [f.message for f in scan(src) if f.kind == "compute"]
    assert len(msgs) == 1 and "torch.relu" in msgs[0]


def test_tamper_rules_still_cover_the_whole_file() -> None:
    src = KB_STYLE.replace("return torch.sigmoid(w) * 2.0", "import gc\n    gc.get_objects()\n    return w")
    assert any(f.kind == "tamper" for f in scan(src))


NUMPY_FORWARD = """
import numpy as np
import numba
import torch
from numpy import tanh as th


@numba.njit(cache=True)
def _kernel(x, y):
    for i in range(x.shape[0]):
        y[i] = np.tanh(x[i])  # compiled by numba: the solution's own kernel


class ModelNew(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.table = np.exp(np.linspace(0, 1, 8))  # __init__: not the forward computation

    def forward(self, x):
        xn = np.ascontiguousarray(x.numpy())
        y = np.empty_like(xn)
        _kernel(xn, y)
        z = np.linalg.norm(xn) + th(xn)
        return torch.from_numpy(np.multiply(y, np.float32(2.0)))
"""


@pytest.mark.timeout(30)
def test_numpy_compute_in_forward_is_library_compute() -> None:
    """Regression (numpy_library_fallback): numpy's compute routines in forward-reachable code were
    invisible to the scan; allocation/conversion, __init__ code and numba-compiled numpy are not."""
    msgs = [f.message for f in scan(NUMPY_FORWARD) if f.kind == "compute"]
    assert any("numpy.linalg.norm" in m for m in msgs), msgs
    assert any("numpy.multiply" in m for m in msgs), msgs
    assert any("numpy.tanh" in m for m in msgs), msgs  # the `from numpy import tanh` alias in forward
    assert len(msgs) == 3, msgs  # not np.tanh inside @njit, not np.exp/linspace in __init__, not allocations
