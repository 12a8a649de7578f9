"""Walking the tensors of a value (nested lists, tuples, dicts), for ops that run in a worker."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def tensors(value: Any) -> list[Any]:
    """Every tensor in ``value``, in order (lists, tuples and dict values are walked)."""
    import torch

    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, list | tuple):
        return [t for v in value for t in tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in tensors(v)]
    return []


def map_tensors(value: Any, fn: Callable[[Any], Any]) -> Any:
    """``value`` with ``fn`` applied to each tensor in it (lists and tuples keep their type)."""
    import torch

    if isinstance(value, torch.Tensor):
        return fn(value)
    if isinstance(value, tuple):
        return tuple(map_tensors(v, fn) for v in value)
    if isinstance(value, list):
        return [map_tensors(v, fn) for v in value]
    return value
