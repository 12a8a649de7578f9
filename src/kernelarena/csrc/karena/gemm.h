/* karena/gemm.h: one packed fp32 GEMM core (Goto/BLIS loop nest) for every GEMM-class kernel.

   C[M, N] (+)= A . B^T where A is "M rows x K" and B is "N rows x K", each described by a
   kg_operand (any strides, so transposed operands need no copy, plus an optional second part that
   extends K, e.g. LoRA's rank columns). One thread computes a column range of C with
   kg_gemm_thread; kg_sgemm splits a plain GEMM over OpenMP threads.

   The micro-kernel is written once with GCC/Clang vector extensions; the ISA the file is compiled
   for picks the register tile (the accumulators must fit the register file):
     AVX-512        16-wide vectors, 12 x 32 tile (24 of 32 zmm accumulate)
     AVX2 + FMA      8-wide vectors,  6 x 16 tile (12 of 16 ymm accumulate)
     anything else   4-wide vectors,  6 x 8 tile (SSE, NEON, ...: the compiler maps the vectors)
   Include-time knobs (#define before the include): KG_KC, KG_MC, KG_NC block sizes and
   KG_ROWS_OUTER (1: micro-panel of A stays in L1, B micro-panels stream from L2; 0: the reverse).

   Hooks: a kg_lowrank accumulates t[m, :] += x[m, k] * At[k, :] while A is packed (x read once);
   a kg_epilogue receives each finished tile (in a small buffer, row stride KG_NR) and writes it
   to C itself: bias, activation, scale, LoRA add, Adam, online log-sum-exp, ... */
#ifndef KARENA_GEMM_H
#define KARENA_GEMM_H

#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#include "vmath.h" /* the vector type, its width and the path (KV_VW, KV_ISA), exp */

#define KG_VW KV_VW
#define KG_ISA KV_ISA
#if KV_VW == 16
#define KG_MR 12
#else
#define KG_MR 6
#endif
#define KG_NR (2 * KG_VW)
#ifndef KG_KC /* K depth of a packed block: B micro-panel (KC x NR) plus A micro-panel near L1 size */
#if KG_VW == 8
#define KG_KC 384
#else
#define KG_KC 256
#endif
#endif
#ifndef KG_MC
#define KG_MC 96 /* a multiple of 12 and 6 */
#endif
#ifndef KG_NC
#define KG_NC 1024
#endif
#ifndef KG_ROWS_OUTER
#define KG_ROWS_OUTER 1
#endif
#define KG_KCMAX (KG_KC + KG_KC / 4) /* a short K tail is folded into the blocks, see kg_gemm_thread */

typedef float kg_vf __attribute__((vector_size(KG_VW * 4)));
typedef float kg_vfu __attribute__((vector_size(KG_VW * 4), aligned(4))); /* unaligned access */

static inline kg_vf kg_load(const float* p) { return *(const kg_vfu*)p; }
static inline void kg_store(float* p, kg_vf v) { *(kg_vfu*)p = v; }

/* Operand element (row, k): p[row * sm + k * sk] for k < k_main, else p2[row * sm2 + (k - k_main) * sk2]. */
typedef struct {
  const float* p; long sm, sk, k_main;
  const float* p2; long sm2, sk2;
} kg_operand;

/* Low-rank side product computed while A is packed: t[m, :] += A[m, k] * At[k, :]. */
typedef struct {
  const float* At;   /* [K, r] or, with ids, [n_adapters, K, r] */
  const long* ids;   /* per-row adapter (outside [0, n_ad): none) or NULL for a single adapter */
  long r, K, n_ad;   /* rank, main K, number of adapters */
  float* t;          /* [M, r] accumulator of the calling thread */
  int compute;       /* accumulate during this pass (the thread's first pass over A) */
} kg_lowrank;

/* A finished tile: acc[i * KG_NR + j] holds C[m0 + i, n0 + j] for i < mr, j < nr; the epilogue
   writes the result to c = &C[m0, n0] (row stride ldc). */
typedef void (*kg_epilogue)(const float* acc, float* c, long ldc, long m0, long n0, long mr, long nr,
                            const void* ctx);

static inline float kg_op_at(const kg_operand* o, long m, long k) {
  return k < o->k_main ? o->p[m * o->sm + k * o->sk] : o->p2[m * o->sm2 + (k - o->k_main) * o->sk2];
}

#if defined(__AVX512F__)
static inline void kg_tr16(__m512 r[16]) { /* in-register 16x16 transpose */
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
#elif defined(__AVX__)
static inline void kg_tr8(__m256 r[8]) { /* in-register 8x8 transpose */
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}
#endif

/* Transpose rows [0, nrow) x k in [0, kn) of src (row stride sm, k contiguous) into dst[k * R + q]. */
static inline void kg_pack_rows_t(const float* src, long sm, long nrow, long kn, long R, float* dst) {
  long k = 0;
#if defined(__AVX512F__)
  {
    const __mmask16 keep = (__mmask16)((1u << nrow) - 1u);
    for (; k + 16 <= kn; k += 16) {
      __m512 v[16];
      for (int q = 0; q < 16; ++q) v[q] = q < nrow ? _mm512_loadu_ps(src + q * sm + k) : _mm512_setzero_ps();
      kg_tr16(v);
      for (int q = 0; q < 16; ++q) _mm512_mask_storeu_ps(dst + (k + q) * R, keep, v[q]);
    }
  }
#elif defined(__AVX__)
  {
    const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nrow), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (; k + 8 <= kn; k += 8) {
      __m256 v[8];
      for (int q = 0; q < 8; ++q) v[q] = q < nrow ? _mm256_loadu_ps(src + q * sm + k) : _mm256_setzero_ps();
      kg_tr8(v);
      for (int q = 0; q < 8; ++q) _mm256_maskstore_ps(dst + (k + q) * R, keep, v[q]);
    }
  }
#endif
  for (; k < kn; ++k)
    for (long q = 0; q < nrow; ++q) dst[k * R + q] = src[q * sm + k];
}

/* t[m, :] += sum_k panel[k][i] * At_m[k0 + k, :] for the rows of one packed KG_MR-row panel (read
   from L1 right after packing): KG_MR independent accumulators per vector of ranks. */
static inline void kg_lowrank_accum(const float* panel, long rows, long m_base, long k0, long kmain,
                             const kg_lowrank* lr) {
  const long r = lr->r;
  const float* at[KG_MR];
  float* tr[KG_MR];
  float dummy[KG_VW] __attribute__((aligned(64)));
  for (long i = 0; i < KG_MR; ++i) {
    const long m = m_base + i;
    int valid = i < rows;
    const long id = (valid && lr->ids) ? lr->ids[m] : 0;
    if (id < 0 || id >= lr->n_ad) valid = 0;
    at[i] = lr->At + (valid ? id : 0) * lr->K * r + k0 * r;
    tr[i] = valid ? lr->t + m * r : NULL;
  }
  long j0 = 0;
  for (; j0 + KG_VW <= r; j0 += KG_VW) {
    kg_vf acc[KG_MR];
#pragma GCC unroll 16
    for (int i = 0; i < KG_MR; ++i) acc[i] = tr[i] ? kg_load(tr[i] + j0) : (kg_vf){0};
    for (long k = 0; k < kmain; ++k) {
      const float* col = panel + k * KG_MR;
#pragma GCC unroll 16
      for (int i = 0; i < KG_MR; ++i) acc[i] += col[i] * kg_load(at[i] + k * r + j0);
    }
#pragma GCC unroll 16
    for (int i = 0; i < KG_MR; ++i) kg_store(tr[i] ? tr[i] + j0 : dummy, acc[i]);
  }
  for (long i = 0; i < KG_MR && j0 < r; ++i) { /* rank tail */
    if (!tr[i]) continue;
    for (long k = 0; k < kmain; ++k) {
      const float v = panel[k * KG_MR + i];
      for (long j = j0; j < r; ++j) tr[i][j] += v * at[i][k * r + j];
    }
  }
  (void)dummy;
}

/* Pack rows [m0, m0+mc) x k in [k0, k0+kc) into R-row micro-panels laid out [kc][R], zero padded. */
static inline void kg_pack(const kg_operand* o, long m0, long mc, long k0, long kc, long R, float* dst,
                    const kg_lowrank* lr) {
  long kmain = o->k_main - k0;
  if (kmain > kc) kmain = kc;
  if (kmain < 0) kmain = 0;
  const long npan = (mc + R - 1) / R;
  if (o->sk != 1) { /* k-major source: walk its rows in order and scatter them into the panels */
    for (long k = 0; k < kmain; ++k) {
      const float* src = o->p + (k0 + k) * o->sk + m0 * o->sm;
      for (long pn = 0; pn < npan; ++pn) {
        const long i0 = pn * R, rows = mc - i0 < R ? mc - i0 : R;
        float* d = dst + pn * kc * R + k * R;
        if (o->sm == 1)
          for (long i = 0; i < rows; ++i) d[i] = src[i0 + i];
        else
          for (long i = 0; i < rows; ++i) d[i] = src[(i0 + i) * o->sm];
      }
    }
  }
  for (long i0 = 0; i0 < mc; i0 += R) {
    const long rows = mc - i0 < R ? mc - i0 : R;
    if (o->sk == 1) { /* rows contiguous in k: transpose while packing */
      const float* src = o->p + (m0 + i0) * o->sm + k0;
#if defined(__AVX512F__)
      const long step = 16;
#elif defined(__AVX__)
      const long step = 8;
#else
      const long step = R;
#endif
      for (long i = 0; i < rows; i += step)
        kg_pack_rows_t(src + i * o->sm, o->sm, rows - i < step ? rows - i : step, kmain, R, dst + i);
      if (lr && lr->compute) kg_lowrank_accum(dst, rows, m0 + i0, k0, kmain, lr);
    }
    for (long k = kmain; k < kc; ++k) /* extended K columns */
      for (long i = 0; i < rows; ++i) dst[k * R + i] = kg_op_at(o, m0 + i0 + i, k0 + k);
    if (rows < R)
      for (long k = 0; k < kc; ++k)
        for (long i = rows; i < R; ++i) dst[k * R + i] = 0.f;
    dst += kc * R;
  }
}

/* C[0..KG_MR)[0..KG_NR) (row stride ldc) = (acc ? C : 0) + sum_k a[k][0..MR) (x) b[k][0..NR) */
static inline void kg_ukernel(long kc, const float* restrict a, const float* restrict b, float* restrict c,
                              long ldc, int acc) {
  kg_vf c0[KG_MR], c1[KG_MR];
#pragma GCC unroll 16
  for (int i = 0; i < KG_MR; ++i) {
    c0[i] = acc ? kg_load(c + i * ldc) : (kg_vf){0};
    c1[i] = acc ? kg_load(c + i * ldc + KG_VW) : (kg_vf){0};
  }
  for (long k = 0; k < kc; ++k) {
    const kg_vf b0 = *(const kg_vf*)b, b1 = *(const kg_vf*)(b + KG_VW); /* packed: aligned */
#pragma GCC unroll 16
    for (int i = 0; i < KG_MR; ++i) {
      const float ai = a[i];
      c0[i] += ai * b0;
      c1[i] += ai * b1;
    }
    a += KG_MR;
    b += KG_NR;
  }
#pragma GCC unroll 16
  for (int i = 0; i < KG_MR; ++i) {
    kg_store(c + i * ldc, c0[i]);
    kg_store(c + i * ldc + KG_VW, c1[i]);
  }
}

/* Depth of the K blocks for a K of Kt: near-equal blocks of at most KG_KC, except that a tail of
   at most KC/4 (e.g. LoRA's rank columns) is folded into the others (blocks up to KG_KCMAX)
   instead of costing one more pass over C. */
static inline long kg_kblock(long Kt) {
  long nkb = (Kt + KG_KC - 1) / KG_KC;
  if (nkb > 1 && Kt - (nkb - 1) * KG_KC <= KG_KC / 4) --nkb;
  return nkb > 0 ? (Kt + nkb - 1) / nkb : 1;
}

/* Floats of a pre-packed B for n rows and Kt columns (see kg_prepack_b). */
static inline long kg_prepacked_floats(long n, long Kt) { return ((n + KG_NR - 1) / KG_NR) * KG_NR * Kt; }

/* Pack all of B's rows [0, n) once, K block after K block (block at pc starts at pc * npad), for
   callers that run many GEMMs against the same B (e.g. one per vocabulary chunk). */
static inline void kg_prepack_b(const kg_operand* B, long n, long Kt, float* dst) {
  const long kb = kg_kblock(Kt), npad = ((n + KG_NR - 1) / KG_NR) * KG_NR;
  for (long pc = 0; pc < Kt; pc += kb) kg_pack(B, 0, n, pc, Kt - pc < kb ? Kt - pc : kb, KG_NR, dst + pc * npad, NULL);
}

/* The loop nest; pbp (or NULL) is B pre-packed by kg_prepack_b for columns [n_lo, n_hi). */
static inline void kg_gemm_core(long M, long n_lo, long n_hi, long Kt, const kg_operand* A, const kg_operand* B,
                         const float* pbp, float* C, long ldc, kg_lowrank* lr, kg_epilogue epi, const void* ctx) {
  if (M <= 0 || n_hi <= n_lo) return;
  float tile[KG_MR * KG_NR] __attribute__((aligned(64)));
  if (Kt <= 0) { /* empty sum: the epilogue still sees the (zero) tiles */
    memset(tile, 0, sizeof tile);
    for (long i0 = 0; i0 < M; i0 += KG_MR)
      for (long j0 = n_lo; j0 < n_hi; j0 += KG_NR) {
        const long mr = M - i0 < KG_MR ? M - i0 : KG_MR, nr = n_hi - j0 < KG_NR ? n_hi - j0 : KG_NR;
        if (epi) epi(tile, C + i0 * ldc + j0, ldc, i0, j0, mr, nr, ctx);
        else for (long i = 0; i < mr; ++i) memset(C + (i0 + i) * ldc + j0, 0, sizeof(float) * nr);
      }
    return;
  }
  const long kb = kg_kblock(Kt);
  const long ncb = pbp ? n_hi - n_lo : KG_NC; /* a pre-packed B is one column block */
  const long npad = ((n_hi - n_lo + KG_NR - 1) / KG_NR) * KG_NR;
  float* pb = pbp ? NULL : (float*)aligned_alloc(64, sizeof(float) * KG_KCMAX * (npad < KG_NC ? npad : KG_NC));
  float* pa = (float*)aligned_alloc(64, sizeof(float) * KG_KCMAX * (KG_MC + KG_MR));
  for (long jc = n_lo; jc < n_hi; jc += ncb) {
    const long nc = n_hi - jc < ncb ? n_hi - jc : ncb;
    if (lr) lr->compute = (jc == n_lo);
    for (long pc = 0; pc < Kt; pc += kb) {
      const long kc = Kt - pc < kb ? Kt - pc : kb;
      const int last = pc + kc >= Kt, fin = last && epi;
      const float* bblk = pbp ? pbp + pc * npad : pb;
      if (!pbp) kg_pack(B, jc, nc, pc, kc, KG_NR, pb, NULL);
      for (long ic = 0; ic < M; ic += KG_MC) {
        const long mc = M - ic < KG_MC ? M - ic : KG_MC;
        kg_pack(A, ic, mc, pc, kc, KG_MR, pa, lr);
#if KG_ROWS_OUTER
        for (long ir = 0; ir < mc; ir += KG_MR)
          for (long jr = 0; jr < nc; jr += KG_NR) {
#else
        for (long jr = 0; jr < nc; jr += KG_NR)
          for (long ir = 0; ir < mc; ir += KG_MR) {
#endif
            const long mr = mc - ir < KG_MR ? mc - ir : KG_MR, nr = nc - jr < KG_NR ? nc - jr : KG_NR;
            float* c = C + (ic + ir) * ldc + jc + jr;
            if (mr == KG_MR && nr == KG_NR && !fin) {
              kg_ukernel(kc, pa + ir * kc, bblk + jr * kc, c, ldc, pc > 0);
            } else { /* edge or final tile: through the tile buffer */
              if (pc > 0)
                for (long i = 0; i < mr; ++i) memcpy(tile + i * KG_NR, c + i * ldc, sizeof(float) * nr);
              kg_ukernel(kc, pa + ir * kc, bblk + jr * kc, tile, KG_NR, pc > 0);
              if (fin)
                epi(tile, c, ldc, ic + ir, jc + jr, mr, nr, ctx);
              else
                for (long i = 0; i < mr; ++i) memcpy(c + i * ldc, tile + i * KG_NR, sizeof(float) * nr);
            }
          }
      }
    }
  }
  free(pa);
  free(pb);
}

/* This thread's share of C[0..M) x [n_lo, n_hi) = A (M x Kt) . B^T, then epi (if any) on every
   finished tile (C holds partial sums between K blocks; an epilogue may write elsewhere). */
static inline void kg_gemm_thread(long M, long n_lo, long n_hi, long Kt, const kg_operand* A, const kg_operand* B,
                           float* C, long ldc, kg_lowrank* lr, kg_epilogue epi, const void* ctx) {
  kg_gemm_core(M, n_lo, n_hi, Kt, A, B, NULL, C, ldc, lr, epi, ctx);
}

/* Column range [lo, hi) of thread t of T, in whole KG_NR tiles. */
static inline void kg_split_cols(long N, int t, int T, long* lo, long* hi) {
  const long tiles = (N + KG_NR - 1) / KG_NR;
  const long a = tiles * t / T, b = tiles * (t + 1) / T;
  *lo = a * KG_NR < N ? a * KG_NR : N;
  *hi = b * KG_NR < N ? b * KG_NR : N;
}

/* Row range [lo, hi) of thread t of T, in whole KG_MR panels. */
static inline void kg_split_rows(long M, int t, int T, long* lo, long* hi) {
  const long panels = (M + KG_MR - 1) / KG_MR;
  const long a = panels * t / T, b = panels * (t + 1) / T;
  *lo = a * KG_MR < M ? a * KG_MR : M;
  *hi = b * KG_MR < M ? b * KG_MR : M;
}

typedef struct { kg_epilogue epi; const void* ctx; long m_off; } kg_shift_t;
static inline void kg_shift_epi(const float* acc, float* c, long ldc, long m0, long n0, long mr, long nr,
                         const void* ctx) {
  const kg_shift_t* s = (const kg_shift_t*)ctx;
  s->epi(acc, c, ldc, m0 + s->m_off, n0, mr, nr, s->ctx);
}

/* C[M, N] = A . B^T over all OpenMP threads (columns split when N is wide, rows otherwise); the
   epilogue's m0 is the row in C. */
static inline void kg_sgemm(long M, long N, long K, const kg_operand* A, const kg_operand* B, float* C, long ldc,
                     kg_epilogue epi, const void* ctx) {
  if (M <= 0 || N <= 0) return;
  const int T = omp_get_max_threads();
  const int by_cols = N >= (long)T * 4 * KG_NR || M < (long)T * KG_MR;
#pragma omp parallel num_threads(T)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    long lo, hi;
    if (by_cols) {
      kg_split_cols(N, t, nt, &lo, &hi);
      kg_gemm_thread(M, lo, hi, K, A, B, C, ldc, NULL, epi, ctx);
    } else {
      kg_split_rows(M, t, nt, &lo, &hi);
      kg_operand a = *A;
      a.p += lo * a.sm;
      if (a.p2) a.p2 += lo * a.sm2;
      kg_shift_t sh = {epi, ctx, lo};
      if (hi > lo) kg_gemm_thread(hi - lo, 0, N, K, &a, B, C + lo * ldc, ldc, NULL, epi ? kg_shift_epi : NULL, &sh);
    }
  }
}

/* Non-temporal copy of a write-once output row (no read-for-ownership of the destination lines). */
static inline void kg_stream_store(float* restrict dst, const float* restrict src, long n) {
  long i = 0;
#if defined(__AVX512F__)
  for (; i < n && ((uintptr_t)(dst + i) & 63); ++i) dst[i] = src[i];
  for (; i + 16 <= n; i += 16) _mm512_stream_ps(dst + i, _mm512_loadu_ps(src + i));
#elif defined(__AVX__)
  for (; i < n && ((uintptr_t)(dst + i) & 31); ++i) dst[i] = src[i];
  for (; i + 8 <= n; i += 8) _mm256_stream_ps(dst + i, _mm256_loadu_ps(src + i));
#endif
  for (; i < n; ++i) dst[i] = src[i];
}

/* Orders the streaming stores of kg_stream_store before the thread's results are used. */
static inline void kg_stream_fence(void) {
#if defined(__AVX__) || defined(__AVX512F__)
  _mm_sfence();
#endif
}

/* ---- epilogue helpers: vector select/max and exp on kg_vf (for activations, log-sum-exp) ---- */
typedef kv_i kg_vi;

static inline kg_vf kg_sel(kg_vi m, kg_vf a, kg_vf b) { return kv_sel(m, a, b); }
static inline kg_vf kg_max(kg_vf a, kg_vf b) { return kv_max(a, b); }
/* exp(x), < 2 ulp on [-87, 88], clamped outside: vmath.h's kv_exp_fast */
static inline kg_vf kg_exp(kg_vf x) { return kv_exp_fast(x); }

/* silu(g) * u = g / (1 + exp(-g)) * u */
static inline kg_vf kg_silu_mul(kg_vf g, kg_vf u) { return g / (1.0f + kg_exp(-g)) * u; }

/* ---- int8 dot-product block for the quantized GEMMs' vector path (AMX elsewhere) ----
   acc[i * 4 + j] = sum_k x_i[k] * w_j[k], exact int32, for 4 activation rows and 4 weight rows;
   rows past nx / nw repeat row 0 (their results are ignored). Any int8 values.
   wsum[j] = kg_i8_sum(w_j, K): the VNNI path needs it (below); callers compute it once per weight
   block, which every token block then reuses. Paths:
     AVX-512 VNNI  vpdpbusd takes unsigned x signed bytes, so x is biased to x + 128 (x ^ 0x80) and
                   the bias is taken back exactly: sum (x + 128) w - 128 sum w. 64 MACs an
                   instruction, 16 zmm accumulators.
     AVX2          bytes sign-extended to int16 (vpmovsxbw) and multiplied pairwise (vpmaddwd):
                   exact for any int8; two passes of 4 x 2 rows keep the accumulators in 16 ymm.
     other         a widening multiply-add reduction the compiler vectorizes. */
static inline int32_t kg_i8_sum(const int8_t* w, long K) {
  int32_t s = 0;
#pragma omp simd reduction(+ : s)
  for (long k = 0; k < K; ++k) s += w[k];
  return s;
}

/* the 4 + 4 row pointers of a block, rows past nx / nw repeating row 0 */
static inline void kg_i8_rows(const int8_t* const* x, int nx, const int8_t* const* w, int nw, const int8_t** xr,
                              const int8_t** wr) {
  for (int i = 0; i < 4; ++i) {
    xr[i] = x[i < nx ? i : 0];
    wr[i] = w[i < nw ? i : 0];
  }
}

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#define KG_I8_PATH "avx512-vnni"
static inline void kg_dot_i8_4x4(const int8_t* const* x, int nx, const int8_t* const* w, int nw, long K,
                                 const int32_t* wsum, int32_t* acc) {
  const int8_t *xr[4], *wr[4];
  kg_i8_rows(x, nx, w, nw, xr, wr);
  const __m512i bias = _mm512_set1_epi8((char)0x80);
  __m512i c[16];
  for (int t = 0; t < 16; ++t) c[t] = _mm512_setzero_si512();
  for (long k = 0; k < K; k += 64) {
    const __mmask64 m = K - k >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << (K - k)) - 1);
    __m512i wv[4];
    for (int j = 0; j < 4; ++j) wv[j] = _mm512_maskz_loadu_epi8(m, wr[j] + k);
    for (int i = 0; i < 4; ++i) {
      /* masked-off lanes: x = 0 -> 128, times w = 0 */
      const __m512i xv = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m, xr[i] + k), bias);
      for (int j = 0; j < 4; ++j) c[i * 4 + j] = _mm512_dpbusd_epi32(c[i * 4 + j], xv, wv[j]);
    }
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) acc[i * 4 + j] = _mm512_reduce_add_epi32(c[i * 4 + j]) - 128 * wsum[j < nw ? j : 0];
}
#elif defined(__AVX2__)
#define KG_I8_PATH "avx2"
static inline void kg_dot_i8_4x4(const int8_t* const* x, int nx, const int8_t* const* w, int nw, long K,
                                 const int32_t* wsum, int32_t* acc) {
  (void)wsum;
  const int8_t *xr[4], *wr[4];
  kg_i8_rows(x, nx, w, nw, xr, wr);
  const long kv = K / 16 * 16;
  for (int jp = 0; jp < 4; jp += 2) {
    __m256i c[8];
    for (int t = 0; t < 8; ++t) c[t] = _mm256_setzero_si256();
    for (long k = 0; k < kv; k += 16) {
      const __m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(wr[jp] + k)));
      const __m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(wr[jp + 1] + k)));
      for (int i = 0; i < 4; ++i) {
        const __m256i xv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i*)(xr[i] + k)));
        c[2 * i] = _mm256_add_epi32(c[2 * i], _mm256_madd_epi16(xv, w0));
        c[2 * i + 1] = _mm256_add_epi32(c[2 * i + 1], _mm256_madd_epi16(xv, w1));
      }
    }
    for (int i = 0; i < 4; ++i)
      for (int jj = 0; jj < 2; ++jj) {
        const __m128i h = _mm_add_epi32(_mm256_castsi256_si128(c[2 * i + jj]), _mm256_extracti128_si256(c[2 * i + jj], 1));
        const __m128i q = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4E));
        int32_t s = _mm_cvtsi128_si32(_mm_add_epi32(q, _mm_shuffle_epi32(q, 0xB1)));
        for (long k = kv; k < K; ++k) s += (int32_t)xr[i][k] * wr[jp + jj][k];
        acc[i * 4 + jp + jj] = s;
      }
  }
}
#else
#define KG_I8_PATH "generic"
static inline void kg_dot_i8_4x4(const int8_t* const* x, int nx, const int8_t* const* w, int nw, long K,
                                 const int32_t* wsum, int32_t* acc) {
  (void)wsum;
  const int8_t *xr[4], *wr[4];
  kg_i8_rows(x, nx, w, nw, xr, wr);
  const int8_t *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3];
  const int8_t *w0 = wr[0], *w1 = wr[1], *w2 = wr[2], *w3 = wr[3];
  int32_t a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
  int32_t a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
#pragma omp simd reduction(+ : a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33)
  for (long k = 0; k < K; ++k) {
    const int32_t v0 = w0[k], v1 = w1[k], v2 = w2[k], v3 = w3[k];
    const int32_t u0 = x0[k], u1 = x1[k], u2 = x2[k], u3 = x3[k];
    a00 += u0 * v0; a01 += u0 * v1; a02 += u0 * v2; a03 += u0 * v3;
    a10 += u1 * v0; a11 += u1 * v1; a12 += u1 * v2; a13 += u1 * v3;
    a20 += u2 * v0; a21 += u2 * v1; a22 += u2 * v2; a23 += u2 * v3;
    a30 += u3 * v0; a31 += u3 * v1; a32 += u3 * v2; a33 += u3 * v3;
  }
  acc[0] = a00; acc[1] = a01; acc[2] = a02; acc[3] = a03;
  acc[4] = a10; acc[5] = a11; acc[6] = a12; acc[7] = a13;
  acc[8] = a20; acc[9] = a21; acc[10] = a22; acc[11] = a23;
  acc[12] = a30; acc[13] = a31; acc[14] = a32; acc[15] = a33;
}
#endif

#endif /* KARENA_GEMM_H */
