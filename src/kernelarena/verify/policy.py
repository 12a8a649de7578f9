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


# Only these namespaces hold torch's own operators; an op from any other (a custom op registered
# with torch.library) runs code the tracer cannot see into, so its bare name never counts.
TORCH_NAMESPACES: frozenset[str] = frozenset({"aten", "prim", "prims"})


def op_name(func: Any) -> str:
    """``aten.add.Tensor`` -> ``add``; ``aten.add_.Tensor`` -> ``add_``; ``adv.clone`` -> ``adv::clone``.

    The namespace is kept for every op outside torch's own, so a custom op named like an allowed
    one (``adv::clone``) is not mistaken for it.
    """
    packet = getattr(func, "overloadpacket", None)
    name = str(getattr(packet, "__name__", func)).split(".")[-1]
    namespace = str(getattr(func, "namespace", "aten"))
    return name if namespace in TORCH_NAMESPACES else f"{namespace}::{name}"


def torch_kernel_registrations() -> frozenset[str]:
    """Kernels registered from Python (``torch.library``), as ``ns/op/dispatch_key`` strings."""
    import torch.library

    return frozenset(str(i) for i in getattr(torch.library, "_impls", ()))


def overridden_torch_ops(before: frozenset[str]) -> list[str]:
    """torch operators whose kernels Python code registered since ``before``: an allowed op such
    as ``aten::clone`` could then run arbitrary compute inside it, unseen by the tracer. Meta
    kernels (shape functions, which torch registers lazily itself) do not compute."""
    new = torch_kernel_registrations() - before
    return sorted(i for i in new if i.split("/")[0] in TORCH_NAMESPACES and not i.endswith("/Meta"))


def disallowed(ops: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in ops.items() if k not in ALLOWED_OPS}
