/* karena/flash.h: the FlashAttention-2 tile machinery of the prefill-style attention solutions
   (causal_prefill_attention, moba_block_sparse_attention, nsa_selected_block_attention).
   Layout contracts: K is packed per head into K^T tiles of BC = 64 keys ([Dp][BC], zero padded),
   V into rows of Dp floats (D rounded up to 16); queries are pre-scaled by log2(e)/sqrt(D) and
   zero padded to Dp; attend_tile runs 4-row register-blocked micro-kernels (S = Q K^T, O += P V)
   with an online softmax, each row limited to the first lim[r] keys of the tile (masks, causality
   and block selection stay in the solutions). */
#ifndef KARENA_FLASH_H
#define KARENA_FLASH_H
#include "karena/v16.h"

/* ---- flash-attention tile machinery: 4-row register-blocked micro-kernels over 64-key tiles ---- */
#define BC 64

/* s[r][0:64] = q[r][0:K] . kt[0:K][0:64] for 4 rows (kt is a packed K^T tile, row stride BC). */
static inline void mk_qk(const float* const* q, const float* kt, long K, float* const* s) {
  v16 c00 = {}, c01 = {}, c02 = {}, c03 = {}, c10 = {}, c11 = {}, c12 = {}, c13 = {};
  v16 c20 = {}, c21 = {}, c22 = {}, c23 = {}, c30 = {}, c31 = {}, c32 = {}, c33 = {};
  const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
  for (long k = 0; k < K; k++) {
    const float* b = kt + k * BC;
    v16 b0 = vld(b), b1 = vld(b + 16), b2 = vld(b + 32), b3 = vld(b + 48);
    v16 a = vbc(q0[k]);
    c00 += a * b0; c01 += a * b1; c02 += a * b2; c03 += a * b3;
    a = vbc(q1[k]);
    c10 += a * b0; c11 += a * b1; c12 += a * b2; c13 += a * b3;
    a = vbc(q2[k]);
    c20 += a * b0; c21 += a * b1; c22 += a * b2; c23 += a * b3;
    a = vbc(q3[k]);
    c30 += a * b0; c31 += a * b1; c32 += a * b2; c33 += a * b3;
  }
  vst(s[0], c00); vst(s[0] + 16, c01); vst(s[0] + 32, c02); vst(s[0] + 48, c03);
  vst(s[1], c10); vst(s[1] + 16, c11); vst(s[1] + 32, c12); vst(s[1] + 48, c13);
  vst(s[2], c20); vst(s[2] + 16, c21); vst(s[2] + 32, c22); vst(s[2] + 48, c23);
  vst(s[3], c30); vst(s[3] + 16, c31); vst(s[3] + 32, c32); vst(s[3] + 48, c33);
}

/* Same as mk_qk for the first 32 keys of the tile only (tiles of <= 32 keys: half the work). */
static inline void mk_qk32(const float* const* q, const float* kt, long K, float* const* s) {
  v16 c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {}, c30 = {}, c31 = {};
  const float *q0 = q[0], *q1 = q[1], *q2 = q[2], *q3 = q[3];
  for (long k = 0; k < K; k++) {
    const float* b = kt + k * BC;
    v16 b0 = vld(b), b1 = vld(b + 16);
    v16 a0 = vbc(q0[k]), a1 = vbc(q1[k]), a2 = vbc(q2[k]), a3 = vbc(q3[k]);
    c00 += a0 * b0; c01 += a0 * b1; c10 += a1 * b0; c11 += a1 * b1;
    c20 += a2 * b0; c21 += a2 * b1; c30 += a3 * b0; c31 += a3 * b1;
  }
  vst(s[0], c00); vst(s[0] + 16, c01); vst(s[1], c10); vst(s[1] + 16, c11);
  vst(s[2], c20); vst(s[2] + 16, c21); vst(s[3], c30); vst(s[3] + 16, c31);
}

/* o[r][0:Dp] = o[r] * alpha[r] + p[r][0:nk] @ v[0:nk][0:Dp] for 4 rows (v row stride Dp). */
static inline void mk_pv(const float* const* p, const float* v, long nk, long Dp, float* const* o,
                         const float* alpha) {
  long c = 0;
  for (; c + 64 <= Dp; c += 64) {
    v16 c00 = vld(o[0] + c) * alpha[0], c01 = vld(o[0] + c + 16) * alpha[0];
    v16 c02 = vld(o[0] + c + 32) * alpha[0], c03 = vld(o[0] + c + 48) * alpha[0];
    v16 c10 = vld(o[1] + c) * alpha[1], c11 = vld(o[1] + c + 16) * alpha[1];
    v16 c12 = vld(o[1] + c + 32) * alpha[1], c13 = vld(o[1] + c + 48) * alpha[1];
    v16 c20 = vld(o[2] + c) * alpha[2], c21 = vld(o[2] + c + 16) * alpha[2];
    v16 c22 = vld(o[2] + c + 32) * alpha[2], c23 = vld(o[2] + c + 48) * alpha[2];
    v16 c30 = vld(o[3] + c) * alpha[3], c31 = vld(o[3] + c + 16) * alpha[3];
    v16 c32 = vld(o[3] + c + 32) * alpha[3], c33 = vld(o[3] + c + 48) * alpha[3];
    const float *p0 = p[0], *p1 = p[1], *p2 = p[2], *p3 = p[3];
    for (long j = 0; j < nk; j++) {
      const float* b = v + j * Dp + c;
      v16 b0 = vld(b), b1 = vld(b + 16), b2 = vld(b + 32), b3 = vld(b + 48);
      v16 a = vbc(p0[j]);
      c00 += a * b0; c01 += a * b1; c02 += a * b2; c03 += a * b3;
      a = vbc(p1[j]);
      c10 += a * b0; c11 += a * b1; c12 += a * b2; c13 += a * b3;
      a = vbc(p2[j]);
      c20 += a * b0; c21 += a * b1; c22 += a * b2; c23 += a * b3;
      a = vbc(p3[j]);
      c30 += a * b0; c31 += a * b1; c32 += a * b2; c33 += a * b3;
    }
    vst(o[0] + c, c00); vst(o[0] + c + 16, c01); vst(o[0] + c + 32, c02); vst(o[0] + c + 48, c03);
    vst(o[1] + c, c10); vst(o[1] + c + 16, c11); vst(o[1] + c + 32, c12); vst(o[1] + c + 48, c13);
    vst(o[2] + c, c20); vst(o[2] + c + 16, c21); vst(o[2] + c + 32, c22); vst(o[2] + c + 48, c23);
    vst(o[3] + c, c30); vst(o[3] + c + 16, c31); vst(o[3] + c + 32, c32); vst(o[3] + c + 48, c33);
  }
  for (; c < Dp; c += 16) {
    v16 c0 = vld(o[0] + c) * alpha[0], c1 = vld(o[1] + c) * alpha[1];
    v16 c2 = vld(o[2] + c) * alpha[2], c3 = vld(o[3] + c) * alpha[3];
    for (long j = 0; j < nk; j++) {
      v16 b = vld(v + j * Dp + c);
      c0 += vbc(p[0][j]) * b; c1 += vbc(p[1][j]) * b; c2 += vbc(p[2][j]) * b; c3 += vbc(p[3][j]) * b;
    }
    vst(o[0] + c, c0); vst(o[1] + c, c1); vst(o[2] + c, c2); vst(o[3] + c, c3);
  }
}

/* One online-softmax step of nr rows (nr % 4 == 0) against one packed key tile.
   q[r]: query row pre-scaled by log2(e)/sqrt(D), zero padded to Dp; o[r]: Dp accumulator;
   m[r], l[r]: running max (log2 domain) and sum; kt: K^T tile [Dp][BC]; v: V rows [BC][Dp];
   nk: keys in the tile; lim[r]: row r may see keys j < lim[r] of the tile (<= 0: none). */
static void attend_tile(long nr, const float* const* q, float* const* o, float* m, float* l,
                        const float* kt, const float* v, long nk, const long* lim, long D, long Dp,
                        float* sbuf) {
  float* srow[4];
  float alpha[4];
  long nc = (nk + 15) & ~15L; /* score columns actually computed (multiple of 16, <= BC) */
  for (long r0 = 0; r0 < nr; r0 += 4) {
    for (int i = 0; i < 4; i++) srow[i] = sbuf + i * BC;
    if (nk <= 32)
      mk_qk32(q + r0, kt, D, srow);
    else
      mk_qk(q + r0, kt, D, srow);
    for (int i = 0; i < 4; i++) {
      long r = r0 + i, n = lim[r] < nk ? lim[r] : nk;
      float* s = srow[i];
      if (n <= 0) {
        alpha[i] = 1.f;
        memset(s, 0, sizeof(float) * BC);
        continue;
      }
      for (long j = n; j < nc; j++) s[j] = -INFINITY;
      v16 mx = vld(s);
      for (long t = 16; t < nc; t += 16) { v16 x = vld(s + t); mx = vsel(x > mx, x, mx); }
      float mt = vhmax(mx), mnew = mt > m[r] ? mt : m[r];
      alpha[i] = exp2f(m[r] - mnew); /* 0 when m[r] was -inf */
      m[r] = mnew;
      v16 mv = vbc(mnew), sum = {};
      for (long t = 0; t < nc; t += 16) { v16 pv = vexp2(vld(s + t) - mv); vst(s + t, pv); }
      for (long j = n; j < nc; j++) s[j] = 0.f;
      for (long t = 0; t < nc; t += 16) sum += vld(s + t);
      l[r] = l[r] * alpha[i] + vhsum(sum);
    }
    mk_pv((const float* const*)srow, v, nk, Dp, o + r0, alpha);
  }
}

/* Pack one head: kt[tile][Dp][BC] (K^T tiles, zero padded) and vp[Sp][Dp] (zero padded). */
static void pack_kv(const float* k, const float* v, long S, long D, long Dp, float* kt, float* vp) {
  long nt = (S + BC - 1) / BC;
  memset(kt, 0, sizeof(float) * nt * Dp * BC);
  memset(vp, 0, sizeof(float) * nt * BC * Dp);
  for (long j = 0; j < S; j++) {
    float* t = kt + (j / BC) * Dp * BC + (j % BC);
    const float* kr = k + j * D;
    for (long d = 0; d < D; d++) t[d * BC] = kr[d];
    memcpy(vp + j * Dp, v + j * D, sizeof(float) * D);
  }
}

#endif /* KARENA_FLASH_H */
