/* karena/flash.h: the FlashAttention-2 tile machinery of the prefill-style attention solutions
   (causal_prefill_attention, moba_block_sparse_attention, nsa_selected_block_attention).
   Layout contracts: K is packed per head into K^T tiles of BC = 64 keys ([Dp][BC], zero padded),
   V into rows of Dp floats (D rounded up to 16); queries are pre-scaled by log2(e)/sqrt(D) and
   zero padded to Dp; attend_tile runs karena/block.h's 4-row register-blocked GEMM (S = Q K^T,
   O = alpha O + P V, column blocks sized for the ISA's registers) with an online softmax, each row
   limited to the first lim[r] keys of the tile (masks, causality and block selection stay in the
   solutions). */
#ifndef KARENA_FLASH_H
#define KARENA_FLASH_H
#include "karena/block.h"

#define BC 64 /* keys per tile */

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
    kb_gemm4(q + r0, kt, BC, D, srow, nc, NULL); /* scores of the first nc keys */
    for (int i = 0; i < 4; i++) {
      long r = r0 + i, n = lim[r] < nk ? lim[r] : nk;
      float* s = srow[i];
      if (n <= 0) {
        alpha[i] = 1.f;
        memset(s, 0, sizeof(float) * BC);
        continue;
      }
      for (long j = n; j < nc; j++) s[j] = -INFINITY;
      kv_f mx = kv_load(s);
      for (long t = KV_VW; t < nc; t += KV_VW) mx = kv_max(kv_load(s + t), mx);
      float mt = kv_hmax(mx), mnew = mt > m[r] ? mt : m[r];
      alpha[i] = exp2f(m[r] - mnew); /* 0 when m[r] was -inf */
      m[r] = mnew;
      kv_f mv = kv_set1(mnew), sum = kv_set1(0.f);
      for (long t = 0; t < nc; t += KV_VW) kv_store(s + t, kb_exp2(kv_load(s + t) - mv));
      for (long j = n; j < nc; j++) s[j] = 0.f;
      for (long t = 0; t < nc; t += KV_VW) sum += kv_load(s + t);
      l[r] = l[r] * alpha[i] + kv_hsum(sum);
    }
    kb_gemm4((const float* const*)srow, v, Dp, nk, o + r0, Dp, alpha);
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
