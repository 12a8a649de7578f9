"""Worker side of the per-call metrics (memory of one call); the parent side is
:mod:`kernelarena.timing.metrics`.

One op, ``call_metrics``, in two phases around which the *parent* reads this process's
``/proc/PID/status`` (so the peak is not a figure the candidate reports about itself):

- ``prepare``: collect garbage and give free heap memory back to the kernel (``malloc_trim``), so
  that a call re-using memory freed by earlier calls still shows up as resident growth; reset the
  CUDA allocator's peak.
- ``call``: one call of the timed model on the first input set, with torch's new tensor storage
  counted (a dispatch mode sums the bytes of every output storage not seen before the call).

Works on the model and inputs that ``setup_timing`` left in the worker's state.
"""

from __future__ import annotations

from typing import Any

from kernelarena.sandbox.memory import release_free_memory
from kernelarena.sandbox.tensors import tensors
from kernelarena.sandbox.worker import state


def _alloc_counter() -> Any:
    """A TorchDispatchMode that sums the bytes of output storages that are new (allocations)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Count(TorchDispatchMode):
        def __init__(self, known: set[int]):
            super().__init__()
            self.known, self.bytes, self.tensors = known, 0, 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, list | tuple) else (out,):
                if isinstance(t, torch.Tensor):
                    s = t.untyped_storage()
                    ptr = s.data_ptr()
                    if ptr and ptr not in self.known:
                        self.known.add(ptr)
                        self.bytes += s.nbytes()
                        self.tensors += 1
            return out

    return _Count


def op_call_metrics(msg: dict[str, Any]) -> dict[str, Any]:
    import gc

    import torch

    cuda = state.get("device", "cpu") == "cuda"
    if msg.get("phase") == "prepare":
        gc.collect()
        release_free_memory()  # not glibc: the peak may under-count re-used memory
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        return {}
    model, inputs = state["timed_model"], state["input_sets"][0]
    known = {t.untyped_storage().data_ptr() for t in tensors(inputs)}
    if isinstance(model, torch.nn.Module):
        known |= {t.untyped_storage().data_ptr() for t in list(model.parameters()) + list(model.buffers())}
    base_dev = torch.cuda.memory_allocated() if cuda else 0
    counter = _alloc_counter()(known)
    with torch.no_grad(), counter:
        out = model(*inputs)
    if cuda:
        torch.cuda.synchronize()
    out_bytes = sum(t.untyped_storage().nbytes() for t in tensors(out))
    del out
    return {
        "torch_allocated_bytes": counter.bytes,
        "torch_allocations": counter.tensors,
        "output_bytes": out_bytes,
        "device_peak_bytes": (torch.cuda.max_memory_allocated() - base_dev) if cuda else None,
    }
