"""KIVI int4 KV quantization (C/OpenMP): one streaming pass over each key/value token group.

Work item = (batch*head, group of G tokens). For keys the G x head_dim tile is read once to get
per-channel min/max (vertical vector min/max over rows, unit stride), then read again from L1 to
emit codes; the values of the same G tokens are quantized per token (horizontal min/max over each
channel group) in the same item, so K and V are each read from memory exactly once. Codes are
computed with the contract's exact float32 sequence -- subtract, IEEE divide (``vdivps``, no
reciprocal, no FMA contraction possible), round-half-even (``nearbyintf`` -> ``vrndscaleps``) --
so they are bit-identical to the reference, then packed two per byte (low nibble = even channel).
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static inline uint8_t code_of(float x, float zero, float scale) {
  float q = nearbyintf((x - zero) / scale);   /* round half to even (default rounding mode) */
  q = q < 0.f ? 0.f : (q > 15.f ? 15.f : q);
  return (uint8_t)(int)q;
}

static void pack_row(const float* x, const float* zero, const float* scale, uint8_t* out, long d,
                     uint8_t* tmp) {
  #pragma omp simd
  for (long c = 0; c < d; ++c) tmp[c] = code_of(x[c], zero[c], scale[c]);
  for (long j = 0; j < d / 2; ++j) out[j] = (uint8_t)(tmp[2 * j] | (tmp[2 * j + 1] << 4));
}

void kivi_quant(const float* k, const float* v, uint8_t* kc, float* ks, float* kz,
                uint8_t* vc, float* vs, float* vz, long bh, long s, long d, long g) {
  long ngs = (s + g - 1) / g, ngd = (d + g - 1) / g;
  #pragma omp parallel
  {
    float* mn = (float*)malloc(sizeof(float) * (size_t)d * 4);
    float* mx = mn + d;
    float* zr = mn + 2 * d;
    float* sc = mn + 3 * d;
    uint8_t* tmp = (uint8_t*)malloc((size_t)d + 64);
    #pragma omp for schedule(static)
    for (long it = 0; it < bh * ngs; ++it) {
      long p = it / ngs, tg = it % ngs;
      long t0 = tg * g, t1 = t0 + g < s ? t0 + g : s;
      /* keys: per-channel min/max over the token group */
      const float* kp = k + (p * s + t0) * d;
      for (long c = 0; c < d; ++c) { mn[c] = kp[c]; mx[c] = kp[c]; }
      for (long t = 1; t < t1 - t0; ++t) {
        const float* r = kp + t * d;
        #pragma omp simd
        for (long c = 0; c < d; ++c) { mn[c] = r[c] < mn[c] ? r[c] : mn[c]; mx[c] = r[c] > mx[c] ? r[c] : mx[c]; }
      }
      float* ksr = ks + (p * ngs + tg) * d;
      float* kzr = kz + (p * ngs + tg) * d;
      #pragma omp simd
      for (long c = 0; c < d; ++c) {
        float scl = (mx[c] - mn[c]) / 15.0f;
        scl = scl > 0.f ? scl : 1.0f;
        sc[c] = scl; zr[c] = mn[c]; ksr[c] = scl; kzr[c] = mn[c];
      }
      for (long t = 0; t < t1 - t0; ++t) pack_row(kp + t * d, zr, sc, kc + (p * s + t0 + t) * (d / 2), d, tmp);
      /* values: per-token min/max over channel groups */
      for (long t = t0; t < t1; ++t) {
        const float* r = v + (p * s + t) * d;
        float* vsr = vs + (p * s + t) * ngd;
        float* vzr = vz + (p * s + t) * ngd;
        for (long cg = 0; cg < ngd; ++cg) {
          long c0 = cg * g, c1 = c0 + g < d ? c0 + g : d;
          float lo = r[c0], hi = r[c0];
          #pragma omp simd reduction(min:lo) reduction(max:hi)
          for (long c = c0; c < c1; ++c) { lo = r[c] < lo ? r[c] : lo; hi = r[c] > hi ? r[c] : hi; }
          float scl = (hi - lo) / 15.0f;
          scl = scl > 0.f ? scl : 1.0f;
          vsr[cg] = scl; vzr[cg] = lo;
          #pragma omp simd
          for (long c = c0; c < c1; ++c) { zr[c] = lo; sc[c] = scl; }
        }
        pack_row(r, zr, sc, vc + (p * s + t) * (d / 2), d, tmp);
      }
    }
    free(mn); free(tmp);
  }
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={
        "kivi_quant": (
            None,
            ["ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"],
        )
    },
)


class ModelNew(nn.Module):
    def __init__(self, group_size: int):
        super().__init__()
        self.group_size = group_size

    def forward(self, k: torch.Tensor, v: torch.Tensor):
        k = k.contiguous()
        v = v.contiguous()
        b, h, s, d = k.shape
        g = self.group_size
        ngs, ngd = -(-s // g), -(-d // g)
        k_codes = torch.empty(b, h, s, d // 2, dtype=torch.uint8)
        v_codes = torch.empty(b, h, s, d // 2, dtype=torch.uint8)
        k_scale = torch.empty(b, h, ngs, d, dtype=torch.float32)
        k_zero = torch.empty(b, h, ngs, d, dtype=torch.float32)
        v_scale = torch.empty(b, h, s, ngd, dtype=torch.float32)
        v_zero = torch.empty(b, h, s, ngd, dtype=torch.float32)
        _LIB.kivi_quant(
            k.data_ptr(),
            v.data_ptr(),
            k_codes.data_ptr(),
            k_scale.data_ptr(),
            k_zero.data_ptr(),
            v_codes.data_ptr(),
            v_scale.data_ptr(),
            v_zero.data_ptr(),
            b * h,
            s,
            d,
            g,
        )
        return k_codes, k_scale, k_zero, v_codes, v_scale, v_zero
