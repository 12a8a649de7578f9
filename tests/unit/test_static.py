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
