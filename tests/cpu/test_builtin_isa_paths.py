"""The built-in CPU solutions with SIMD fast paths pass `check` on the AVX2+FMA and generic paths too,
forced on this machine with ``KARENA_CPU_ISA`` (``-march=x86-64-v3`` / ``-v2``; the native path is
covered by test_builtin_solutions.py).

Each path runs in its own interpreter: the flags are fixed when ``gemm_build`` is imported and the
sandbox's workers inherit the environment of the process that starts them. The fast test uses
small inputs (``max_bytes``) and one seed for one solution per shared code path; the ``slow`` tests
run every solution whose fast path used to be AVX-512 only at full size (outputs over 8 MiB take the
streaming-store branches) and every built-in solution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kernelarena.backends import gemm_build
from kernelarena.suite import builtin_solutions_dir

pytestmark = [pytest.mark.cpu]

# solutions whose fast path was AVX-512 only before karena/vmath.h (issue 13), and those that now take
# their exp from it; top_p_filter .. tmac_lut_gemv were ported from AVX-512 intrinsics to kv_f vectors
# on branch `ports`; on branch `decode`: the decode attentions (karena/decode.h, formerly a fixed
# 64-byte vector type), soft_kmeans_attention (exp from vmath) and kv_int4_quant and
# kvmerger_gaussian_merge (default flags before, so KARENA_CPU_ISA did not reach them); the
# prefill-style attentions share karena/flash.h (built with FLAGS since then)
PORTED = [
    "gelu_tanh",
    "swiglu",
    "rmsnorm",
    "layernorm",
    "add_rmsnorm",
    "rope",
    "adamw_step",
    "causal_dwconv1d",
    "frugal_step",
    "hgrn_recurrence",
    "lemo_token_scoring",
    "segmented_cumsum",
    "moe_token_permute",
    "kmeans_key_assign",
    "relu_rmsnorm_router",
    "topk_softmax_router",
    "speculative_acceptance",
    "logsumexp",
    "cross_entropy",
    "top_p_filter",
    "windowkv_scores",
    "h2o_heavy_hitter_scores",
    "w4a16_gemv",
    "anybit_gemv",
    "tmac_lut_gemv",
    # karena/block.h + flash.h: built with gemm_build.FLAGS (forced paths)
    "causal_prefill_attention",
    "moba_block_sparse_attention",
    "nsa_selected_block_attention",
    "chunkwise_linear_attention",
    "decode_attention",
    "gqa_decode_attention",
    "paged_decode_attention",
    "squeezed_centroid_attention",
    "soft_kmeans_attention",
    "kv_int4_quant",
    "kvmerger_gaussian_merge",
]
# one per shared code path (vmath exp/rcp, row reductions, streaming copy, panel64 GEMM), small inputs:
# measured 2.5 min per path on 2 cores at load ~8 (about a minute when the machine is quiet).
# decode_attention (karena/decode.h) would add 29 s (avx2) and 38 s (generic) at load ~8: it runs
# in the slow sweep, so that the default suite stays within its 8 minutes
FAST = ["gelu_tanh", "rmsnorm", "adamw_step", "kmeans_key_assign"]

_SCRIPT = r"""
import json, sys
from kernelarena import api
from kernelarena.suite import builtin_solutions_dir
from kernelarena.tasks.loader import SUITES_DIR
from kernelarena.types import CheckOptions
opts = CheckOptions(seeds=1, distributions=("outliers",), repeat_determinism=False,
                    max_bytes=int(sys.argv[1]))
out = {}
for name in sys.argv[2:]:
    v = api.check(SUITES_DIR / "llm" / f"{name}.py", builtin_solutions_dir("cpu") / f"{name}.py", opts)
    out[name] = [v.passed, list(v.reasons)]
print(json.dumps(out))
"""


def _check_all(isa: str, names: list[str], max_bytes: int, tmp_path: Path) -> dict:
    env = dict(os.environ, KARENA_CPU_ISA=isa)  # builds are keyed by the path: the cache is shared
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(max_bytes), *names], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout.splitlines()[-1])


def _isas() -> list[str]:
    return [p for p in gemm_build.runnable_paths() if p != "avx512"][::-1]  # forced lower paths


@pytest.mark.timeout(300)
@pytest.mark.parametrize("isa", _isas())
def test_shared_paths_pass_on_forced_path(isa, tmp_path):
    res = _check_all(isa, FAST, 1 << 20, tmp_path)
    failed = {k: v[1] for k, v in res.items() if not v[0]}
    assert not failed, failed
    assert sorted(res) == sorted(FAST)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("isa", _isas())
def test_ported_solutions_pass_on_forced_path(isa, tmp_path):
    res = _check_all(isa, PORTED, -1, tmp_path)  # -1: the default automatic size limit
    failed = {k: v[1] for k, v in res.items() if not v[0]}
    assert not failed, failed
    assert sorted(res) == sorted(PORTED)


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.parametrize("isa", _isas())
def test_every_builtin_solution_passes_on_forced_path(isa, tmp_path):
    names = sorted(p.stem for p in builtin_solutions_dir("cpu").glob("*.py") if not p.name.startswith("_"))
    res = _check_all(isa, names, 16 << 20, tmp_path)
    failed = {k: v[1] for k, v in res.items() if not v[0]}
    assert not failed, failed
