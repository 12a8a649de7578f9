"""Record the shipped replay ``src/kernelarena/agent/replays/rmsnorm.jsonl``.

Runs the real coder/judge loop on ``rmsnorm`` against the scripted local LLM server of the tests
(tests/agent/llm_server.py) with hand-written replies: a wrong kernel (forgets the weight), a
correct serial C kernel, then a faster OpenMP one; the judge's advice in between. The candidates
are really verified and timed; only the LLM is scripted. Usage::

    PYTHONPATH=src python bench/make_agent_replay.py [OUT.jsonl]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "agent"))

from llm_server import LLMServer  # noqa: E402

from kernelarena.agent import run  # noqa: E402
from kernelarena.agent.records import AgentStore  # noqa: E402
from kernelarena.types import CheckOptions, TimingOptions  # noqa: E402

_HEAD = """import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
"""
_TAIL = """

class ModelNew(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        w = self.weight.detach().contiguous()
        y = torch.empty_like(x)
        dim = x.shape[-1]
        _LIB.rmsnorm(x.data_ptr(), w.data_ptr(), y.data_ptr(), x.numel() // max(dim, 1), dim, self.eps)
        return y
"""
_LOAD = '_LIB = load_library(_SRC, functions={"rmsnorm": (None, ["ptr", "ptr", "ptr", "long", "long", "float"])})\n'

WRONG_C = r"""
#include <math.h>
void rmsnorm(const float* x, const float* w, float* y, long rows, long dim, float eps) {
  for (long r = 0; r < rows; ++r) {
    float ss = 0.f;
    for (long c = 0; c < dim; ++c) ss += x[r * dim + c] * x[r * dim + c];
    float inv = 1.0f / sqrtf(ss / dim + eps);
    for (long c = 0; c < dim; ++c) y[r * dim + c] = x[r * dim + c] * inv;  /* forgot the weight */
  }
}
"""
SERIAL_C = WRONG_C.replace("x[r * dim + c] * inv;  /* forgot the weight */", "x[r * dim + c] * inv * w[c];")
FAST_C = r"""
#include <math.h>
void rmsnorm(const float* restrict x, const float* restrict w, float* restrict y, long rows, long dim,
             float eps) {
  #pragma omp parallel for schedule(static)
  for (long r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float ss = 0.f;
    #pragma omp simd reduction(+:ss)
    for (long c = 0; c < dim; ++c) ss += xr[c] * xr[c];
    float inv = (float)(1.0 / sqrt((double)ss / (double)dim + (double)eps));
    #pragma omp simd
    for (long c = 0; c < dim; ++c) yr[c] = (xr[c] * inv) * w[c];
  }
}
"""


def solution(c_src: str) -> str:
    return f'{_HEAD}\n_SRC = r"""{c_src}"""\n{_LOAD}{_TAIL}'


def reply(text: str, c_src: str) -> str:
    return f"{text}\n\n```python\n{solution(c_src)}```\n"


CODER = [
    reply("Plan: one pass for the sum of squares, one to scale.", WRONG_C),
    reply("Fixed: the output is multiplied by the weight.", SERIAL_C),
    reply("Rows are independent: OpenMP over rows, SIMD reductions, the mean in double.", FAST_C),
]
JUDGE = [
    "Fix: the reference multiplies by `weight`; write y = x * inv * w[c] in the scaling loop.",
    "Optimization: rows are independent; add `#pragma omp parallel for` over rows and "
    "`#pragma omp simd reduction(+:ss)` on the sum of squares so gcc vectorizes it.",
]


def main(out: Path) -> None:
    server = LLMServer().start()
    try:
        server.script(JUDGE, when="ONE concrete fix")
        server.script(CODER)
        with tempfile.TemporaryDirectory() as d:
            res = run("rmsnorm", model="scripted-example", provider="openai", api_base=server.base_url,
                      rounds=3, patience=10, db=Path(d) / "k.db", run_dir=Path(d) / "run", retrieval=False,
                      run_id="rmsnorm-replay", check_options=CheckOptions(seeds=1, max_bytes=8 << 20),
                      timing_options=TimingOptions(budget_s=0.5), max_retries=0,
                      progress=print)  # fmt: skip
            print(res.to_json())
            with AgentStore(Path(d) / "k.db") as st:
                st.export_replay("rmsnorm-replay", out)
    finally:
        server.stop()
    print(f"wrote {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "src/kernelarena/agent/replays/rmsnorm.jsonl")
