"""COMET W4A4 GEMM with int8 outlier channels, on Intel AMX int8 tiles, exact int32 accumulation.

Both paths are int8 tile dot products (``tdpbssd``, signed x signed, exact int32): int4 codes are
stored one per int8, so they feed the tiles unchanged. Per block of 32 output channels the int4
weight rows are copied into a zero-padded, L2-resident block (A operand) and the outlier columns
``w4[n, outlier_idx]`` are gathered next to them; the int4 and int8 activations are re-laid out
once per call into the VNNI tile layout (4 consecutive k of 16 tokens per 64-byte row, B operand).
Four 16x16 int32 accumulator tiles cover 32 channels x 32 tokens: first over the K int4 channels,
then, re-zeroed, over the outlier channels, each result stored once. The float epilogue gathers a
token's column of both accumulators and writes ``w_scale * (acc4 * x4_scale + acc8 * x8_scale)``
as one contiguous 16-channel store. OpenMP splits channel blocks. Without AMX (or without the
kernel's AMX permission) a vector path runs instead: 4 weight rows x 4 tokens of exact int32 dot
products per register block (``kg_dot_i8_4x4`` of ``karena/gemm.h``: AVX-512 VNNI ``vpdpbusd`` on
biased activations, vpmovsxbw + vpmaddwd with AVX2).
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import FLAGS

_SRC = r"""
#include "karena/gemm.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <immintrin.h>

/* vector path: 4 weight rows x 4 tokens per register block (karena/gemm.h kg_dot_i8_4x4); the 4
   rows' outlier columns are gathered once and the x rows of a token block stay in L1 */
static void gemm_portable(const int8_t* restrict x4, const float* restrict s4, const int8_t* restrict x8,
                          const float* restrict s8, const int64_t* restrict idx, const int8_t* restrict w,
                          const float* restrict ws, float* restrict y, long M, long K, long O, long N) {
  const long nb = (N + 3) / 4;
  #pragma omp parallel
  {
    int8_t* wo = (int8_t*)malloc(4 * O + 4);
    int32_t a4[16], a8[16], sw4[4], sw8[4];
    #pragma omp for schedule(static)
    for (long b = 0; b < nb; ++b) {
      const long n0 = 4 * b, nw = N - n0 < 4 ? N - n0 : 4;
      const int8_t *wr[4], *wor[4];
      for (long j = 0; j < 4; ++j) {
        wr[j] = w + (n0 + (j < nw ? j : 0)) * K;
        wor[j] = wo + j * O;
        for (long o = 0; o < O; ++o) wo[j * O + o] = wr[j][idx[o]];
        sw4[j] = kg_i8_sum(wr[j], K);
        sw8[j] = kg_i8_sum(wor[j], O);
      }
      for (long m0 = 0; m0 < M; m0 += 4) {
        const long nx = M - m0 < 4 ? M - m0 : 4;
        const int8_t *xr[4], *xo[4];
        for (long i = 0; i < 4; ++i) {
          const long m = m0 + (i < nx ? i : 0);
          xr[i] = x4 + m * K;
          xo[i] = x8 + m * O;
        }
        kg_dot_i8_4x4(xr, (int)nx, wr, (int)nw, K, sw4, a4);
        kg_dot_i8_4x4(xo, (int)nx, wor, (int)nw, O, sw8, a8);
        for (long i = 0; i < nx; ++i)
          for (long j = 0; j < nw; ++j)
            y[(m0 + i) * N + n0 + j] = ((float)a4[i * 4 + j] * s4[m0 + i] + (float)a8[i * 4 + j] * s8[m0 + i]) * ws[n0 + j];
      }
    }
    free(wo);
  }
}

#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512F__)
#define ARCH_GET_XCOMP_PERM 0x1022
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static int amx_state = 0; /* 0: not asked yet, 1: usable, -1: not usable */

static int amx_usable(void) {
  if (amx_state == 0) {
    unsigned long mask = 0;
    int ok = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0 &&
             syscall(SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &mask) == 0 && (mask & (1ul << XFEATURE_XTILEDATA));
    amx_state = ok ? 1 : -1;
  }
  return amx_state == 1;
}

typedef struct {
  uint8_t palette_id, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} tile_config;

/* all eight tiles 16 rows x 64 bytes: C 0-3 (int32 16x16), A 4-5 (weights), B 6-7 (activations) */
static void load_tile_config(void) {
  tile_config cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) { cfg.rows[t] = 16; cfg.colsb[t] = 64; }
  _tile_loadconfig(&cfg);
}

/* activations [M][K] -> VNNI tile layout [M/16][kp/4][16 tokens][4], zero padded */
static int8_t* pack_acts(const int8_t* x, long M, long K, long kp) {
  const long mt = (M + 15) / 16, k4 = kp / 4;
  int8_t* xp = (int8_t*)aligned_alloc(64, (size_t)mt * kp * 16 + 64);
  memset(xp, 0, (size_t)mt * kp * 16);
  for (long m = 0; m < M; ++m) {
    int8_t* dst = xp + (m / 16) * k4 * 64 + (m % 16) * 4;
    const int8_t* src = x + m * K;
    long q = 0;
    for (; 4 * q + 4 <= K; ++q) memcpy(dst + q * 64, src + 4 * q, 4);
    for (long k = 4 * q; k < K; ++k) dst[q * 64 + (k - 4 * q)] = src[k];
  }
  return xp;
}

/* pull bytes [lo, hi) of the next weight block toward L2 while the tiles compute */
static inline void prefetch_span(const int8_t* base, long lo, long hi, long end) {
  if (hi > end) hi = end;
  for (long o = lo; o < hi; o += 64) _mm_prefetch((const char*)base + o, _MM_HINT_T1);
}

/* C tiles (stored to cb: [A0B0, A0B1, A1B0, A1B1], 256 int32 each) over depth kp (multiple of 64).
   a: 32 weight rows, stride lda; b0/b1: token tiles in VNNI layout; b1 == NULL: one token tile */
static void amx_block(const int8_t* a, long lda, const int8_t* b0, const int8_t* b1, long kp, int32_t* cb) {
  _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
  if (b1) {
    for (long k = 0; k < kp; k += 64) {
      _tile_loadd(4, a + k, lda);
      _tile_loadd(5, a + 16 * lda + k, lda);
      _tile_loadd(6, b0 + k * 16, 64);
      _tile_loadd(7, b1 + k * 16, 64);
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
      _tile_dpbssd(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
    }
  } else {
    for (long k = 0; k < kp; k += 64) {
      _tile_loadd(4, a + k, lda);
      _tile_loadd(5, a + 16 * lda + k, lda);
      _tile_loadd(6, b0 + k * 16, 64);
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(2, 5, 6);
    }
  }
  _tile_stored(0, cb, 64); _tile_stored(1, cb + 256, 64);
  _tile_stored(2, cb + 512, 64); _tile_stored(3, cb + 768, 64);
}

/* one 16x16 tile: rows = channels n0.., columns = tokens t0..; a token's column is gathered */
static void epilogue(const int32_t* c4, const int32_t* c8, long n0, long nv, long t0, long tv,
                     const float* s4, const float* s8, const float* ws, float* y, long N) {
  if (nv <= 0 || tv <= 0) return;
  const __mmask16 nm = nv >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nv) - 1u);
  const __m512i col = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm512_set1_epi32(16));
  const __m512 wsv = _mm512_maskz_loadu_ps(nm, ws + n0);
  for (long j = 0; j < tv; ++j) {
    const __m512 a4 = _mm512_cvtepi32_ps(_mm512_i32gather_epi32(col, c4 + j, 4));
    const __m512 a8 = _mm512_cvtepi32_ps(_mm512_i32gather_epi32(col, c8 + j, 4));
    const __m512 t = _mm512_add_ps(_mm512_mul_ps(a4, _mm512_set1_ps(s4[t0 + j])),
                                   _mm512_mul_ps(a8, _mm512_set1_ps(s8[t0 + j])));
    _mm512_mask_storeu_ps(y + (t0 + j) * N + n0, nm, _mm512_mul_ps(t, wsv));
  }
}

static void gemm_amx(const int8_t* restrict x4, const float* restrict s4, const int8_t* restrict x8,
                     const float* restrict s8, const int64_t* restrict idx, const int8_t* restrict w,
                     const float* restrict ws, float* restrict y, long M, long K, long O, long N) {
  const long kp = (K + 63) / 64 * 64, op = (O + 63) / 64 * 64, mt = (M + 15) / 16, nb = (N + 31) / 32;
  int8_t* xp = pack_acts(x4, M, K, kp);
  int8_t* xo = pack_acts(x8, M, O, op);
  #pragma omp parallel
  {
    /* weight block: 32 rows of [K codes | pad | outlier columns | pad]; +64 breaks 4 KiB aliasing */
    const long lda = kp + op + 64;
    int8_t* wb = (int8_t*)aligned_alloc(64, 32 * lda + 64);
    int32_t* c4 = (int32_t*)aligned_alloc(64, 4 * 256 * sizeof(int32_t));
    int32_t* c8 = (int32_t*)aligned_alloc(64, 4 * 256 * sizeof(int32_t));
    memset(c8, 0, 4 * 256 * sizeof(int32_t));
    load_tile_config();
    #pragma omp for schedule(static)
    for (long b = 0; b < nb; ++b) {
      const long n0 = b * 32, nv = N - n0 < 32 ? N - n0 : 32;
      memset(wb, 0, 32 * lda);
      for (long r = 0; r < nv; ++r) {
        const int8_t* src = w + (n0 + r) * K;
        memcpy(wb + r * lda, src, K);
        for (long o = 0; o < O; ++o) wb[r * lda + kp + o] = src[idx[o]];
      }
      /* the next block's rows are contiguous: spread their prefetch over this block's token tiles */
      const int8_t* next = w + (n0 + 32) * K;
      const long next_bytes = n0 + 32 < N ? ((N - n0 - 32 < 32 ? N - n0 - 32 : 32) * K) : 0;
      const long step = ((next_bytes / ((mt + 1) / 2) + 63) / 64) * 64;
      for (long t = 0; t < mt; t += 2) {
        const int two = t + 1 < mt;
        prefetch_span(next, (t / 2) * step, (t / 2 + 1) * step, next_bytes);
        const int8_t* b0 = xp + t * (kp / 4) * 64;
        amx_block(wb, lda, b0, two ? b0 + (kp / 4) * 64 : NULL, kp, c4);
        if (op) {
          const int8_t* o0 = xo + t * (op / 4) * 64;
          amx_block(wb + kp, lda, o0, two ? o0 + (op / 4) * 64 : NULL, op, c8);
        }
        const long t0 = t * 16, tv0 = M - t0 < 16 ? M - t0 : 16, tv1 = two ? (M - t0 - 16 < 16 ? M - t0 - 16 : 16) : 0;
        const long nv0 = nv < 16 ? nv : 16, nv1 = nv - 16;
        epilogue(c4, c8, n0, nv0, t0, tv0, s4, s8, ws, y, N);
        epilogue(c4 + 256, c8 + 256, n0, nv0, t0 + 16, tv1, s4, s8, ws, y, N);
        epilogue(c4 + 512, c8 + 512, n0 + 16, nv1, t0, tv0, s4, s8, ws, y, N);
        epilogue(c4 + 768, c8 + 768, n0 + 16, nv1, t0 + 16, tv1, s4, s8, ws, y, N);
      }
    }
    _tile_release();
    free(wb); free(c4); free(c8);
  }
  free(xp); free(xo);
}
#endif

/* allow_amx = 0 forces the portable path (used to test it) */
void w4a4_gemm(const int8_t* x4, const float* s4, const int8_t* x8, const float* s8, const int64_t* idx,
               const int8_t* w, const float* ws, float* y, long M, long K, long O, long N, long allow_amx) {
#if defined(__AMX_TILE__) && defined(__AMX_INT8__) && defined(__AVX512F__)
  if (allow_amx && amx_usable()) { gemm_amx(x4, s4, x8, s8, idx, w, ws, y, M, K, O, N); return; }
#endif
  gemm_portable(x4, s4, x8, s8, idx, w, ws, y, M, K, O, N);
}
"""

_LIB = load_library(
    _SRC,
    flags=FLAGS,
    functions={
        "w4a4_gemm": (
            None,
            ["ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long", "long"],
        )
    },
)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.register_buffer("w4", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("w_scale", torch.zeros(out_features))

    def forward(
        self,
        x4: torch.Tensor,
        x4_scale: torch.Tensor,
        x8: torch.Tensor,
        x8_scale: torch.Tensor,
        outlier_idx: torch.Tensor,
    ) -> torch.Tensor:
        w = self.w4.contiguous()
        ws = self.w_scale.contiguous()
        x4 = x4.contiguous()
        x8 = x8.contiguous()
        s4 = x4_scale.contiguous()
        s8 = x8_scale.contiguous()
        idx = outlier_idx.to(torch.int64).contiguous()
        m, k = x4.shape
        o = x8.shape[1]
        n = w.shape[0]
        y = torch.empty(m, n, dtype=s4.dtype)
        if m > 0 and n > 0:
            _LIB.w4a4_gemm(
                x4.data_ptr(),
                s4.data_ptr(),
                x8.data_ptr(),
                s8.data_ptr(),
                idx.data_ptr(),
                w.data_ptr(),
                ws.data_ptr(),
                y.data_ptr(),
                m,
                k,
                o,
                n,
                1,
            )
        return y
