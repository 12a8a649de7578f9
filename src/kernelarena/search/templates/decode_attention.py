"""Decode attention template (FlashDecoding split-K) on the shared ``karena/decode.h``.

The kernel is written once, here (``_SOLUTION``; ``_DOC`` says what it does): decode.h's contiguous
GQA decode with group 1. The knobs are decode.h's own include-time choices (``#define``s placed
before its include; its other users keep the header's defaults):

- ``tk`` (``KD_TK``): keys per tile, i.e. per online-softmax step (one max/rescale per tile; the
  tile's K and V rows should stay in L1 until V is applied);
- ``na`` (``KD_NA``): accumulator vectors of the V slice held in registers over a tile;
- ``items`` (``KD_ITEMS_PER_THREAD``) and ``split_keys`` (``KD_SPLIT_KEYS``): the split-K policy,
  splits of the sequence until there are ``items`` work items per thread, each of at least
  ``split_keys`` keys;
- ``schedule`` (``KD_SCHEDULE``): the OpenMP schedule of the work items.

``DEFAULT`` is the header's own choice, so the rendered default is the former hand-written solution.
"""

from __future__ import annotations

from typing import Any

from kernelarena.search.hwinfo import HwInfo
from kernelarena.search.templates._common import knob_render

TASK = "decode_attention"

SPACE: dict[str, list[Any]] = {
    "tk": [16, 32, 64, 128],
    "na": [1, 2, 4, 8],
    "items": [1, 2, 4, 8],
    "split_keys": [128, 256, 512, 1024],
    "schedule": ["static", "dynamic"],
}

DEFAULT: dict[str, Any] = {"tk": 32, "na": 4, "items": 4, "split_keys": 256, "schedule": "static"}

_HEAD_DIM = 128  # the task's headline head_dim, for the cache and register estimates below


def constraints(config: dict[str, Any]) -> bool:
    # every combination builds and is correct (KD_TK a multiple of 16, any KD_NA: the V slice loop
    # falls back to single vectors and scalars for what a slice does not cover)
    return True


def lite_space(hw: HwInfo) -> list[dict[str, Any]]:
    """Tiles whose K rows of a 128-dim head fit in L1, V slices of at most one head row
    (``na`` x the SIMD width <= 128 floats), both schedules. Split policy: with few cores, 2-8 work
    items per thread at the header's 256+ keys per split; with many, the keys per split are what
    bounds the splits of a long sequence (64 threads x 4 items over 4k keys is 16 keys each), so
    128 or 256 keys per split and 2 or 4 items per thread."""
    tks = [tk for tk in SPACE["tk"] if tk * _HEAD_DIM * 4 <= hw.l1d_bytes] or [16]
    nas = [na for na in (2, 4, 8) if na * hw.simd_floats <= _HEAD_DIM] or [1]
    items, split_keys = ((2, 4, 8), (256,)) if hw.cores <= 8 else ((2, 4), (128, 256))
    return [
        dict(tk=tk, na=na, items=it, split_keys=sk, schedule=schedule)
        for tk in tks
        for na in nas
        for it in items
        for sk in split_keys
        for schedule in ("static", "dynamic")
    ]


def features(config: dict[str, Any], hw: HwInfo) -> dict[str, float]:
    return {
        "tile_kv_over_l1": config["tk"] * _HEAD_DIM * 4 * 2 / hw.l1d_bytes,
        "slice_over_head": config["na"] * hw.simd_floats / _HEAD_DIM,
        "items_per_thread": float(config["items"]),
        "split_keys": float(config["split_keys"]),
        "dynamic": float(config["schedule"] == "dynamic"),
    }


_DOC = """Decode attention in C/OpenMP: one fused streaming pass over the KV cache (FlashDecoding style).

The kernel is ``karena/decode.h``'s contiguous GQA decode with group 1. Each work item is (batch,
head, sequence split) and keeps an online-softmax state (running max, running sum, accumulator).
Scores for a tile of ``KD_TK`` keys are computed, the tile max folded into the running max (one
rescale per tile, not per key), and the weights (vmath's vectorized ``kv_exp_fast``) applied to V
while the tile is still in L1, so K and V are read once. When batch x heads is too small to feed all
cores, the sequence is split (split-K) and the partial (max, sum, acc) triples are merged at the end.
Built with ``SIMD_FLAGS``: AVX-512, AVX2+FMA and generic vectors from one source."""

_SOLUTION = r'''
import math

import torch
import torch.nn as nn

from kernelarena.backends.c import load_library
from kernelarena.backends.gemm_build import SIMD_FLAGS

_SRC = r"""
@KNOBS@
#include "karena/decode.h"

/* q [B, Hkv*G, D], k/v [B, Hkv, S, D], out like q; qscale = 1/sqrt(D) */
void gqa_decode(const float* q, const float* k, const float* v, float* out, long B, long Hkv, long G, long S,
                long D, float qscale) {
  kd_gqa_decode(q, k, v, out, B, Hkv, G, S, D, qscale);
}
"""

_ARGS = ["ptr"] * 4 + ["long"] * 5 + ["float"]
_LIB = load_library(_SRC, functions={"gqa_decode": (None, _ARGS)}, flags=SIMD_FLAGS)


class ModelNew(nn.Module):
    """Fused decode attention (same interface as the task's Model)."""

    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        q, k, v = q.contiguous(), k.contiguous(), v.contiguous()
        b, h, d = q.shape
        s = k.shape[2]
        out = torch.empty_like(q)
        qscale = 1.0 / math.sqrt(d)
        _LIB.gqa_decode(q.data_ptr(), k.data_ptr(), v.data_ptr(), out.data_ptr(), b, h, 1, s, d, qscale)
        return out
'''


def render(config: dict[str, Any]) -> str:
    """karena/decode.h's knobs, set before its include: KD_TK keys per tile, KD_NA V slice vectors,
    KD_ITEMS_PER_THREAD and KD_SPLIT_KEYS (the split policy), KD_SCHEDULE (its work items)."""
    knobs = {
        "KD_TK": config["tk"],
        "KD_NA": config["na"],
        "KD_ITEMS_PER_THREAD": config["items"],
        "KD_SPLIT_KEYS": config["split_keys"],
        "KD_SCHEDULE": "dynamic, 1" if config["schedule"] == "dynamic" else "static",
    }
    return knob_render(TASK, _SOLUTION, _DOC, config, knobs)
