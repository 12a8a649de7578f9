"""MoE token permutation (C/OpenMP): counting sort of the routing ids + streaming row gather.

The ``tokens * k`` expert ids are sorted by a counting sort (histogram, exclusive scan, then one
pass over the flat (token, slot) order that hands out positions -- stable by construction, so no
comparison sort is needed). The gather then runs token-major across OpenMP threads: each token's
row is read once and written to its k destinations with non-temporal stores (karena/vmath.h) (no
read-for-ownership of the 2x larger output) when rows are 64-byte aligned, else ``memcpy``.
The fresh output is first advised to use transparent huge pages (``madvise``), since 4 KiB
first-touch page faults on a 64 MB output cost more than the copy itself.
Eager PyTorch does a comparison sort, an index_select, a bincount, a cumsum and an index_put.
"""

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "karena/vmath.h"

/* Ask for transparent huge pages on the (fresh, untouched) output: first-touch faults then
   come per 2 MiB instead of per 4 KiB, which otherwise cost more than the copy itself. */
static void advise_huge(void* p, size_t n) {
#ifdef MADV_HUGEPAGE
  uintptr_t a = ((uintptr_t)p + (1UL << 21) - 1) & ~((uintptr_t)(1UL << 21) - 1);
  uintptr_t b = ((uintptr_t)p + n) & ~((uintptr_t)(1UL << 21) - 1);
  if (b > a) madvise((void*)a, b - a, MADV_HUGEPAGE);
#else
  (void)p; (void)n;
#endif
}

static void copy_row(float* dst, const float* src, long d, int stream) {
  if (stream) { /* dst aligned to the vector size and d a multiple of 16 (checked by the caller) */
    long c = 0;
    for (; c + 4 * KV_VW <= d; c += 4 * KV_VW) {
      const kv_f a = kv_load(src + c), b = kv_load(src + c + KV_VW);
      const kv_f e = kv_load(src + c + 2 * KV_VW), f = kv_load(src + c + 3 * KV_VW);
      kv_stream(dst + c, a); kv_stream(dst + c + KV_VW, b);
      kv_stream(dst + c + 2 * KV_VW, e); kv_stream(dst + c + 3 * KV_VW, f);
    }
    for (; c < d; c += KV_VW) kv_stream(dst + c, kv_load(src + c));
    return;
  }
  memcpy(dst, src, sizeof(float) * (size_t)d);
}

/* returns 0 on success, 1 if an id is out of range (outputs then unspecified) */
int moe_permute(const float* x, const long* ids, float* xp, long* offsets, long* inv,
                long t, long k, long d, long e) {
  long n = t * k;
  long* cursor = (long*)calloc((size_t)e + 1, sizeof(long));
  for (long i = 0; i < n; ++i) {
    long v = ids[i];
    if (v < 0 || v >= e) { free(cursor); return 1; }
    cursor[v + 1]++;
  }
  for (long j = 0; j < e; ++j) cursor[j + 1] += cursor[j];
  memcpy(offsets, cursor, sizeof(long) * (size_t)(e + 1));
  for (long i = 0; i < n; ++i) inv[i] = cursor[ids[i]]++;   /* stable: flat order */
  free(cursor);
  advise_huge(xp, sizeof(float) * (size_t)(n * d));
  int stream = ((uintptr_t)xp % 64 == 0) && (d % 16 == 0);
  #pragma omp parallel for schedule(static)
  for (long r = 0; r < t; ++r)
    for (long s = 0; s < k; ++s) copy_row(xp + inv[r * k + s] * d, x + r * d, d, stream);
  if (stream) kv_sfence();
  return 0;
}
"""

_LIB = load_library(
    _SRC,
    flags=SIMD_FLAGS,
    functions={"moe_permute": ("int", ["ptr", "ptr", "ptr", "ptr", "ptr", "long", "long", "long", "long"])},
)


class ModelNew(nn.Module):
    def __init__(self, num_experts: int):
        super().__init__()
        self.num_experts = num_experts

    def forward(
        self, x: torch.Tensor, topk_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = x.contiguous()
        ids = topk_ids.contiguous()
        t, k = ids.shape
        d = x.shape[1]
        x_perm = torch.empty(t * k, d, dtype=x.dtype)
        offsets = torch.empty(self.num_experts + 1, dtype=torch.int64)
        inv = torch.empty(t, k, dtype=torch.int64)
        rc = _LIB.moe_permute(
            x.data_ptr(),
            ids.data_ptr(),
            x_perm.data_ptr(),
            offsets.data_ptr(),
            inv.data_ptr(),
            t,
            k,
            d,
            self.num_experts,
        )
        if rc != 0:
            raise ValueError("topk_ids out of range [0, num_experts)")
        return x_perm, offsets, inv
