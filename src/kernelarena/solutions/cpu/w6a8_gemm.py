"""W6A8 GEMM (FlexQ) on Intel AMX: int6 weights unpacked to int8 in registers, int8 tile dot products.

Weights are unpacked per block of 32 output channels: 48 packed bytes (64 codes) become 64 signed
int8 values with three AVX-512 VBMI instructions (``vpermb`` gathers each 3-byte group into a dword,
``vpmultishiftqb`` cuts the four 6-bit fields into bytes, a ternary-logic op plus a byte subtract
sign-extend them), written into an L2-resident 32 x K block. That block is the A operand of AMX
``tdpbssd`` (signed x signed int8, exact int32 accumulation); the activations are re-laid out once
per call into the VNNI tile layout (4 consecutive k of 16 tokens per 64-byte tile row) as the B
operand. Four 16x16 int32 accumulator tiles cover 32 channels x 32 tokens per 64-deep k step. The
float epilogue applies ``x_scale[m] * w_scale[n]``. OpenMP splits channel blocks; every thread
loads its own tile configuration. Where AMX is missing or the kernel refuses the AMX permission
request, a vector path runs instead: the same unpacking, then 4 weight rows x 4 tokens of exact
int32 dot products per register block (``kg_dot_i8_4x4`` of ``karena/gemm.h``: AVX-512 VNNI
``vpdpbusd`` on biased activations, vpmovsxbw + vpmaddwd with AVX2).
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

/* unpack one row of packed int6 (K % 4 == 0) into kp >= K signed bytes, zero-filling the tail */
static void unpack_row(const uint8_t* restrict src, long K, int8_t* restrict dst, long kp) {
  long k = 0;
#if defined(__AVX512VBMI__) && defined(__AVX512BW__)
  /* dword i <- bytes 3i, 3i+1, 3i+2; then byte t of dword h in each qword <- bits 32h + 6t */
  static const int8_t gather[64] = {
    0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11, 12, 13, 14, 14, 15, 16, 17, 17,
    18, 19, 20, 20, 21, 22, 23, 23, 24, 25, 26, 26, 27, 28, 29, 29, 30, 31, 32, 32, 33, 34, 35, 35,
    36, 37, 38, 38, 39, 40, 41, 41, 42, 43, 44, 44, 45, 46, 47, 47};
  const __m512i vg = _mm512_loadu_si512(gather);
  const __m512i shifts = _mm512_set1_epi64(0x322C2620120C0600LL); /* 0,6,12,18,32,38,44,50 */
  const __m512i m63 = _mm512_set1_epi8(63), b32 = _mm512_set1_epi8(32);
  for (; k < K; k += 64) {
    const long nbytes = (K - k >= 64) ? 48 : 3 * (K - k) / 4;
    const __mmask64 lm = nbytes >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << nbytes) - 1);
    const __m512i raw = _mm512_maskz_loadu_epi8(lm, src + 3 * k / 4);
    const __m512i grp = _mm512_permutexvar_epi8(vg, raw);
    const __m512i fld = _mm512_multishift_epi64_epi8(shifts, grp);
    /* (f & 63) ^ 32 then - 32: sign-extend 6 -> 8 bits; ternlog imm 0x6A = (A & B) ^ C */
    const __m512i off = _mm512_ternarylogic_epi32(fld, m63, b32, 0x6A);
    _mm512_storeu_si512(dst + k, _mm512_sub_epi8(off, b32));
  }
#endif
  for (; k < K; k += 4) {
    const uint8_t* b = src + 3 * k / 4;
    const uint32_t w = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16);
    for (int i = 0; i < 4; ++i) {
      const int u = (int)((w >> (6 * i)) & 63);
      dst[k + i] = (int8_t)(u - ((u & 32) << 1));
    }
  }
  for (; k < kp; ++k) dst[k] = 0; /* k >= K here: the vector loop zero-filled up to its stop */
}

/* vector path: 4 unpacked weight rows x 4 tokens per register block (karena/gemm.h
   kg_dot_i8_4x4), so each unpacked row is reused from L1 by every token block */
static void gemm_portable(const int8_t* restrict x, const float* restrict xs, const uint8_t* restrict qw,
                          const float* restrict ws, float* restrict y, long M, long K, long N) {
  const long kp = (K + 63) / 64 * 64 + 64, nb = (N + 3) / 4;
  #pragma omp parallel
  {
    int8_t* w = (int8_t*)aligned_alloc(64, 4 * kp);
    int32_t acc[16], sw[4];
    #pragma omp for schedule(static)
    for (long b = 0; b < nb; ++b) {
      const long n0 = 4 * b, nw = N - n0 < 4 ? N - n0 : 4;
      const int8_t* wr[4];
      for (long j = 0; j < nw; ++j) unpack_row(qw + (n0 + j) * (3 * K / 4), K, w + j * kp, kp);
      for (long j = 0; j < 4; ++j) wr[j] = w + (j < nw ? j : 0) * kp;
      for (long j = 0; j < 4; ++j) sw[j] = kg_i8_sum(wr[j], K);
      for (long m0 = 0; m0 < M; m0 += 4) {
        const long nx = M - m0 < 4 ? M - m0 : 4;
        const int8_t* xr[4];
        for (long i = 0; i < 4; ++i) xr[i] = x + (m0 + (i < nx ? i : 0)) * K;
        kg_dot_i8_4x4(xr, (int)nx, wr, (int)nw, K, sw, acc);
        for (long i = 0; i < nx; ++i)
          for (long j = 0; j < nw; ++j) y[(m0 + i) * N + n0 + j] = ((float)acc[i * 4 + j] * xs[m0 + i]) * ws[n0 + j];
      }
    }
    free(w);
  }
}

#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
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

/* pull bytes [lo, hi) of the next packed weight block toward L2 while the tiles compute */
static inline void prefetch_span(const uint8_t* base, long lo, long hi, long end) {
  if (hi > end) hi = end;
  for (long o = lo; o < hi; o += 64) _mm_prefetch((const char*)base + o, _MM_HINT_T1);
}

/* y[t][n0 + i] = x_scale[t] * w_scale[n0 + i] * C[i][t - t0] for the valid part of one 16x16 tile
   (rows i: channels, columns: tokens); one gather reads a token's column, one store writes it */
static void epilogue(const int32_t* c, long n0, long nv, long t0, long tv, const float* xs,
                     const float* ws, float* y, long N) {
  const __mmask16 nm = nv >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nv) - 1u);
  const __m512i col = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                         _mm512_set1_epi32(16));
  const __m512 wsv = _mm512_maskz_loadu_ps(nm, ws + n0);
  for (long j = 0; j < tv; ++j) {
    const __m512i v = _mm512_i32gather_epi32(col, c + j, 4);
    const __m512 r = _mm512_mul_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(xs[t0 + j])), wsv);
    _mm512_mask_storeu_ps(y + (t0 + j) * N + n0, nm, r);
  }
}

static void gemm_amx(const int8_t* restrict x, const float* restrict xs, const uint8_t* restrict qw,
                     const float* restrict ws, float* restrict y, long M, long K, long N) {
  const long kp = (K + 63) / 64 * 64, k4 = kp / 4, mt = (M + 15) / 16, nb = (N + 31) / 32;
  /* activations in VNNI tile layout: xp[tile][k4][token 0..15][4], zero padded */
  int8_t* xp = (int8_t*)aligned_alloc(64, (size_t)mt * kp * 16 + 64);
  memset(xp, 0, (size_t)mt * kp * 16);
  #pragma omp parallel for schedule(static)
  for (long m = 0; m < M; ++m) {  /* K % 4 == 0: move 4 consecutive k of a token at a time */
    int8_t* dst = xp + (m / 16) * k4 * 64 + (m % 16) * 4;
    for (long q = 0; q < K / 4; ++q) memcpy(dst + q * 64, x + m * K + 4 * q, 4);
  }
  #pragma omp parallel
  {
    const long ws_ = kp + 64;  /* row stride of the weight block: +64 avoids 4 KiB set aliasing */
    int8_t* wb = (int8_t*)aligned_alloc(64, 32 * ws_ + 64);
    int32_t* cb = (int32_t*)aligned_alloc(64, 4 * 256 * sizeof(int32_t));
    load_tile_config();
    #pragma omp for schedule(static)
    for (long b = 0; b < nb; ++b) {
      const long n0 = b * 32, nv = N - n0 < 32 ? N - n0 : 32;
      for (long r = 0; r < 32; ++r) {
        if (r < nv) unpack_row(qw + (n0 + r) * (3 * K / 4), K, wb + r * ws_, kp);
        else memset(wb + r * ws_, 0, kp);
      }
      /* the next block's packed rows are contiguous: spread their prefetch over the token tiles */
      const uint8_t* next = qw + (n0 + 32) * (3 * K / 4);
      const long next_bytes = n0 + 32 < N ? ((N - n0 - 32 < 32 ? N - n0 - 32 : 32) * (3 * K / 4)) : 0;
      const long step = ((next_bytes / ((mt + 1) / 2) + 63) / 64) * 64;
      long t = 0;
      for (; t + 1 < mt; t += 2) {  /* two token tiles: 2 x 2 accumulator tiles */
        prefetch_span(next, (t / 2) * step, (t / 2 + 1) * step, next_bytes);
        const int8_t* b0 = xp + t * k4 * 64;
        const int8_t* b1 = b0 + k4 * 64;
        _tile_zero(0); _tile_zero(1); _tile_zero(2); _tile_zero(3);
        for (long k = 0; k < kp; k += 64) {
          _tile_loadd(4, wb + k, ws_);
          _tile_loadd(5, wb + 16 * ws_ + k, ws_);
          _tile_loadd(6, b0 + k * 16, 64);
          _tile_loadd(7, b1 + k * 16, 64);
          _tile_dpbssd(0, 4, 6);
          _tile_dpbssd(1, 4, 7);
          _tile_dpbssd(2, 5, 6);
          _tile_dpbssd(3, 5, 7);
        }
        _tile_stored(0, cb, 64); _tile_stored(1, cb + 256, 64);
        _tile_stored(2, cb + 512, 64); _tile_stored(3, cb + 768, 64);
        const long t0 = t * 16, tv0 = M - t0 < 16 ? M - t0 : 16, tv1 = M - t0 - 16 < 16 ? M - t0 - 16 : 16;
        const long nv0 = nv < 16 ? nv : 16, nv1 = nv - 16;
        epilogue(cb, n0, nv0, t0, tv0, xs, ws, y, N);
        epilogue(cb + 256, n0, nv0, t0 + 16, tv1, xs, ws, y, N);
        if (nv1 > 0) {
          epilogue(cb + 512, n0 + 16, nv1, t0, tv0, xs, ws, y, N);
          epilogue(cb + 768, n0 + 16, nv1, t0 + 16, tv1, xs, ws, y, N);
        }
      }
      if (t < mt) {  /* last single token tile */
        prefetch_span(next, (t / 2) * step, next_bytes, next_bytes);
        const int8_t* b0 = xp + t * k4 * 64;
        _tile_zero(0); _tile_zero(2);
        for (long k = 0; k < kp; k += 64) {
          _tile_loadd(4, wb + k, ws_);
          _tile_loadd(5, wb + 16 * ws_ + k, ws_);
          _tile_loadd(6, b0 + k * 16, 64);
          _tile_dpbssd(0, 4, 6);
          _tile_dpbssd(2, 5, 6);
        }
        _tile_stored(0, cb, 64); _tile_stored(2, cb + 512, 64);
        const long t0 = t * 16, tv0 = M - t0 < 16 ? M - t0 : 16;
        const long nv0 = nv < 16 ? nv : 16, nv1 = nv - 16;
        epilogue(cb, n0, nv0, t0, tv0, xs, ws, y, N);
        if (nv1 > 0) epilogue(cb + 512, n0 + 16, nv1, t0, tv0, xs, ws, y, N);
      }
    }
    _tile_release();
    free(wb); free(cb);
  }
  free(xp);
}
#endif

/* allow_amx = 0 forces the portable path (used to test it) */
void w6a8_gemm(const int8_t* x, const float* xs, const uint8_t* qw, const float* ws, float* y,
               long M, long K, long N, long allow_amx) {
#if defined(__AMX_TILE__) && defined(__AMX_INT8__)
  if (allow_amx && amx_usable()) { gemm_amx(x, xs, qw, ws, y, M, K, N); return; }
#endif
  gemm_portable(x, xs, qw, ws, y, M, K, N);
}
"""

_LIB = load_library(
    _SRC,
    flags=FLAGS,
    functions={"w6a8_gemm": (None, ["ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"])},
)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.register_buffer("qweight", torch.zeros(out_features, 3 * in_features // 4, dtype=torch.uint8))
        self.register_buffer("w_scale", torch.zeros(out_features))

    def forward(self, x: torch.Tensor, x_scale: torch.Tensor) -> torch.Tensor:
        qw = self.qweight.contiguous()
        ws = self.w_scale.contiguous()
        x = x.contiguous()
        xs = x_scale.contiguous()
        m, k = x.shape
        n = qw.shape[0]
        y = torch.empty(m, n, dtype=xs.dtype)
        if m > 0 and n > 0:
            _LIB.w6a8_gemm(
                x.data_ptr(), xs.data_ptr(), qw.data_ptr(), ws.data_ptr(), y.data_ptr(), m, k, n, 1
            )
        return y
