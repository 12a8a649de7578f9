"""Causal depthwise conv1d (+ fused SiLU) as one streaming pass per channel row (C/OpenMP).

Each (batch, channel) row is independent: its ``width`` taps and bias sit in registers, the first
``width - 1`` outputs (which see the implicit zero padding) are done with bounds checks, and the
rest is a branch-free loop over time that gcc vectorizes with shifted unaligned loads (the kernel is
specialised for the common widths 2, 3 and 4; other widths use a generic loop). SiLU is fused into
the store using vmath's ``kv_expf`` (inlined, vectorizable: Cody-Waite range reduction and a
degree-6 polynomial, < 2 ulp), since a call to libm's ``expf`` would keep the loop scalar. Rows are split
across OpenMP threads; every input is read once and every output written once, from an L1 buffer
with non-temporal stores (no read-for-ownership of the write-once output lines).
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "karena/vmath.h"

static inline float silu(float y) { return y / (1.f + kv_expf(-y)); }

/* Write-once outputs go straight to memory with non-temporal stores (no read-for-ownership of the
   destination lines, which a plain store would fetch first); the edges use plain stores. */
static inline void stream_store(float* restrict dst, const float* restrict src, long n) {
  kv_stream_copy(dst, src, n);
}

static inline void stream_fence(void) {  /* order this thread's streaming stores before returning */
  kv_sfence();
}

/* Steady state (every tap inside the row) for t in [t0, t1), written to out[t - t0]; the taps sit in
   scalars so the loop over t vectorizes. ACT is a compile-time choice because a run-time select
   around exp keeps gcc from vectorizing. */
#define TAPS_FN(NAME, ACT)                                                                        \
  static void NAME(const float* restrict xr, float* restrict out, const float* w, float b,       \
                   long W, long t0, long t1) {                                                   \
    float* restrict o = out - t0;                                                                \
    if (W == 4) {                                                                                \
      const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];                                    \
      _Pragma("omp simd") for (long t = t0; t < t1; ++t)                                         \
        o[t] = ACT(b + w0 * xr[t - 3] + w1 * xr[t - 2] + w2 * xr[t - 1] + w3 * xr[t]);           \
    } else if (W == 3) {                                                                         \
      const float w0 = w[0], w1 = w[1], w2 = w[2];                                               \
      _Pragma("omp simd") for (long t = t0; t < t1; ++t)                                         \
        o[t] = ACT(b + w0 * xr[t - 2] + w1 * xr[t - 1] + w2 * xr[t]);                            \
    } else if (W == 2) {                                                                         \
      const float w0 = w[0], w1 = w[1];                                                          \
      _Pragma("omp simd") for (long t = t0; t < t1; ++t) o[t] = ACT(b + w0 * xr[t - 1] + w1 * xr[t]); \
    } else {                                                                                     \
      for (long t = t0; t < t1; ++t) {                                                           \
        float s = b;                                                                             \
        for (long j = 0; j < W; ++j) s += w[j] * xr[t - (W - 1) + j];                            \
        o[t] = ACT(s);                                                                           \
      }                                                                                          \
    }                                                                                            \
  }

#define IDENTITY(v) (v)
TAPS_FN(taps_silu, silu)
TAPS_FN(taps_plain, IDENTITY)

#define BLK 1024

void causal_dwconv1d_f32(const float* restrict x, const float* restrict weight,
                         const float* restrict bias, float* restrict y, long rows, long dim,
                         long L, long W, int use_silu) {
  #pragma omp parallel
  {
    float buf[BLK];
    #pragma omp for schedule(static)
    for (long row = 0; row < rows; ++row) {
      const long d = row % dim;
      const float* xr = x + row * L;
      const float* w = weight + d * W;
      const float b = bias[d];
      const long head = W - 1 < L ? W - 1 : L;
      for (long t0 = 0; t0 < L; t0 += BLK) {
        const long t1 = L - t0 < BLK ? L : t0 + BLK;
        long ts = t0;
        for (; ts < head && ts < t1; ++ts) {     /* outputs that reach into the zero padding */
          float s = b;
          for (long j = 0; j < W; ++j) {
            long src = ts - (W - 1) + j;
            if (src >= 0) s += w[j] * xr[src];
          }
          buf[ts - t0] = use_silu ? silu(s) : s;
        }
        if (use_silu) taps_silu(xr, buf + (ts - t0), w, b, W, ts, t1);
        else taps_plain(xr, buf + (ts - t0), w, b, W, ts, t1);
        stream_store(y + row * L + t0, buf, t1 - t0);
      }
    }
    stream_fence();
  }
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={
        "causal_dwconv1d_f32": (None, ["ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long", "int"])
    },
)


class ModelNew(nn.Module):
    def __init__(self, dim: int, width: int, use_silu: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(dim, width))
        self.bias = nn.Parameter(torch.empty(dim))
        self.use_silu = bool(use_silu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        w = self.weight.detach().contiguous()
        b = self.bias.detach().contiguous()
        batch, dim, seq = x.shape
        y = torch.empty_like(x)
        _LIB.causal_dwconv1d_f32(
            x.data_ptr(), w.data_ptr(), b.data_ptr(), y.data_ptr(), batch * dim, dim, seq, w.shape[1],
            int(self.use_silu),
        )  # fmt: skip
        return y
