"""Multi-LoRA linear (C/OpenMP): Punica-style per-token adapters fused into one base GEMM.

One packed SGEMM (Goto/BLIS loop nest, 12x32 AVX-512 micro-kernel with a scalar fallback) computes
``x W^T`` for the whole batch. While a row of ``x`` is packed it also accumulates that token's
``t = scale * A[id] x`` from its adapter's pre-transposed ``A`` (x read once), and when a C tile is
final an epilogue adds ``t B[id]^T`` from the adapter's pre-transposed ``B`` while the tile is still
in L1. No per-adapter masks, gathers or scatters (the eager version loops over adapters with them).
Threads split the output columns. The base GEMM dominates; it runs at roughly 90-95% of MKL here,
so overall the layer about matches eager PyTorch rather than beating it.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import DEFAULT_FLAGS, load_library

_SRC = r"""
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#ifdef __AVX512F__
#include <immintrin.h>
#endif

/* ---------------- packed SGEMM core (Goto/BLIS loop nest, 12x32 AVX-512 micro-kernel) ------------- */
#ifndef MR
#define MR 12
#endif
#define NR 32
#ifndef KC
#define KC 256
#endif
#ifndef MC
#define MC 96
#endif
#ifndef NC
#define NC 1024
#endif

/* Operand element (row, k): p[row * sm + k * sk] for k < k_main, else p2[row * sm2 + (k - k_main) * sk2]
   (the second part lets a GEMM run over a K dimension extended by extra columns). */
typedef struct {
  const float* p; long sm, sk, k_main;
  const float* p2; long sm2, sk2;
} operand_t;

/* Low-rank side product computed while x is being packed: t[m, :] += x[m, k] * At[k, :]. */
typedef struct {
  const float* At;   /* [K, r] or, with ids, [n_adapters, K, r] */
  const long* ids;   /* per-row adapter (-1: none) or NULL for a single adapter */
  long r, K, n_ad;   /* rank, main K, number of adapters (ids outside [0, n_ad) mean none) */
  float* t;          /* [M, r] accumulator of the calling thread */
  int compute;       /* accumulate during this pass (the first pass over x of the thread) */
} lowrank_t;

/* Epilogue on a finished C tile: rows [m0, m0+mr), cols [n0, n0+nr), c points at C[m0, n0]. */
typedef void (*epilogue_fn)(float* c, long ldc, long m0, long n0, long mr, long nr, const void* ctx);

static inline float op_at(const operand_t* o, long m, long k) {
  return k < o->k_main ? o->p[m * o->sm + k * o->sk] : o->p2[m * o->sm2 + (k - o->k_main) * o->sk2];
}

#ifdef __AVX512F__
static inline void tr16(__m512 r[16]) {   /* in-register 16x16 transpose */
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {
    __m512d a0 = _mm512_castps_pd(t[4 * i]), a1 = _mm512_castps_pd(t[4 * i + 1]);
    __m512d a2 = _mm512_castps_pd(t[4 * i + 2]), a3 = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3));
  }
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0x88);
      t[8 * i + j + 4] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + j + 4], 0xdd);
    }
  for (int j = 0; j < 8; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
  }
}
#endif

/* t[m, :] += sum_k panel[k][i] * At_m[k0 + k, :] for the rows of one packed MR-row A panel (read
   from L1 right after packing): MR independent register accumulators per 16 ranks, so the update
   is throughput- not latency-bound. Rows without a valid adapter accumulate into a dummy. */
static void lowrank_accum(const float* panel, long rows, long m_base, long k0, long kmain,
                          const lowrank_t* lr) {
  const long r = lr->r;
  const float* at[MR];
  float* tr[MR];
  float dummy[16] __attribute__((aligned(64)));
  for (long i = 0; i < MR; ++i) {
    long m = m_base + i;
    int valid = i < rows;
    long id = (valid && lr->ids) ? lr->ids[m] : 0;
    if (id < 0 || id >= lr->n_ad) valid = 0;
    at[i] = lr->At + (valid ? id : 0) * lr->K * r + k0 * r;
    tr[i] = valid ? lr->t + m * r : NULL;
  }
  for (long j0 = 0; j0 < r; j0 += 16) {
    long w = r - j0 < 16 ? r - j0 : 16;
#ifdef __AVX512F__
    __mmask16 mask = (__mmask16)((1u << w) - 1u);
    __m512 acc[MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) acc[i] = tr[i] ? _mm512_maskz_loadu_ps(mask, tr[i] + j0) : _mm512_setzero_ps();
    for (long k = 0; k < kmain; ++k) {
      const float* col = panel + k * MR;
#pragma GCC unroll 16
      for (int i = 0; i < MR; ++i)
        acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(col[i]), _mm512_maskz_loadu_ps(mask, at[i] + k * r + j0), acc[i]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) _mm512_mask_storeu_ps(tr[i] ? tr[i] + j0 : dummy, mask, acc[i]);
#else
    for (long i = 0; i < MR; ++i) {
      float acc[16];
      for (long j = 0; j < w; ++j) acc[j] = tr[i] ? tr[i][j0 + j] : 0.f;
      for (long k = 0; k < kmain; ++k) {
        const float v = panel[k * MR + i];
        for (long j = 0; j < w; ++j) acc[j] += v * at[i][k * r + j0 + j];
      }
      if (tr[i]) for (long j = 0; j < w; ++j) tr[i][j0 + j] = acc[j];
    }
#endif
  }
  (void)dummy;
}

/* Pack rows [m0, m0+mc) x k in [k0, k0+kc) into R-row micro-panels laid out [kc][R], zero padded. */
static void pack_panels(const operand_t* o, long m0, long mc, long k0, long kc, long R, float* dst,
                        const lowrank_t* lr) {
  for (long i0 = 0; i0 < mc; i0 += R) {
    long rows = mc - i0 < R ? mc - i0 : R;
    long kmain = o->k_main - k0;
    if (kmain > kc) kmain = kc;
    if (kmain < 0) kmain = 0;
    if (o->sk == 1) {                       /* rows contiguous in k: transpose while packing */
      long i = 0;
#ifdef __AVX512F__
      for (; i < rows; i += 16) {             /* 16 rows (or fewer) x 16 k through a register transpose */
        long nrow = rows - i < 16 ? rows - i : 16;
        const float* src = o->p + (m0 + i0 + i) * o->sm + k0;
        __mmask16 keep = (__mmask16)((1u << nrow) - 1u);
        long k = 0;
        for (; k + 16 <= kmain; k += 16) {
          __m512 v[16];
          for (int q = 0; q < 16; ++q) v[q] = q < nrow ? _mm512_loadu_ps(src + q * o->sm + k) : _mm512_setzero_ps();
          tr16(v);
          for (int q = 0; q < 16; ++q) _mm512_mask_storeu_ps(dst + (k + q) * R + i, keep, v[q]);
        }
        for (; k < kmain; ++k)
          for (long q = 0; q < nrow; ++q) dst[k * R + i + q] = src[q * o->sm + k];
      }
#else
      for (; i < rows; ++i) {
        const float* src = o->p + (m0 + i0 + i) * o->sm + k0;
        for (long k = 0; k < kmain; ++k) dst[k * R + i] = src[k];
      }
#endif
      if (lr && lr->compute) lowrank_accum(dst, rows, m0 + i0, k0, kmain, lr);
    } else {
      for (long k = 0; k < kmain; ++k) {
        const float* src = o->p + (k0 + k) * o->sk + (m0 + i0) * o->sm;
        if (o->sm == 1)
          for (long i = 0; i < rows; ++i) dst[k * R + i] = src[i];
        else
          for (long i = 0; i < rows; ++i) dst[k * R + i] = src[i * o->sm];
      }
    }
    for (long k = kmain; k < kc; ++k)       /* extended K columns */
      for (long i = 0; i < rows; ++i) dst[k * R + i] = op_at(o, m0 + i0 + i, k0 + k);
    if (rows < R)
      for (long k = 0; k < kc; ++k)
        for (long i = rows; i < R; ++i) dst[k * R + i] = 0.f;
    dst += kc * R;
  }
}

/* C[0..MR)[0..NR) (row stride ldc) = (acc ? C : 0) + sum_k a[k][0..MR) (x) b[k][0..NR) */
static void ukernel(long kc, const float* restrict a, const float* restrict b, float* restrict c, long ldc,
                    int acc) {
#ifdef __AVX512F__
  __m512 c0[MR], c1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    if (acc) {
      c0[i] = _mm512_loadu_ps(c + i * ldc);
      c1[i] = _mm512_loadu_ps(c + i * ldc + 16);
    } else {
      c0[i] = _mm512_setzero_ps();
      c1[i] = _mm512_setzero_ps();
    }
  }
  for (long k = 0; k < kc; ++k) {
    __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      __m512 ai = _mm512_set1_ps(a[i]);
      c0[i] = _mm512_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(ai, b1, c1[i]);
    }
    a += MR;
    b += NR;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    _mm512_storeu_ps(c + i * ldc, c0[i]);
    _mm512_storeu_ps(c + i * ldc + 16, c1[i]);
  }
#else
  float t[MR * NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) t[i * NR + j] = acc ? c[i * ldc + j] : 0.f;
  for (long k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i) {
      float ai = a[i];
      for (int j = 0; j < NR; ++j) t[i * NR + j] += ai * b[j];
    }
    a += MR;
    b += NR;
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) c[i * ldc + j] = t[i * NR + j];
#endif
}

/* This thread's share of C[0..M) x [n_lo, n_hi) = A (M x Kt) . B^T (B given as (n, k)), followed by
   epi on every finished tile. K (>= 1) is split into near-equal blocks (no tiny tail block). */
static void gemm_thread(long M, long n_lo, long n_hi, long Kt, const operand_t* A, const operand_t* B,
                        float* C, long ldc, lowrank_t* lr, epilogue_fn epi, const void* ctx) {
  if (M <= 0 || n_hi <= n_lo || Kt <= 0) return;
  long nkb = (Kt + KC - 1) / KC;
  long kb = (Kt + nkb - 1) / nkb;
  float* pb = (float*)aligned_alloc(64, sizeof(float) * KC * NC);
  float* pa = (float*)aligned_alloc(64, sizeof(float) * KC * (MC + MR));
  float tile[MR * NR] __attribute__((aligned(64)));
  for (long jc = n_lo; jc < n_hi; jc += NC) {
    long nc = n_hi - jc < NC ? n_hi - jc : NC;
    if (lr) lr->compute = (jc == n_lo);
    for (long pc = 0; pc < Kt; pc += kb) {
      long kc = Kt - pc < kb ? Kt - pc : kb;
      int last = pc + kc >= Kt;
      pack_panels(B, jc, nc, pc, kc, NR, pb, NULL);
      for (long ic = 0; ic < M; ic += MC) {
        long mc = M - ic < MC ? M - ic : MC;
        pack_panels(A, ic, mc, pc, kc, MR, pa, lr);
        for (long jr = 0; jr < nc; jr += NR) {
          long nr = nc - jr < NR ? nc - jr : NR;
          for (long ir = 0; ir < mc; ir += MR) {
            long mr = mc - ir < MR ? mc - ir : MR;
            float* c = C + (ic + ir) * ldc + jc + jr;
            if (pc > 0 && ir + MR < mc) {         /* next tile's C rows arrive during this tile */
              const float* cn = c + MR * ldc;
              for (int i = 0; i < MR; ++i) {
                __builtin_prefetch(cn + i * ldc, 1, 3);
                __builtin_prefetch(cn + i * ldc + 16, 1, 3);
              }
            }
            if (mr == MR && nr == NR) {
              ukernel(kc, pa + ir * kc, pb + jr * kc, c, ldc, pc > 0);
            } else {                        /* edge tile: through a full-size buffer */
              if (pc > 0)
                for (long i = 0; i < mr; ++i)
                  for (long j = 0; j < nr; ++j) tile[i * NR + j] = c[i * ldc + j];
              ukernel(kc, pa + ir * kc, pb + jr * kc, tile, NR, pc > 0);
              for (long i = 0; i < mr; ++i)
                for (long j = 0; j < nr; ++j) c[i * ldc + j] = tile[i * NR + j];
            }
            if (last && epi) epi(c, ldc, ic + ir, jc + jr, mr, nr, ctx);
          }
        }
      }
    }
  }
  free(pa);
  free(pb);
}

/* Column range of thread t of T, in whole NR tiles. */
static void split_cols(long N, int t, int T, long* lo, long* hi) {
  long tiles = (N + NR - 1) / NR;
  long a = tiles * t / T, b = tiles * (t + 1) / T;
  *lo = a * NR;
  *hi = b * NR < N ? b * NR : N;
  if (*lo > N) *lo = N;
}
/* ---------------- multi-LoRA: y = x W^T + scale * B[id] A[id] x, per token -------------------------
   The base GEMM runs once for all tokens. While x is packed, each row also accumulates its own
   t = scale * A[id] x (from the pre-transposed, pre-scaled A of its adapter); when a C tile is
   finished, an epilogue adds t (x) B[id]^T to each row from the transposed B of the row's adapter
   (Punica's SGMV fused into the GEMM's tile loop). Rows with id -1 get the base output only. */
typedef struct { const float* t; const long* ids; const float* Bt; long r, N, n_ad; } lora_epi_t;

static void lora_epilogue(float* c, long ldc, long m0, long n0, long mr, long nr, const void* ctx) {
  const lora_epi_t* e = (const lora_epi_t*)ctx;
  for (long i = 0; i < mr; ++i) {
    long a = e->ids[m0 + i];
    if (a < 0 || a >= e->n_ad) continue;
    const float* t = e->t + (m0 + i) * e->r;
    float* ci = c + i * ldc;
    for (long j = 0; j < e->r; ++j) {
      const float tv = t[j];
      const float* b = e->Bt + (a * e->r + j) * e->N + n0;
      #pragma omp simd
      for (long q = 0; q < nr; ++q) ci[q] += tv * b[q];
    }
  }
}

void multi_lora_linear_f32(const float* x, const long* ids, const float* W, const float* A,
                           const float* B, float* y, long M, long K, long N, long r, long n_ad,
                           float scale) {
  float* At = (float*)malloc(sizeof(float) * (n_ad * K * r > 0 ? n_ad * K * r : 1));  /* [n_ad, K, r] */
  float* Bt = (float*)malloc(sizeof(float) * (n_ad * r * N > 0 ? n_ad * r * N : 1));  /* [n_ad, r, N] */
  #pragma omp parallel
  {
    #pragma omp for schedule(static) nowait
    for (long ak = 0; ak < n_ad * K; ++ak) {
      long a = ak / K, k = ak % K;
      for (long j = 0; j < r; ++j) At[ak * r + j] = scale * A[(a * r + j) * K + k];
    }
    #pragma omp for schedule(static)
    for (long aj = 0; aj < n_ad * r; ++aj) {
      long a = aj / r, j = aj % r;
      for (long n = 0; n < N; ++n) Bt[aj * N + n] = B[(a * N + n) * r + j];
    }
    long lo, hi;
    split_cols(N, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
    if (lo < hi) {
      float* t = (float*)calloc((size_t)(M * r > 0 ? M * r : 1), sizeof(float));
      lowrank_t lr = {At, ids, r, K, n_ad, t, 0};
      lora_epi_t ep = {t, ids, Bt, r, N, n_ad};
      operand_t ox = {x, K, 1, K, NULL, 0, 0};
      operand_t ow = {W, K, 1, K, NULL, 0, 0};
      gemm_thread(M, lo, hi, K, &ox, &ow, y, N, &lr, lora_epilogue, &ep);
      free(t);
    }
  }
  free(Bt);
  free(At);
}
"""

# PyTorch's own floating-point contract (it is built with -fno-math-errno -fno-trapping-math): lets gcc
# vectorize the epilogues' sqrtf; results, inf and nan are unchanged.
_FLAGS = (*DEFAULT_FLAGS, "-fno-math-errno", "-fno-trapping-math", "-mprefer-vector-width=512")

_LIB = load_library(
    _SRC, flags=_FLAGS, functions={"multi_lora_linear_f32": (None, ["ptr"] * 6 + ["long"] * 5 + ["float"])}
)


class ModelNew(nn.Module):
    def __init__(self, in_features: int, out_features: int, rank: int, n_adapters: int, alpha: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.lora_A = nn.Parameter(torch.empty(n_adapters, rank, in_features))
        self.lora_B = nn.Parameter(torch.empty(n_adapters, out_features, rank))
        self.scale = alpha / rank

    def forward(self, x: torch.Tensor, adapter_ids: torch.Tensor) -> torch.Tensor:
        w = self.weight.detach().contiguous()
        a = self.lora_A.detach().contiguous()
        b = self.lora_B.detach().contiguous()
        n_ad, rank, in_f = a.shape
        out_f = w.shape[0]
        x2 = x.contiguous()
        ids = adapter_ids.to(torch.int64).contiguous()
        y = torch.empty(x2.shape[0], out_f, dtype=x.dtype)
        _LIB.multi_lora_linear_f32(
            x2.data_ptr(), ids.data_ptr(), w.data_ptr(), a.data_ptr(), b.data_ptr(), y.data_ptr(),
            x2.shape[0], in_f, out_f, rank, n_ad, self.scale,
        )  # fmt: skip
        return y
