"""Decode attention template (FlashDecoding split-K): one query per (batch, head) over a KV cache.

The sequence of every (batch, head) is cut into ``split`` parts processed as independent OpenMP
tasks; each keeps a running max, sum and output accumulator (``online`` softmax over blocks of
``block`` keys, or ``twopass``: all scores of its part first, then one exp/accumulate pass), and the
parts are merged with the log-sum-exp rule. ``ku`` keys share one pass over q in the dot products.
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import fill, header

TASK = "decode_attention"

SPACE: dict[str, list[Any]] = {
    "split": [1, 2, 4, 8, 16],
    "block": [16, 32, 64, 128, 256],
    "ku": [1, 2, 4, 8],
    "softmax": ["online", "twopass"],
    "schedule": ["static", "dynamic"],
}


def constraints(config: dict[str, Any]) -> bool:
    # "twopass" has no key block: fix it to one value so no two configs render the same kernel
    return bool(config["softmax"] == "online" or config["block"] == 64)


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """Sequence splits up to twice the cores (so even one (batch, head) pair keeps every core busy,
    without tiny parts), key blocks whose K and V rows stay in L1 (block x head_dim 128 <= L1/2)."""
    out = []
    blocks = [b for b in SPACE["block"] if b * 128 * 4 <= hw.l1d_bytes // 2] or [16]
    splits = [s for s in SPACE["split"] if s <= max(4, 2 * hw.cores)]
    for split in splits:
        for ku in (2, 4):
            for block in blocks[-2:]:
                for schedule in ("static", "dynamic"):
                    out.append(dict(split=split, block=block, ku=ku, softmax="online", schedule=schedule))
            out.append(dict(split=split, block=64, ku=ku, softmax="twopass", schedule="static"))
    return out


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    return {
        "block_kv_over_l1": config["block"] * 128 * 4 * 2 / hw.l1d_bytes,
        "parts_per_core": config["split"] / hw.cores,
    }


_C = r"""
#include <math.h>
#include <stdlib.h>
#define KU @KU@
#define BLK @BLOCK@
#define TWOPASS @TWOPASS@

/* scores s[j] = scale * q . k_j for j in [0, n), KU keys per pass over q */
static void scores(const float* restrict q, const float* restrict k, long n, long d, float scale, float* restrict s) {
    long j = 0;
    for (; j + KU <= n; j += KU) {
        float acc[KU];
        for (int u = 0; u < KU; ++u) acc[u] = 0.f;
#pragma omp simd reduction(+ : acc[:KU])
        for (long t = 0; t < d; ++t)
            for (int u = 0; u < KU; ++u) acc[u] += q[t] * k[(j + u) * d + t];
        for (int u = 0; u < KU; ++u) s[j + u] = acc[u] * scale;
    }
    for (; j < n; ++j) {
        float a = 0.f;
#pragma omp simd reduction(+ : a)
        for (long t = 0; t < d; ++t) a += q[t] * k[j * d + t];
        s[j] = a * scale;
    }
}

/* one part [s0, s1) of one (batch, head): returns max m and sum l, writes unnormalized acc[d] */
static void part(const float* q, const float* K, const float* V, long s0, long s1, long d, float scale,
                 float* restrict acc, float* m_out, float* l_out, float* buf) {
    for (long t = 0; t < d; ++t) acc[t] = 0.f;
    float m = -INFINITY, l = 0.f;
#if TWOPASS
    const long n = s1 - s0;
    scores(q, K + s0 * d, n, d, scale, buf);
    for (long j = 0; j < n; ++j) m = buf[j] > m ? buf[j] : m;
    for (long j = 0; j < n; ++j) {
        const float p = expf(buf[j] - m);
        l += p;
        const float* v = V + (s0 + j) * d;
#pragma omp simd
        for (long t = 0; t < d; ++t) acc[t] += p * v[t];
    }
#else
    for (long b0 = s0; b0 < s1; b0 += BLK) {
        const long n = s1 - b0 < BLK ? s1 - b0 : BLK;
        scores(q, K + b0 * d, n, d, scale, buf);
        float bm = m;
        for (long j = 0; j < n; ++j) bm = buf[j] > bm ? buf[j] : bm;
        if (bm > m) {
            const float c = expf(m - bm);
            l *= c;
#pragma omp simd
            for (long t = 0; t < d; ++t) acc[t] *= c;
            m = bm;
        }
        for (long j = 0; j < n; ++j) {
            const float p = expf(buf[j] - m);
            l += p;
            const float* v = V + (b0 + j) * d;
#pragma omp simd
            for (long t = 0; t < d; ++t) acc[t] += p * v[t];
        }
    }
#endif
    *m_out = m;
    *l_out = l;
}

static void run(const float* q, const float* K, const float* V, float* out, long bh, long seq, long d, long split,
                int dynamic) {
    if (split > seq) split = seq > 0 ? seq : 1;
    const float scale = 1.0f / sqrtf((float)d);
    const long tasks = bh * split;
    float* accs = malloc(sizeof(float) * (size_t)(tasks * d + 2 * tasks));
    float* ms = accs + tasks * d;
    float* ls = ms + tasks;
    const long per = (seq + split - 1) / split;
    const long bufn = TWOPASS ? per : BLK;
#pragma omp parallel
    {
        float* buf = malloc(sizeof(float) * (size_t)(bufn > 0 ? bufn : 1));
        if (dynamic) {
#pragma omp for schedule(dynamic, 1)
            for (long t = 0; t < tasks; ++t) {
                const long h = t / split, sp = t % split;
                const long s0 = sp * per, s1 = s0 + per < seq ? s0 + per : seq;
                part(q + h * d, K + h * seq * d, V + h * seq * d, s0, s1 > s0 ? s1 : s0, d, scale, accs + t * d,
                     ms + t, ls + t, buf);
            }
        } else {
#pragma omp for schedule(static)
            for (long t = 0; t < tasks; ++t) {
                const long h = t / split, sp = t % split;
                const long s0 = sp * per, s1 = s0 + per < seq ? s0 + per : seq;
                part(q + h * d, K + h * seq * d, V + h * seq * d, s0, s1 > s0 ? s1 : s0, d, scale, accs + t * d,
                     ms + t, ls + t, buf);
            }
        }
        free(buf);
#pragma omp for schedule(static)
        for (long h = 0; h < bh; ++h) {
            float M = -INFINITY;
            for (long sp = 0; sp < split; ++sp) M = ms[h * split + sp] > M ? ms[h * split + sp] : M;
            float L = 0.f;
            float* o = out + h * d;
            for (long t = 0; t < d; ++t) o[t] = 0.f;
            for (long sp = 0; sp < split; ++sp) {
                const long t = h * split + sp;
                if (ls[t] == 0.f) continue; /* empty part */
                const float c = expf(ms[t] - M);
                L += ls[t] * c;
                const float* a = accs + t * d;
#pragma omp simd
                for (long e = 0; e < d; ++e) o[e] += c * a[e];
            }
            const float inv = 1.0f / L;
            for (long e = 0; e < d; ++e) o[e] *= inv;
        }
    }
    free(accs);
}

void attn_static(const float* q, const float* K, const float* V, float* out, long bh, long seq, long d, long split) {
    run(q, K, V, out, bh, seq, d, split, 0);
}

void attn_dynamic(const float* q, const float* K, const float* V, float* out, long bh, long seq, long d, long split) {
    run(q, K, V, out, bh, seq, d, split, 1);
}
"""

_PY = r'''
import torch
import torch.nn as nn

from kernelarena.backends.c import load_library

_SRC = r"""@C_SOURCE@"""

_ARGS = ["ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"]
_LIB = load_library(_SRC, functions={"attn_static": (None, _ARGS), "attn_dynamic": (None, _ARGS)})
_KERNEL = _LIB.attn_@SCHEDULE@
_SPLIT = @SPLIT@


class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q = q.contiguous()
        k = k.contiguous()
        v = v.contiguous()
        b, h, s, d = k.shape
        out = torch.empty((b, h, d), dtype=q.dtype)
        if b * h and d:
            _KERNEL(q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), b * h, s, d, _SPLIT)
        return out
'''


def render(config: dict[str, Any]) -> str:
    c_src = fill(
        _C, {"KU": config["ku"], "BLOCK": config["block"], "TWOPASS": int(config["softmax"] == "twopass")}
    )
    body = fill(_PY, {"C_SOURCE": c_src, "SCHEDULE": config["schedule"], "SPLIT": config["split"]})
    return (
        header("decode_attention", config, "Split-K decode attention with online softmax (C/OpenMP).") + body
    )
