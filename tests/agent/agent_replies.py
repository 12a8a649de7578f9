"""Scripted LLM replies for the agent tests (task tests/data/tasks/scaled_tanh.py)."""

from __future__ import annotations

from pathlib import Path

from kernelarena.agent.evolve import prefilter as _real_prefilter
from kernelarena.agent.loop import evaluate as _real_evaluate

DATA = Path(__file__).resolve().parents[1] / "data"
TASK = DATA / "tasks" / "scaled_tanh.py"

_C_FAST = (DATA / "solutions" / "scaled_tanh_c.py").read_text()

# correct but deliberately slow: the whole row is recomputed REPEAT times (same result)
_C_SLOW = _C_FAST.replace(
    "for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * cols + c] * w[c]) * alpha;",
    "for (int rep = 0; rep < 40; ++rep)\n"
    "      for (long c = 0; c < cols; ++c) y[r * cols + c] = tanhf(x[r * cols + c] * w[c] + 0.0f * rep) * alpha;",
)
assert _C_SLOW != _C_FAST

WRONG = (DATA / "solutions" / "wrong_ignores_weight.py").read_text()

CHEAT = """\
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, alpha: float, n_cols: int):
        super().__init__()
        self.alpha = alpha
        self.weight = nn.Parameter(torch.empty(n_cols))

    def forward(self, x):
        return torch.tanh(x * self.weight) * self.alpha  # a torch fallback, not a kernel
"""


def reply(code: str, words: str = "Here is the kernel.") -> str:
    return f"{words}\n\n```python\n{code}```\n"


CORRECT = reply(_C_SLOW, "A first correct version.")
FASTER = reply(_C_FAST, "Removed the redundant passes.")
WRONG_REPLY = reply(WRONG, "Fast version.")
CHEAT_REPLY = reply(CHEAT, "Simplest possible version.")
NO_CODE = "I am not able to write this kernel, sorry."
JUDGE = "Fix: use the weight w[c] for each column; then vectorize the inner loop."
JUDGE_KEY = "ONE concrete fix"  # a substring of every judge prompt (routes scripted judge replies)

# Small options so a candidate's evaluation takes seconds: one seed, a short timing budget.
CHECK = {"seeds": 1}
TIMING = {"budget_s": 0.3, "min_rounds": 3, "max_rounds": 8, "input_sets": 1, "threads": 1}

_MEMO: dict[tuple[str, str, str], dict] = {}
EVALUATIONS: list[str] = []  # code hashes really evaluated in this test session


def memo_evaluate(task, path, opts):  # type: ignore[no-untyped-def]
    """The real evaluator (sandboxed check + bench), run once per distinct (task, code, options)
    per test session: several tests script the same replies, re-verifying identical code adds
    nothing. The options are part of the key: the CLI tests time with 2 threads and another budget,
    and a speedup measured that way must not stand in for the 1-thread one the loop tests compare."""
    import hashlib

    measured = (getattr(opts, "check_options", None), getattr(opts, "timing_options", None))
    key = (str(task.path), hashlib.sha256(Path(path).read_bytes()).hexdigest(), repr(measured))
    if key not in _MEMO:
        EVALUATIONS.append(key[1])
        _MEMO[key] = _real_evaluate(task, path, opts)
    return dict(_MEMO[key])


_QUICK: dict[str, dict] = {}


def memo_prefilter(task, path, opts):  # type: ignore[no-untyped-def]
    """The evolutionary strategy's real pre-filter, run once per distinct code per test session."""
    import hashlib

    key = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if key not in _QUICK:
        _QUICK[key] = _real_prefilter(task, path, opts)
    return dict(_QUICK[key])
