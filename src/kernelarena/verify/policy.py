"""The strict kernel policy: which ATen ops a candidate's forward may run itself.

Allocation, views and copies are the glue every kernel needs; anything else is computation that
the candidate should be doing in its own kernel rather than handing to torch.
"""

from __future__ import annotations

from typing import Any

ALLOWED_OPS: frozenset[str] = frozenset(
    {
        # allocation and filling
        "empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided", "zeros", "zeros_like",
        "new_zeros", "ones", "ones_like", "new_ones", "full", "full_like", "new_full", "fill", "fill_",
        "zero", "zero_", "scalar_tensor", "resize_", "lift_fresh", "lift_fresh_copy", "arange",
        # views and metadata
        "view", "_unsafe_view", "reshape", "_reshape_alias", "permute", "transpose", "t", "expand",
        "expand_as", "select", "slice", "narrow", "unsqueeze", "squeeze", "as_strided", "split",
        "split_with_sizes", "unbind", "detach", "alias", "diagonal", "unfold", "view_as_real",
        "view_as_complex", "movedim", "chunk", "flatten", "unflatten", "sym_size", "sym_stride",
        "sym_numel", "sym_storage_offset", "is_contiguous", "_local_scalar_dense", "item",
        "is_same_size", "set_", "contiguous",
        # copies and dtype/device moves
        "clone", "copy", "copy_", "_to_copy", "to", "_copy_from", "_copy_from_and_resize",
    }
)  # fmt: skip


def op_name(func: Any) -> str:
    """``aten.add.Tensor`` -> ``add``; ``aten.add_.Tensor`` -> ``add_``."""
    packet = getattr(func, "overloadpacket", None)
    return str(getattr(packet, "__name__", func)).split(".")[-1]


def disallowed(ops: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in ops.items() if k not in ALLOWED_OPS}
